"""The cost of shot-cut detection (``cotvtm/video/shots.py``), as x real time per CPU core.

    .venv/bin/python bench/shot_detection.py [--seconds 60] [--repeats 3]

Makes videos of hard-cut shots with ffmpeg (H.264, 30 fps) at 640x360 and 1280x720, times
``detect_cuts`` on one thread (median of the repeats) and prints seconds of video per second of
one core, and whether every cut was found within a frame. Asserts nothing.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cotvtm.video.samples import make_shots_video  # noqa: E402
from cotvtm.video.shots import detect_cuts  # noqa: E402

SOURCES = ("testsrc2", "mandelbrot", "smptebars", "cellauto", "rgbtestsrc", "life")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    shot = 5.0
    count = int(args.seconds // shot)
    shots = [(SOURCES[i % len(SOURCES)], shot) for i in range(count)]
    cuts = [shot * i for i in range(1, count)]
    with tempfile.TemporaryDirectory() as tmp:
        for size in ("640x360", "1280x720"):
            video = make_shots_video(Path(tmp) / f"{size}.mp4", shots, size=size, fps=30)
            times, found = [], []
            for _ in range(args.repeats):
                started = time.perf_counter()
                found = detect_cuts(video, threads=1)
                times.append(time.perf_counter() - started)
            hit = len(found) == len(cuts) and all(abs(a - b) <= 1 / 30 for a, b in zip(found, cuts))
            speed = count * shot / statistics.median(times)
            print(f"{size}, 30 fps, {count * shot:.0f} s, {len(cuts)} cuts: {speed:.1f}x real time per CPU core "
                  f"(median of {args.repeats}); cuts within a frame: {'all' if hit else 'NO'}")


if __name__ == "__main__":
    main()
