"""Images as inputs (image-to-music): read, turn upright, and write the music out.

An image gets a music clip of a configured length. The image stands for every window of
that clip; the result is an audio file, and optionally a still-image video of it.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from cotvtm.errors import MediaError
from cotvtm.video.frames import scaled_size
from cotvtm.video.mux import AUDIO_BITRATE, FFMPEG, _run_ffmpeg
from cotvtm.video.probe import ffmpeg_url
from cotvtm.video.types import VideoInfo

MAX_PIXELS = 100_000_000  # a decompression bomb is refused, not decoded


def _open(path):
    from PIL import Image, ImageOps, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    size = os.path.getsize(path) if os.path.exists(path) else None
    if size is None:
        raise MediaError(path, "file not found")
    if size == 0:
        raise MediaError(path, "empty file (0 bytes)")
    try:
        with Image.open(path) as image:
            return ImageOps.exif_transpose(image).convert("RGB")  # EXIF orientation applied
    except Image.DecompressionBombError:
        raise MediaError(path, f"image larger than {MAX_PIXELS} pixels; refused") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        detail = "unknown or corrupt format" if isinstance(exc, UnidentifiedImageError) else type(exc).__name__
        raise MediaError(path, f"not an image that can be read ({detail})") from None


def probe_image(path, seconds: float) -> VideoInfo:
    """An image as a ``seconds``-long still: what the pipeline needs to plan its windows."""
    image = _open(path)
    return VideoInfo(path=str(path), duration=float(seconds), width=image.width, height=image.height, rotation=0,
                     fps=0.0, codec="image", nb_frames=1, has_audio=False, size_bytes=os.path.getsize(path))


def image_frames(path, count: int, short_side: int) -> np.ndarray:
    """(count, H, W, 3): the upright image, scaled so its short side is ``short_side``."""
    image = _open(path)
    image = image.resize(scaled_size(image.width, image.height, short_side))
    return np.repeat(np.asarray(image)[None], count, axis=0)


def write_audio(audio: np.ndarray, sample_rate: int, out_path) -> None:
    """The music as AAC in .m4a, written under a temporary name and renamed."""
    _encode(["-map", "0:a:0", "-c:a", "aac", "-b:a", AUDIO_BITRATE, "-movflags", "+faststart"], None,
            audio, sample_rate, Path(out_path))


def write_still_video(image_path, audio: np.ndarray, sample_rate: int, out_path) -> None:
    """The image shown for the music's length, H.264 + AAC in .mp4."""
    seconds = len(audio) / sample_rate  # -shortest overshoots with a looped image; -t does not
    args = ["-map", "1:v:0", "-map", "0:a:0", "-c:v", "libx264", "-tune", "stillimage", "-pix_fmt", "yuv420p",
            "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2", "-r", "1", "-c:a", "aac", "-b:a", AUDIO_BITRATE,
            "-t", f"{seconds:.3f}", "-movflags", "+faststart"]
    _encode(args, image_path, audio, sample_rate, Path(out_path))


def _encode(args: list[str], image_path, audio, sample_rate: int, out: Path) -> None:
    fd, wav = tempfile.mkstemp(prefix="cotvtm-", suffix=".wav")
    os.close(fd)
    tmp = out.with_name(f".{out.name}.tmp-{secrets.token_hex(4)}{out.suffix}")
    try:
        sf.write(wav, np.asarray(audio, np.float32), sample_rate, subtype="FLOAT")
        inputs = ["-i", ffmpeg_url(wav)] + (["-loop", "1", "-i", ffmpeg_url(image_path)] if image_path else [])
        _run_ffmpeg(image_path or wav, [FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-y", *inputs, *args,
                                        ffmpeg_url(tmp)])
        os.replace(tmp, out)
    finally:
        for leftover in (wav, tmp):
            if os.path.exists(leftover):
                os.remove(leftover)
