"""Peak memory of each pipeline stage's workers for a 1-minute and a 12-minute video.

    .venv/bin/python bench/long_video_memory.py [--minutes 1 12]

Runs the soundtrack job (tiny models, local Ray) once per length, sampling the memory of
every Ray worker process by stage every 0.2 s, and prints each stage's peak and the ratio to
the shortest video's: resident memory, and its two parts, private memory (what a worker
holds itself) and shared pages of Ray's object store that the worker has touched. Rows are
segments of ``--segment-windows`` windows in pass 1 and videos without media in pass 2, so
no stage's private memory should grow with the video's length. Tiny models decode frames at
32 px, so frame memory is small here; with real CLIP (224 px) it is ~50x larger per window.
"""

import argparse
import tempfile
import threading
import time
from pathlib import Path

STAGES = ("Decode", "Embed", "Prior", "Music", "Mux")


KINDS = {"VmRSS": "resident", "RssAnon": "private", "RssShmem": "shared (object store pages)"}


def _memory_by_stage() -> dict[tuple[str, str], int]:
    """Per stage, the largest worker's resident memory and its private and shared parts."""
    found: dict[tuple[str, str], int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="ignore")
            stage = next((s for s in STAGES if f"MapBatches({s})" in cmdline), None)
            if stage:
                fields = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines())
                for kind in KINDS:
                    value = int(fields[kind].split()[0]) * 1024
                    found[stage, kind] = max(found.get((stage, kind), 0), value)
        except (OSError, KeyError, ValueError):
            continue
    return found


def measure(minutes: float, work: Path, segment_windows: int) -> dict[str, int]:
    from cotvtm.settings import Resources, SoundtrackConfig
    from cotvtm.pipelines.runner import run
    from cotvtm.settings import Access
    from cotvtm.video.samples import make_video

    inputs = work / f"in{minutes}"
    inputs.mkdir()
    make_video(inputs / "long.mp4", duration=minutes * 60, size="320x180", fps=10)
    peaks: dict[str, int] = {}
    done = threading.Event()

    def sample():
        while not done.is_set():
            for what, value in _memory_by_stage().items():
                peaks[what] = max(peaks.get(what, 0), value)
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    started = time.perf_counter()
    summary = run(Access(source=str(inputs), dest=str(work / f"out{minutes}")), SoundtrackConfig(),
                  Resources(segment_windows=segment_windows), echo=lambda _: None)
    done.set()
    thread.join()
    assert summary.ok == 1, [o.reason for o in summary.outcomes]
    peaks["seconds"] = time.perf_counter() - started
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 12])
    parser.add_argument("--segment-windows", type=int, default=6)
    args = parser.parse_args()
    from cotvtm.raycluster import init_ray

    init_ray()
    with tempfile.TemporaryDirectory() as tmp:
        results = {m: measure(m, Path(tmp), args.segment_windows) for m in args.minutes}
    for kind, title in KINDS.items():
        print(f"peak {title} memory per stage ({kind})")
        print(f"{'stage':>8} " + " ".join(f"{f'{m:g} min MB':>12}" for m in args.minutes) + "   ratio to first")
        for stage in STAGES:
            row = [results[m].get((stage, kind), 0) / 2**20 for m in args.minutes]
            ratio = " ".join(f"{r / row[0]:.2f}" if row[0] else "-" for r in row[1:])
            print(f"{stage:>8} " + " ".join(f"{r:>12.0f}" for r in row) + f"   {ratio}")
    print(f"{'wall s':>8} " + " ".join(f"{results[m]['seconds']:>12.1f}" for m in args.minutes))


if __name__ == "__main__":
    main()
