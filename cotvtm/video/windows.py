"""Plan the logical windows of a video and the timestamps sampled in each (pure functions)."""

from __future__ import annotations

import math

from cotvtm.video.types import Window

WINDOW_S = 10.0  # the paper generates music per 10 s clip
MIN_TAIL_S = 0.5  # a shorter trailing fragment cannot hold music: merge it into the previous window
FRAMES_PER_WINDOW = 8
TOLERANCE_S = 1e-6  # float noise in probed durations (10.0000001 s is one 10 s window)


def plan_windows(
    duration: float, window_s: float = WINDOW_S, min_tail_s: float = MIN_TAIL_S
) -> list[Window]:
    """Split ``[0, duration]`` into contiguous windows of ``window_s`` seconds.

    Rule: ``ceil(duration / window_s)`` windows (ignoring an excess below ``TOLERANCE_S``);
    window i is ``[i * window_s, (i + 1) * window_s)``, and the last one ends exactly at
    ``duration``, so it is usually shorter (35 s -> 10, 10, 10, 5). A trailing fragment
    shorter than ``min_tail_s`` is merged into the previous window, which then runs a little
    longer than ``window_s`` (10.2 s -> one window [0, 10.2]): a 0.2 s window could not
    hold any music. A clip shorter than one window gets a single window (3 s -> [0, 3]).
    """
    if not math.isfinite(duration) or duration <= 0:
        raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
    if not math.isfinite(window_s) or window_s <= 0:
        raise ValueError(f"window_s must be positive, got {window_s!r}")
    count = max(1, math.ceil((duration - TOLERANCE_S) / window_s))
    if count > 1 and duration - (count - 1) * window_s < min_tail_s:
        count -= 1
    return [
        Window(index=i, start=i * window_s, end=duration if i == count - 1 else (i + 1) * window_s)
        for i in range(count)
    ]


def sample_times(window: Window, n_frames: int = FRAMES_PER_WINDOW) -> list[float]:
    """The centres of ``n_frames`` equal sub-intervals of ``window``: evenly spread, sorted,
    and never on the window's edges (where a frame may belong to the neighbour)."""
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    step = window.duration / n_frames
    return [window.start + (i + 0.5) * step for i in range(n_frames)]
