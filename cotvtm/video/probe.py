"""Describe an input file with one ffprobe call, failing with a reason a user can act on."""

from __future__ import annotations

import json
import math
import os
from fractions import Fraction
from pathlib import Path

from cotvtm.errors import MediaError
from cotvtm.video import ffmpeg
from cotvtm.video.types import VideoInfo

PROBE_TIMEOUT_S = 60
STILL_IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe"}


def probe(path: str | os.PathLike) -> VideoInfo:
    """Probe ``path``; raise MediaError if it is not a readable video with a known duration."""
    path = Path(path)
    size = _check_readable(path)
    data = _run_ffprobe(path)
    fmt = data.get("format", {})
    video = _video_stream(path, data.get("streams", []), fmt)
    duration = _first_number(video.get("duration"), fmt.get("duration"))
    if duration is None or duration <= 0:
        raise MediaError(path, "unknown duration")
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise MediaError(path, "unknown picture size")
    nb_frames = int(video["nb_frames"]) if str(video.get("nb_frames", "")).isdigit() else None
    return VideoInfo(
        path=str(path),
        duration=duration,
        width=width,
        height=height,
        rotation=_rotation(video),
        fps=_fps(video, nb_frames, duration),
        codec=video.get("codec_name", "unknown"),
        nb_frames=nb_frames,
        has_audio=any(s.get("codec_type") == "audio" for s in data.get("streams", [])),
        size_bytes=size,
        **_audio(data.get("streams", [])),
    )


def _audio(streams: list[dict]) -> dict:
    """The first audio stream's rate, channels and layout: what an output that keeps it keeps."""
    audio = next((s for s in streams if s.get("codec_type") == "audio"), {})
    rate, channels = str(audio.get("sample_rate", "")), str(audio.get("channels", ""))
    return {"audio_rate": int(rate) if rate.isdigit() else 0, "audio_channels": int(channels) if channels.isdigit()
            else 0, "audio_layout": str(audio.get("channel_layout", ""))[:40]}


def _check_readable(path: Path) -> int:
    """Catch the common cases before ffprobe turns them into a vaguer message."""
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise MediaError(path, "is a directory, not a file")
        if size == 0:
            raise MediaError(path, "empty file (0 bytes)")
        with open(path, "rb") as f:
            f.read(1)
    except FileNotFoundError:
        raise MediaError(path, "file not found") from None
    except PermissionError:
        raise MediaError(path, "permission denied") from None
    except OSError as e:
        raise MediaError(path, f"cannot read file ({e.strerror or e})") from None
    return size


def _run_ffprobe(path: Path) -> dict:
    url = ffmpeg.ffmpeg_url(path)
    cmd = [ffmpeg.FFPROBE, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", "-i", url]
    done = ffmpeg.run(cmd, path, "ffprobe", PROBE_TIMEOUT_S)
    if done.returncode != 0:
        reason = ffmpeg.summarise_stderr(done.stderr, url)
        raise MediaError(path, f"not a media file ffmpeg can read: {reason}")
    return json.loads(done.stdout or b"{}")


def _video_stream(path: Path, streams: list[dict], fmt: dict) -> dict:
    """The first real video stream; cover art (``attached_pic``) in music files is not video."""
    videos = [
        s for s in streams
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
    ]
    if not videos:
        kinds = sorted({s.get("codec_type", "unknown") for s in streams})
        found = "audio-only file" if kinds == ["audio"] else f"streams: {', '.join(kinds)}"
        found = found if kinds else "no streams"
        raise MediaError(path, f"not a video: ffprobe found no video stream ({found})")
    if fmt.get("format_name") in STILL_IMAGE_FORMATS:
        raise MediaError(path, f"not a video: still image ({fmt['format_name']})")
    return videos[0]


def _rotation(stream: dict) -> int:
    """Clockwise degrees to turn the stored picture upright, in {0, 90, 180, 270}.

    ffprobe reports the display matrix's ``rotation`` counter-clockwise (a portrait phone
    video says -90); the legacy ``rotate`` tag (ffmpeg < 5) is already clockwise (90).
    """
    for side in stream.get("side_data_list", []):
        if side.get("side_data_type") == "Display Matrix" and "rotation" in side:
            return _quarter_turns(-float(side["rotation"]))
    if "rotate" in stream.get("tags", {}):
        return _quarter_turns(float(stream["tags"]["rotate"]))
    return 0


def _quarter_turns(degrees: float) -> int:
    return int(round(degrees / 90.0)) % 4 * 90


def _fps(stream: dict, nb_frames: int | None, duration: float) -> float:
    for key in ("avg_frame_rate", "r_frame_rate"):
        rate = _fraction(stream.get(key))
        if rate:
            return rate
    return nb_frames / duration if nb_frames else 0.0


def _fraction(text: str | None) -> float:
    """"30000/1001" -> 29.97; "0/0" or missing -> 0.0."""
    try:
        value = float(Fraction(text)) if text else 0.0
    except (ValueError, ZeroDivisionError):
        return 0.0
    return value if math.isfinite(value) and value > 0 else 0.0


def _first_number(*values: str | None) -> float | None:
    for value in values:
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number) and number > 0:
            return number
    return None
