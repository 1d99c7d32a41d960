"""Measure the CPU side of the soundtrack job, for the sizing guide in cluster/README.md.

    python cluster/sizing.py [--seconds 60] [--repeats 3]

For ffmpeg-made H.264 videos at 360p, 720p and 1080p (25 fps, keyframe every 250 frames, the
libx264 default) it times, on one core:
  - decode: the job's Decode stage work per 10 s window (probe once, then 8 sampled frames per
    window scaled to CLIP's 224 short side with PyAV), in seconds per window;
  - mux: the job's Mux stage (fit the music to the video, ffmpeg stream-copy of the video plus
    AAC encode of 32 kHz mono music, MusicGen's rate), in seconds per 10 s window.
It measures CPU time (this process and its ffmpeg children), not wall time, so the figures are
core-seconds and hold on a busy machine too. It prints the medians and, from them, how many
windows per second one CPU core sustains. It asserts nothing: the numbers depend on the CPU.
"""

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = {"360p": "640x360", "720p": "1280x720", "1080p": "1920x1080"}
WINDOW_S, FRAMES, SHORT_SIDE, MUSIC_RATE = 10.0, 8, 224, 32000


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) plus its finished children (ffmpeg, ffprobe)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = _cpu_seconds()
        fn()
        times.append(_cpu_seconds() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    from cotvtm.video.frames import read_window_frames
    from cotvtm.video.mux import fit_length, mux_audio
    from cotvtm.video.probe import probe
    from cotvtm.video.samples import make_video
    from cotvtm.video.windows import plan_windows, sample_times

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="length of each test video")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    print(f"{'video':>6} {'decode cpu-s/window':>20} {'mux cpu-s/window':>17} {'windows/s per core':>19}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, size in SIZES.items():
            src = make_video(Path(tmp) / f"{name}.mp4", a.seconds, size=size, fps=25,
                             extra_args=("-preset", "veryfast"))

            def decode():
                info = probe(src)
                for w in plan_windows(info.duration, WINDOW_S):
                    read_window_frames(src, sample_times(w, FRAMES), SHORT_SIDE, rotation=info.rotation)

            info = probe(src)
            windows = len(plan_windows(info.duration, WINDOW_S))
            music = np.random.default_rng(0).uniform(-0.3, 0.3, int(info.duration * MUSIC_RATE)).astype(np.float32)

            def mux():
                audio = fit_length(music, MUSIC_RATE, info.duration)
                mux_audio(src, audio, MUSIC_RATE, Path(tmp) / f"{name}.out.mp4", info.duration)

            d = _median(decode, a.repeats) / windows
            m = _median(mux, a.repeats) / windows
            print(f"{name:>6} {d:20.3f} {m:17.3f} {1 / (d + m):19.1f}")


if __name__ == "__main__":
    main()
