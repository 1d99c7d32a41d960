"""Decoder slot occupancy of the soundtrack job on a library of mixed lengths: the videos of a
Music batch in lockstep ("batched") against continuous feeding, in one run.

    .venv/bin/python bench/pipeline_occupancy.py [--videos 16] [--min-seconds 4] [--max-seconds 60]
        [--long-seconds 240] [--video-batch 4]

Makes the library with ffmpeg (lengths spread evenly between the two bounds, plus one long
video), runs ``python -m jobs.soundtrack`` on it twice with the tiny models (``--music-feed
batched``, then ``continuous``), and sums the Music actors' engine lines: occupancy (useful
slot-steps / slots x steps), decoder steps, wall time. It also checks that both runs made the
same music (every window's ``tokens_digest``). Prints one line per feed; asserts nothing.
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


def run(source: Path, out: Path, feed: str, batch: int, cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "jobs.soundtrack", str(source), str(out), "--cache-dir", str(cache),
                           "--video-batch", str(batch), "--music-feed", feed], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{feed}: the job failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    lines = ENGINE.findall(done.stdout + done.stderr)
    steps, useful, capacity = (sum(int(line[i]) for line in lines) for i in range(3))
    digests = {p.name.split(".")[0]: [w["tokens_digest"] for w in json.loads(p.read_text())["windows"]]
               for p in out.glob("*.json")}
    return {"steps": steps, "occupancy": 100 * useful / max(capacity, 1), "wall": wall, "digests": digests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--min-seconds", type=float, default=4)
    parser.add_argument("--max-seconds", type=float, default=60)
    parser.add_argument("--long-seconds", type=float, default=240, help="one long video besides (0: none)")
    parser.add_argument("--video-batch", type=int, default=4, help="decoder slots")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        total = library(work / "in", args.videos, args.min_seconds, args.max_seconds, args.long_seconds)
        long = f" and one of {args.long_seconds:g} s" if args.long_seconds else ""
        print(f"{args.videos} videos of {args.min_seconds:g} to {args.max_seconds:g} s{long} ({total / 60:.1f} min "
              f"in all), tiny models, {args.video_batch} slots, {os.cpu_count()} CPUs")
        results = {feed: run(work / "in", work / feed, feed, args.video_batch, work / "models")
                   for feed in ("batched", "continuous")}
        for feed, r in results.items():
            print(f"{feed}: occupancy {r['occupancy']:.1f} %, {r['steps']} steps, {r['wall']:.0f} s")
        same = results["batched"]["digests"] == results["continuous"]["digests"]
        print(f"same music: {'yes, every window' if same else 'NO'}")


if __name__ == "__main__":
    main()
