"""Images as inputs (image-to-music): read, turn upright, and write the music out.

An image gets a music clip of a configured length. The image stands for every window of
that clip; the result is an audio file, and optionally a still-image video of it.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf

from cotvtm.errors import MediaError
from cotvtm.video.ffmpeg import ffmpeg_url
from cotvtm.video.frames import scaled_size
from cotvtm.video.limits import IMAGE_FORMATS, MAX_IMAGE_PIXELS, check_image
from cotvtm.provenance import Marking
from cotvtm.music.channels import channels_of
from cotvtm.video.delivery import AudioFormat, Delivery, audio_format, music_filter
from cotvtm.video.mux import FFMPEG, _run_ffmpeg, encoder_options, output_options
from cotvtm.video.types import VideoInfo

_EXIF_ORIENTATION = 0x0112
_TURNS = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
          7: "TRANSVERSE", 8: "ROTATE_90"}  # EXIF orientation -> the Pillow transpose that makes it upright
_SIDEWAYS = {5, 6, 7, 8}  # orientations whose upright picture swaps width and height


def _check_file(path) -> None:
    if not os.path.exists(path):
        raise MediaError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise MediaError(path, "empty file (0 bytes)")


@contextmanager
def _opened(path):
    """The image opened once, by the decoders of ``IMAGE_FORMATS`` only (an EPS file never reaches
    Ghostscript), and refused over ``MAX_IMAGE_PIXELS`` from its header, before any pixel is
    decoded. A failure inside the block, decoding included, is a MediaError."""
    from PIL import Image, UnidentifiedImageError

    _check_file(path)
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # Pillow's own check, a backstop at twice the limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the exact check follows
            with Image.open(path, formats=IMAGE_FORMATS) as image:
                check_image(path, *image.size)
                yield image
    except Image.DecompressionBombError as exc:  # Pillow's message: "Image size (N pixels) exceeds ..."
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        declared = f"image of {pixels.group(1)} pixels" if pixels else "image"
        raise MediaError(path, f"{declared}, over the {MAX_IMAGE_PIXELS} pixel limit for images") from None
    except UnidentifiedImageError:
        raise MediaError(path, "not an image that can be read (unknown or corrupt format; accepted: "
                               f"{', '.join(IMAGE_FORMATS)})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaError(path, f"not an image that can be read ({type(exc).__name__})") from None


def _orientation(image) -> int:
    """The EXIF orientation (1: upright) from what the header gave, without decoding: Pillow's
    PNG reader would decode the whole image to look for an eXIf chunk after the pixels (which
    the PNG specification places before them)."""
    from PIL import Image

    return int(Image.Image.getexif(image).get(_EXIF_ORIENTATION, 1))


def probe_image(path, seconds: float) -> VideoInfo:
    """An image as a ``seconds``-long still: what the pipeline needs to plan its windows, from
    the header alone."""
    with _opened(path) as image:
        width, height = image.size
        if _orientation(image) in _SIDEWAYS:
            width, height = height, width
    return VideoInfo(path=str(path), duration=float(seconds), width=width, height=height, rotation=0,
                     fps=0.0, codec="image", nb_frames=1, has_audio=False, size_bytes=os.path.getsize(path))


def image_frames(path, count: int, short_side: int) -> np.ndarray:
    """(count, H, W, 3): the upright image, scaled so its short side is ``short_side``."""
    from PIL import Image

    with _opened(path) as image:
        turn = _TURNS.get(_orientation(image))
        picture = image.convert("RGB")
    if turn:
        picture = picture.transpose(getattr(Image.Transpose, turn))
    picture = picture.resize(scaled_size(picture.width, picture.height, short_side))
    return np.repeat(np.asarray(picture)[None], count, axis=0)


def write_audio(audio: np.ndarray, sample_rate: int, out_path, marking: Marking | None = None,
                fmt: AudioFormat | None = None) -> None:
    """The music as AAC in .m4a in the delivery format ``fmt`` (default 48 kHz stereo), written
    under a temporary name and renamed; with ``marking``, its tags in the same call."""
    _encode(["-map", "0:a:0", *_audio_options(audio, fmt), *output_options(".m4a", marking, True)], None,
            audio, sample_rate, Path(out_path))


def write_still_video(image_path, audio: np.ndarray, sample_rate: int, out_path,
                      marking: Marking | None = None, fmt: AudioFormat | None = None) -> None:
    """The image shown for the music's length, H.264 + AAC in .mp4 (audio as ``write_audio``);
    with ``marking``, its tags."""
    seconds = len(audio) / sample_rate  # -shortest overshoots with a looped image; -t does not
    args = ["-map", "1:v:0", "-map", "0:a:0", "-c:v", "libx264", "-tune", "stillimage", "-pix_fmt", "yuv420p",
            "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2", "-r", "1", *_audio_options(audio, fmt),
            "-t", f"{seconds:.3f}", *output_options(".mp4", marking, True)]
    _encode(args, image_path, audio, sample_rate, Path(out_path))


def _audio_options(audio: np.ndarray, fmt: AudioFormat | None) -> list[str]:
    """The music brought to ``fmt`` and encoded in it."""
    fmt = fmt or audio_format(Delivery(), "aac", None)
    return ["-af", music_filter(fmt, channels_of(audio)), *encoder_options(fmt)]


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
