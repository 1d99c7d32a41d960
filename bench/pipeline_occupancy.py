"""Decoder slot occupancy of the soundtrack job on a library of mixed lengths: today's batching
(the videos of a Music batch in lockstep, one stream per video) against continuous feeding
(many videos in flight per actor, a long video in several streams), in one run; then the long
video alone with one stream and with N.

    .venv/bin/python bench/pipeline_occupancy.py [--videos 40] [--min-seconds 4] [--max-seconds 180]
        [--long-seconds 1800] [--slots 4] [--streams 4] [--stream-min-seconds 300]

Makes the library with ffmpeg (lengths spread evenly between the two bounds, plus one long
video), runs ``python -m jobs.soundtrack`` on it with the tiny models, and sums the Music
actors' engine lines: occupancy (useful slot-steps / slots x steps), decoder steps, wall time.
The short videos' music must be the same in both runs (every window's ``tokens_digest``; the
long video's streams make other music at their starts). For the long video alone it prints
the job's wall time and the Music stage's, and the output's audio length against the video's.
Prints numbers; asserts nothing.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cotvtm.video.samples import make_video  # noqa: E402

ENGINE = re.compile(r"music    engine: (\d+) steps, (\d+) slot-steps of (\d+)")


def library(folder: Path, count: int, low: float, high: float, long: float) -> float:
    lengths = [low + (high - low) * i / max(count - 1, 1) for i in range(count)] + ([long] if long else [])
    for i, seconds in enumerate(lengths):
        make_video(folder / f"v{i:02d}-{seconds:.0f}s.mp4", duration=seconds, size="64x48", fps=4,
                   source="mandelbrot" if i % 2 else "testsrc2")
    return sum(lengths)


def run(source: Path, out: Path, feed: str, slots: int, cache: Path, streams: int, stream_min: float) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "jobs.soundtrack", str(source), str(out), "--cache-dir", str(cache),
                           "--slots", str(slots), "--embed-batch", str(slots), "--prior-batch", str(slots), "--videos-in-flight",
                           str(2 * slots), "--music-feed", feed, "--streams-per-video", str(streams),
                           "--stream-min-seconds", str(stream_min)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{feed}: the job failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    lines = ENGINE.findall(done.stdout + done.stderr)
    steps, useful, capacity = (sum(int(line[i]) for line in lines) for i in range(3))
    sidecars = {p.name.split(".")[0]: json.loads(p.read_text()) for p in out.glob("*.json")}
    digests = {k: [w["tokens_digest"] for w in s["windows"]] for k, s in sidecars.items() if len(s["streams"]) == 1}
    music = max((s["seconds"].get("music", 0.0) for s in sidecars.values()), default=0.0)
    audio = {k: _audio_seconds(p) for p in out.iterdir() if p.suffix == ".mp4" for k in [p.name.split(".")[0]]}
    decoders = sorted({json.dumps(s["decoder"], sort_keys=True) for s in sidecars.values()})  # dtype, graphs
    return {"steps": steps, "occupancy": 100 * useful / max(capacity, 1), "wall": wall, "digests": digests,
            "music": music, "audio": audio, "sidecars": sidecars, "decoder": "; ".join(decoders)}


def _audio_seconds(video: Path) -> float:
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=duration",
                            "-of", "csv=p=0", str(video)], capture_output=True, text=True, check=True)
    return float(probe.stdout.strip())


def _video_seconds(video: Path) -> float:
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                            str(video)], capture_output=True, text=True, check=True)
    return float(probe.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--min-seconds", type=float, default=4)
    parser.add_argument("--max-seconds", type=float, default=180)
    parser.add_argument("--long-seconds", type=float, default=1800, help="one long video besides (0: none)")
    parser.add_argument("--slots", type=int, default=4, help="decoder slots (twice as many videos in flight)")
    parser.add_argument("--streams", type=int, default=4, help="--streams-per-video of the continuous runs")
    parser.add_argument("--stream-min-seconds", type=float, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        total = library(work / "in", args.videos, args.min_seconds, args.max_seconds, args.long_seconds)
        long = f" and one of {args.long_seconds:g} s" if args.long_seconds else ""
        print(f"{args.videos} videos of {args.min_seconds:g} to {args.max_seconds:g} s{long} ({total / 60:.1f} min "
              f"in all), tiny models, {args.slots} slots, {os.cpu_count()} CPUs")
        results = {feed: run(work / "in", work / feed, feed, args.slots, work / "models", streams,
                               args.stream_min_seconds)
                   for feed, streams in (("batched", 1), ("continuous", args.streams))}
        for feed, r in results.items():
            print(f"{feed}: occupancy {r['occupancy']:.1f} %, {r['steps']} steps, {r['wall']:.0f} s; decoder "
                  f"{r['decoder']}")
        same = results["continuous"]["digests"].items() <= results["batched"]["digests"].items()
        print(f"same music (videos of one stream): {'yes, every window' if same else 'NO'}")
        if args.long_seconds:
            alone(work, args)


def alone(work: Path, args) -> None:
    """The long video by itself: one stream against ``--streams``."""
    [long] = sorted((work / "in").glob(f"v{args.videos:02d}-*"))
    (work / "long").mkdir()
    os.link(long, work / "long" / long.name)
    length = _video_seconds(long)
    walls = {}
    for streams in (1, args.streams):
        r = run(work / "long", work / f"long{streams}", "continuous", args.slots, work / "models", streams,
                args.stream_min_seconds)
        walls[streams] = r
        [(key, audio)] = r["audio"].items()
        print(f"long video, {streams} stream(s): job {r['wall']:.0f} s, music stage {r['music']:.0f} s, "
              f"occupancy {r['occupancy']:.1f} %, {r['steps']} steps; audio {audio:.3f} s of a "
              f"{length:.3f} s video")
    one, many = walls[1], walls[args.streams]
    print(f"long video: {args.streams} streams take {many['music'] / max(one['music'], 1e-9):.2f} of one stream's "
          f"music time and {many['steps'] / max(one['steps'], 1):.2f} of its decoder steps (ideal "
          f"{1 / args.streams:.2f}), {many['wall'] / one['wall']:.2f} of its job time")


if __name__ == "__main__":
    main()
