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


SHOT_MIN_S = 4.0  # shot-aware windows: a shorter shot joins a neighbour (when the pair fits SHOT_MAX_S)
SHOT_MAX_S = 14.0  # a longer shot is split evenly


def plan_shot_windows(duration: float, cuts: list[float], window_s: float = WINDOW_S, min_s: float = SHOT_MIN_S,
                      max_s: float = SHOT_MAX_S) -> list[Window]:
    """Windows whose boundaries sit on shot cuts, within limits.

    Every shot longer than ``max_s`` is split into equal windows of about ``window_s`` (none
    longer than ``max_s``); then a window shorter than ``min_s`` is merged into the shorter of
    its neighbours (in the same shot first) as long as the result fits ``max_s``, and a window
    shorter than ``MIN_TAIL_S`` always is. So a cut is a window boundary unless the shots on
    both sides of it are too short to stand alone.
    """
    if not math.isfinite(duration) or duration <= 0:
        raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
    edges = [0.0] + sorted({c for c in cuts if MIN_TAIL_S <= c <= duration - MIN_TAIL_S}) + [duration]
    spans: list[list[float]] = []
    for start, end in zip(edges, edges[1:]):
        length = end - start
        pieces = 1 if length <= max_s else max(math.ceil(length / max_s), round(length / window_s))
        spans += [[start + length * i / pieces, start + length * (i + 1) / pieces] for i in range(pieces)]
    spans = _merge_short(spans, min_s, max_s)
    return [Window(index=i, start=a, end=b) for i, (a, b) in enumerate(spans)]


def _merge_short(spans: list[list[float]], min_s: float, max_s: float) -> list[list[float]]:
    """Merge each too-short span into its shorter neighbour, shortest first."""
    while len(spans) > 1:
        short = [i for i, (a, b) in enumerate(spans) if b - a < min_s]
        candidates = []
        for i in short:
            for j in (i - 1, i + 1):
                if 0 <= j < len(spans):
                    merged = max(spans[i][1], spans[j][1]) - min(spans[i][0], spans[j][0])
                    if merged <= max_s or spans[i][1] - spans[i][0] < MIN_TAIL_S:
                        candidates.append((merged, i, j))
        if not candidates:
            break
        _, i, j = min(candidates)
        low, high = min(i, j), max(i, j)
        spans[low:high + 1] = [[spans[low][0], spans[high][1]]]
    return spans
