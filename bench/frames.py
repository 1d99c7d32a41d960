"""Benchmark the frame readers: 8 frames per 10 s window, every window, PyAV vs decord.

Run: .venv/bin/python bench/frames.py
Prints median wall time per window over REPEATS runs and the ratio decord / pyav. It does not
assert anything: numbers depend on the machine.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cotvtm.video.frames import read_window_frames  # noqa: E402
from cotvtm.video.probe import probe  # noqa: E402
from cotvtm.video.samples import make_video  # noqa: E402
from cotvtm.video.windows import plan_windows, sample_times  # noqa: E402

REPEATS = 3
SHORT_SIDE = 224  # CLIP's input size
VIDEOS = {  # name -> (seconds, size); libx264 defaults otherwise (keyframe at most every 250 frames)
    "25s_640x360.mp4": (25, "640x360"),
    "60s_1280x720.mp4": (60, "1280x720"),
}


def time_window(path, times, rotation, reader) -> float:
    start = time.perf_counter()
    read_window_frames(path, times, SHORT_SIDE, rotation=rotation, reader=reader)
    return time.perf_counter() - start


def main() -> None:
    try:
        import decord  # noqa: F401
        readers = ["pyav", "decord"]
    except ImportError:
        readers = ["pyav"]
        print("decord is not installed: timing pyav only")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (seconds, size) in VIDEOS.items():
            start = time.perf_counter()
            path = make_video(Path(tmp) / name, seconds, size=size, fps=25,
                              extra_args=("-preset", "veryfast"))
            info = probe(path)
            print(f"\n{name}: {info.duration:.1f} s, {info.width}x{info.height}, {info.fps:g} fps, "
                  f"made in {time.perf_counter() - start:.1f} s; median of {REPEATS} runs, ms")
            print(f"{'window':>14} " + " ".join(f"{r:>8}" for r in readers) + "  decord/pyav")
            totals = dict.fromkeys(readers, 0.0)
            for window in plan_windows(info.duration):
                times = sample_times(window)
                runs = {r: [] for r in readers}
                for _ in range(REPEATS):  # interleaved, so a burst of load hits both readers
                    for r in readers:
                        runs[r].append(time_window(path, times, info.rotation, r))
                medians = {r: statistics.median(timings) for r, timings in runs.items()}
                for r in readers:
                    totals[r] += medians[r]
                print_row(f"{window.start:.0f}-{window.end:.0f} s", medians)
            print_row("all windows", totals)


def print_row(label: str, seconds: dict[str, float]) -> None:
    ratio = f"{seconds['decord'] / seconds['pyav']:.2f}" if "decord" in seconds else "-"
    print(f"{label:>14} " + " ".join(f"{s * 1e3:8.0f}" for s in seconds.values()) + f"  {ratio:>11}")


if __name__ == "__main__":
    main()
