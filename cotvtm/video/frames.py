"""Decode a few frames at given timestamps, small and upright, without decoding the whole video.

For each timestamp the frame is the first whose presentation time is at or after it, the frame
``ffmpeg -ss t`` gives. PyAV is the only reader, and it opens every file under the job's protocol
and format whitelists (``video/ffmpeg.py``). decord is not offered: it bundles an FFmpeg of its
own (4.1 in decord 0.6), probes each file itself and takes no whitelist, so a file the gate
accepts as MPEG-TS can be opened by decord as an HLS playlist, returning frames of another local
file. A remuxed copy would still hand strangers' bitstreams to that old decoder, and cost a copy
of the video per read, for a reader that was no faster (docs/ARCHITECTURE.md, Frames).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from cotvtm.errors import MediaError
from cotvtm.video import ffmpeg, limits

READERS = ("pyav",)
TIME_EPS_S = 1e-6  # a frame stamped 0.3 s must count as "at or after 0.3"
SEEK_MARGINS_S = (0.0, 2.0, 10.0, float("inf"))  # seek again this far back when a seek lands late


@dataclass
class ReadStats:
    """Work done by one read, for tests and benchmarks."""

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
    if reader not in READERS:
        raise ValueError(f"unknown frame reader {reader!r}; choose one of {READERS}")
    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90, got {rotation}")
    order = np.argsort(times, kind="stable")
    frames = _read_pyav(path, [float(times[i]) for i in order], short_side, rotation % 360,
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


def _av_reason(error: Exception) -> str:
    """PyAV's message without its errno and function-name noise."""
    return getattr(error, "strerror", None) or str(error)

