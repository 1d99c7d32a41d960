"""Decode a few frames at given timestamps, small and upright, without decoding the whole video.

One function, two backends: PyAV (default; maintained, bundles FFmpeg) and decord (optional,
imported lazily). Both return the frame shown at each timestamp: the first frame whose
presentation time is at or after it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from cotvtm.errors import MediaError

READERS = ("pyav", "decord")
TIME_EPS_S = 1e-6  # a frame stamped 0.3 s must count as "at or after 0.3"


@dataclass
class ReadStats:
    """Work done by one read, for tests and benchmarks. ``frames_decoded`` is counted by the
    PyAV reader only (decord decodes inside C++)."""

    frames_decoded: int = 0
    frames_converted: int = 0


def read_window_frames(
    path: str | os.PathLike,
    times: Sequence[float],
    short_side: int | None,
    rotation: int = 0,
    reader: str = "pyav",
    stats: ReadStats | None = None,
) -> np.ndarray:
    """Frames at ``times`` (seconds from the start of the video) as ``(n, H, W, 3)`` uint8 RGB.

    The shorter side is scaled to ``short_side`` (None: stored size) inside the decoder's
    pixel-format conversion, and frames are turned upright by ``rotation`` (clockwise degrees,
    as in ``VideoInfo.rotation``), so a portrait phone video gives portrait frames.
    """
    if not len(times):
        raise ValueError("times is empty")
    if reader not in _READERS:
        raise ValueError(f"unknown frame reader {reader!r}; choose one of {READERS}")
    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90, got {rotation}")
    order = np.argsort(times, kind="stable")
    frames = _READERS[reader](path, [float(times[i]) for i in order], short_side, rotation % 360,
                              stats if stats is not None else ReadStats())
    out = np.empty_like(frames)
    out[order] = frames
    return out


def scaled_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) with the shorter side equal to ``short_side``, aspect ratio kept."""
    if short_side is None or short_side <= 0:
        return width, height
    scale = short_side / min(width, height)
    return (short_side, max(1, round(height * scale))) if width <= height else (max(1, round(width * scale)), short_side)


def _upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored picture ``rotation`` degrees clockwise (np.rot90 turns counter-clockwise)."""
    return np.ascontiguousarray(np.rot90(image, k=-(rotation // 90))) if rotation else image


def _check_reached(path, wanted: float, last_time: float | None, interval: float) -> None:
    """The stream ended before ``wanted``: fine if its last frame is still on screen then
    (the last window of a video), a truncated file if frames stopped earlier."""
    if last_time is None:
        raise MediaError(path, f"truncated or corrupt: no video frames at or after {wanted:.1f} s")
    if last_time + interval + TIME_EPS_S < wanted:
        raise MediaError(
            path, f"truncated or corrupt: video frames stop at {last_time:.1f} s, wanted {wanted:.1f} s"
        )


def _read_pyav(path, times: list[float], short_side, rotation: int, stats: ReadStats) -> np.ndarray:
    """Seek once to the keyframe at or before the first timestamp, decode forward, convert only
    the chosen frames, and stop after the last timestamp."""
    import av

    with _open_pyav(path) as container:
        stream = container.streams.video[0]
        base = float(stream.time_base)
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        interval = 1.0 / float(stream.average_rate) if stream.average_rate else 0.0
        size = scaled_size(stream.codec_context.width, stream.codec_context.height, short_side)
        chosen: list[np.ndarray] = []
        frame, frame_time, converted_time, packet_time = None, None, None, times[0]

        def take() -> None:
            """Keep ``frame`` for the next timestamp; convert it unless it was just converted."""
            nonlocal converted_time
            if converted_time != frame_time:
                stats.frames_converted += 1
                image = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
                chosen.append(_upright(image, rotation))
                converted_time = frame_time
            else:
                chosen.append(chosen[-1])

        try:
            container.seek(int((start + times[0]) / base), stream=stream, backward=True)
            for packet in container.demux(stream):
                if packet.pts is not None:
                    packet_time = packet.pts * base - start
                for frame in packet.decode():
                    stats.frames_decoded += 1
                    frame_time = frame.time - start
                    while len(chosen) < len(times) and frame_time + TIME_EPS_S >= times[len(chosen)]:
                        take()
                    if len(chosen) == len(times):
                        return np.stack(chosen)
        except av.FFmpegError as e:
            reason = f"decoding failed at {packet_time:.1f} s ({_av_reason(e)})"
            raise MediaError(path, f"truncated or corrupt: {reason}") from None
        _check_reached(path, times[len(chosen)], frame_time, interval)
        while len(chosen) < len(times):
            take()
        return np.stack(chosen)


def _open_pyav(path):
    """An open PyAV container with at least one video stream, or MediaError."""
    import av

    try:
        container = av.open(os.fspath(path))
    except (av.FFmpegError, OSError) as e:
        raise MediaError(path, f"cannot open video: {_av_reason(e)}") from None
    if not container.streams.video:
        container.close()
        raise MediaError(path, "not a video: no video stream")
    return container


def _read_decord(path, times: list[float], short_side, rotation: int, stats: ReadStats) -> np.ndarray:
    """decord reader: find the frames by timestamp and fetch them with one ``get_batch``.

    decord 0.6 turns rotated videos upright itself (rotating before it scales), so it is
    asked for the upright size and no rotation is applied here.
    """
    try:
        import decord
    except ImportError:
        raise RuntimeError("reader='decord' needs the optional package decord (pip install decord)") from None
    with _open_pyav(path) as container:  # header only: the stored size, which decord does not expose
        width, height = container.streams.video[0].codec_context.width, container.streams.video[0].codec_context.height
    if rotation in (90, 270):
        width, height = height, width
    w, h = scaled_size(width, height, short_side)
    try:
        vr = decord.VideoReader(os.fspath(path), ctx=decord.cpu(0), width=w, height=h)
        starts = vr.get_frame_timestamp(np.arange(len(vr)))[:, 0] if len(vr) else np.zeros(0)
        index = np.searchsorted(starts, np.asarray(times) - TIME_EPS_S, side="left")
        if index[-1] >= len(starts):
            missing = times[int(np.argmax(index >= len(starts)))]
            fps = vr.get_avg_fps()
            _check_reached(path, missing, float(starts[-1]) if len(starts) else None, 1.0 / fps if fps else 0.0)
            index = np.minimum(index, len(starts) - 1)
        unique, inverse = np.unique(index, return_inverse=True)
        batch = vr.get_batch(unique.tolist()).asnumpy()
    except (decord.DECORDError, RuntimeError, IndexError) as e:
        reason = str(e).strip().splitlines()[-1][:200] if str(e).strip() else type(e).__name__
        raise MediaError(path, f"truncated or corrupt: decord failed ({reason})") from None
    stats.frames_converted += len(unique)
    return batch[inverse]


def _av_reason(error: Exception) -> str:
    """PyAV's message without its errno and function-name noise."""
    return getattr(error, "strerror", None) or str(error)


_READERS: dict[str, Callable[..., np.ndarray]] = {"pyav": _read_pyav, "decord": _read_decord}
