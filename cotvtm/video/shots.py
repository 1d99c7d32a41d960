"""Shot cuts from ffmpeg's own scene score, on downscaled frames.

ffmpeg's ``select`` filter scores how much each frame differs from the one before (``scene``,
0..1, from the sum of absolute differences after motion is discounted). A frame scoring above
``threshold`` starts a new shot: its timestamp is the cut. A hard cut between two shots scores
far above it; a fade spreads the change over many frames, each scoring low, so it is not a
cut. Frames are scaled to ``HEIGHT`` rows first: the score needs no detail, and decoding is
then most of the cost (``bench/shot_detection.py`` prints it as x real time per CPU core).
"""

from __future__ import annotations

import re
from pathlib import Path

from cotvtm.errors import MediaError
from cotvtm.video import ffmpeg

THRESHOLD = 0.3
HEIGHT = 72
MIN_SHOT_S = 0.5  # a cut this soon after another (a flash, a burst of changing frames) is the same cut
_PTS = re.compile(r"pts_time:\s*([0-9.]+)")


def detect_cuts(path: str | Path, threshold: float = THRESHOLD, threads: int = 1,
                timeout_s: float = 3600) -> list[float]:
    """Seconds at which a new shot starts (the first frame after each cut), sorted."""
    graph = f"scale=-2:{HEIGHT},select='gt(scene\\,{threshold})',showinfo"
    command = [ffmpeg.FFMPEG, "-hide_banner", "-nostdin", "-threads", str(threads), "-i", ffmpeg.ffmpeg_url(path),
               "-map", "0:v:0", "-an", "-vf", graph, "-f", "null", "-"]
    done = ffmpeg.run(command, path, "shot detection", timeout_s, formats=ffmpeg.VIDEO_FORMATS, text=True)
    if done.returncode != 0:
        raise MediaError(str(path), f"shot detection failed: {ffmpeg.summarise_stderr(done.stderr)}")
    times = sorted(float(m.group(1)) for line in done.stderr.splitlines() if "Parsed_showinfo" in line
                   for m in [_PTS.search(line)] if m)
    cuts: list[float] = []
    for time in times:
        if time > 0 and (not cuts or time - cuts[-1] >= MIN_SHOT_S):
            cuts.append(time)
    return cuts
