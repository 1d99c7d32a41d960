"""Benchmark the frame reader (PyAV): 8 frames per 10 s window, every window.

Run: .venv/bin/python bench/frames.py
Prints median wall time per window over REPEATS runs. It does not assert anything: numbers
depend on the machine.
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


def time_window(path, times, rotation) -> float:
    start = time.perf_counter()
    read_window_frames(path, times, SHORT_SIDE, rotation=rotation)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, (seconds, size) in VIDEOS.items():
            start = time.perf_counter()
            path = make_video(Path(tmp) / name, seconds, size=size, fps=25,
                              extra_args=("-preset", "veryfast"))
            info = probe(path)
            print(f"\n{name}: {info.duration:.1f} s, {info.width}x{info.height}, {info.fps:g} fps, "
                  f"made in {time.perf_counter() - start:.1f} s; median of {REPEATS} runs, ms")
            print(f"{'window':>14} {'pyav':>8}")
            total = 0.0
            for window in plan_windows(info.duration):
                times = sample_times(window)
                median = statistics.median(time_window(path, times, info.rotation) for _ in range(REPEATS))
                total += median
                print(f"{window.start:.0f}-{window.end:.0f} s".rjust(14) + f" {median * 1e3:8.0f}")
            print(f"{'all windows':>14} {total * 1e3:8.0f}")


if __name__ == "__main__":
    main()
