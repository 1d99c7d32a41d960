"""Decode a few frames at given timestamps, small and upright, without decoding the whole video.

One function, two backends: PyAV (default; maintained, bundles FFmpeg, as fast as decord in
bench/frames.py) and decord (optional, imported lazily). For each timestamp both return the
first frame whose presentation time is at or after it, the frame ``ffmpeg -ss t`` gives.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from cotvtm.errors import MediaError
from cotvtm.video import ffmpeg, limits

READERS = ("pyav", "decord")
TIME_EPS_S = 1e-6  # a frame stamped 0.3 s must count as "at or after 0.3"
SEEK_MARGINS_S = (0.0, 2.0, 10.0, float("inf"))  # seek again this far back when a seek lands late
DECORD_EPS_S = 1e-3  # decord keeps timestamps as float32: 1000.1 s comes back as 1000.09998
_DECORD_LOG_PREFIX = re.compile(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ")  # "[08:16:40] /src/x.cc:486: "


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
    if width <= height:
        return short_side, max(1, round(height * scale))
    return max(1, round(width * scale)), short_side


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
    """Seek to the keyframe at or before the first timestamp (again from earlier if the seek
    landed late), decode forward and stop after the last timestamp. A chosen frame is turned
    into RGB, scaled by swscale in the same step, as soon as it is decoded: full-size frames are
    never collected (``video/limits.py``)."""
    with _open_pyav(path) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        limits.check_frame(path, width, height)
        size = scaled_size(width, height, short_side)

        def picture(frame) -> np.ndarray:
            limits.check_frame(path, frame.width, frame.height)
            stats.frames_converted += 1
            return _upright(frame.to_ndarray(format="rgb24", width=size[0], height=size[1]), rotation)

        for margin in SEEK_MARGINS_S:
            picks = _scan_pyav(path, container, stream, times, max(0.0, times[0] - margin), picture, stats)
            if picks is not None:  # the last margin seeks to 0 s, which always lands
                break
        return np.stack(picks)


def _scan_pyav(path, container, stream, times: list[float], target: float, picture, stats: ReadStats):
    """The picture (``picture(frame)``) shown at each of ``times``, decoding forward from a seek
    to ``target``; a frame shown at several times is converted once.

    Returns None when the seek landed after ``times[0]`` (MPEG-TS seeks by byte position and
    lands late; a seek before the first keyframe fails): the caller retries from earlier.
    """
    import av

    base = float(stream.time_base)
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    picks, last, last_time, packet_time = [], None, None, target
    image = None  # ``last`` as a picture, once converted
    try:
        # At target 0 seek to pts 0, not to start_time: MPEG-TS lands on the 2nd keyframe for that.
        offset = int((start + target) / base) if target > 0 else min(0, stream.start_time or 0)
        container.seek(offset, stream=stream, backward=True)
        for packet in container.demux(stream):
            if packet.pts is not None:
                packet_time = packet.pts * base - start
            for frame in packet.decode():
                stats.frames_decoded += 1
                frame_time = frame.time - start
                if last is None and target > 0 and frame_time > times[0] + TIME_EPS_S:
                    return None
                last, last_time, image = frame, frame_time, None
                while len(picks) < len(times) and frame_time + TIME_EPS_S >= times[len(picks)]:
                    image = picture(frame) if image is None else image
                    picks.append(image)
                if len(picks) == len(times):
                    return picks
    except av.FFmpegError as e:
        if last is None and target > 0:
            return None
        reason = f"decoding failed at {packet_time:.1f} s ({_av_reason(e)})"
        raise MediaError(path, f"truncated or corrupt: {reason}") from None
    if last is None and target > 0:
        return None
    interval = 1.0 / float(stream.average_rate) if stream.average_rate else 0.0
    _check_reached(path, times[len(picks)], last_time, interval)
    image = picture(last) if image is None else image
    return picks + [image] * (len(times) - len(picks))


def _open_pyav(path):
    """An open PyAV container with at least one video stream, or MediaError. Opened under the
    job's protocol and format whitelists (``video/ffmpeg.py``): a playlist is never followed."""
    import av

    try:
        container = av.open(os.fspath(path), container_options=ffmpeg.pyav_options(ffmpeg.VIDEO_FORMATS))
    except (av.FFmpegError, OSError) as e:
        raise MediaError(path, f"cannot open video: {_av_reason(e)}") from None
    if not container.streams.video:
        container.close()
        raise MediaError(path, "not a video: no video stream")
    return container


def _read_decord(path, times: list[float], short_side, rotation: int, stats: ReadStats) -> np.ndarray:
    """decord reader: find the frames by timestamp and fetch them with one ``get_batch``.

    decord 0.6 turns rotated videos upright itself (rotating before it scales), so it is
    asked for the upright size and no rotation is applied here. Measured: on MPEG-TS it returns
    frames 2 s late (it ignores the stream's start time); use the PyAV reader for .ts files.
    """
    try:
        import decord
    except ImportError:
        raise RuntimeError("reader='decord' needs the optional package decord "
                           "(pip install 'cotvtm[decord]')") from None
    width, height = _stored_size(path)  # also the gate: decord itself would follow a playlist
    limits.check_frame(path, width, height)  # decord scales while decoding, but a frame is decoded whole
    if rotation in (90, 270):
        width, height = height, width
    w, h = scaled_size(width, height, short_side)
    try:
        vr = decord.VideoReader(os.fspath(path), ctx=decord.cpu(0), width=w, height=h)
        starts = vr.get_frame_timestamp(np.arange(len(vr)))[:, 0] if len(vr) else np.zeros(0)
        index = np.searchsorted(starts, np.asarray(times) - DECORD_EPS_S, side="left")
        if index[-1] >= len(starts):
            missing = times[int(np.argmax(index >= len(starts)))]
            last = float(starts[-1]) if len(starts) else None
            _check_reached(path, missing, last, 1.0 / vr.get_avg_fps() if vr.get_avg_fps() else 0.0)
            index = np.minimum(index, len(starts) - 1)
        unique, inverse = np.unique(index, return_inverse=True)
        batch = vr.get_batch(unique.tolist()).asnumpy()
    except (decord.DECORDError, RuntimeError, IndexError) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        reason = _DECORD_LOG_PREFIX.sub("", message)
        raise MediaError(path, f"truncated or corrupt: decord failed ({reason[:200]})") from None
    stats.frames_converted += len(unique)
    return batch[inverse]


def _stored_size(path) -> tuple[int, int]:
    """(width, height) of the stored picture from the container header (no decoding):
    decord only reports sizes after its own rotation."""
    with _open_pyav(path) as container:
        context = container.streams.video[0].codec_context
        return context.width, context.height


def _av_reason(error: Exception) -> str:
    """PyAV's message without its errno and function-name noise."""
    return getattr(error, "strerror", None) or str(error)


_READERS: dict[str, Callable[..., np.ndarray]] = {"pyav": _read_pyav, "decord": _read_decord}
