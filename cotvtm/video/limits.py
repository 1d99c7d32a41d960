"""How large an input may be: every size limit on media, declared here and nowhere else.

A file's header can claim any length or picture size, and the work done for it (windows, the
plan, decoded pictures) grows with what it claims. A file over a limit is refused with a
``MediaError`` that names the limit and the file's value, before it is planned or decoded.

- ``MAX_DURATION_S`` (24 h; ``--max-duration`` / ``Resources.max_duration_s``): checked on
  the probed duration before any window is planned, so a 5 KB file claiming 10,000,000 s
  costs one ffprobe call, not a million windows.
- ``MAX_FRAME_PIXELS`` (8192 x 8192 = 67,108,864): a video frame is decoded at its full size
  before it is scaled, so this bounds one decoded frame to 96 MiB at 8-bit 4:2:0 (384 MiB at
  16-bit 4:4:4). It admits every production format, 8K UHD (7680 x 4320) and DCI 8K
  (8192 x 4320) included, and square 8K VR masters. Frames are scaled as they are decoded, so
  a read holds the frame being decoded and the one before it at full size, never a window's.
- ``MAX_IMAGE_PIXELS`` (2**27 = 134,217,728, about 11585 x 11585): enforced exactly on the
  header's size before any pixel is decoded (Pillow's own limit only refuses at twice its
  value). It admits the largest camera sensors (102 MP medium format, 11648 x 8736) and
  bounds an RGB decode to 384 MiB.
- ``IMAGE_FORMATS``: the Pillow decoders an image is opened with, the formats of the image
  extensions in ``video/media.py`` (the JPEG decoder also reads multi-picture camera JPEGs).
  Any other content (EPS, which Pillow hands to Ghostscript; PSD; ...) is refused unread.
"""

from __future__ import annotations

from cotvtm.errors import MediaError

MAX_DURATION_S = 24 * 3600.0
MAX_FRAME_PIXELS = 8192 * 8192
MAX_IMAGE_PIXELS = 1 << 27
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")


def check_duration(path, seconds: float, limit_s: float = MAX_DURATION_S) -> None:
    """Refuse a video that declares more than ``limit_s`` seconds."""
    if seconds > limit_s:
        raise MediaError(path, f"declares {_number(seconds)} s, over the {_number(limit_s)} s limit (--max-duration)")


def check_frame(path, width: int, height: int) -> None:
    """Refuse video frames of more than ``MAX_FRAME_PIXELS`` pixels."""
    if width * height > MAX_FRAME_PIXELS:
        raise MediaError(path, f"video frames of {width}x{height} ({width * height} pixels), over the "
                               f"{MAX_FRAME_PIXELS} pixel limit for video frames")


def check_image(path, width: int, height: int) -> None:
    """Refuse an image of more than ``MAX_IMAGE_PIXELS`` pixels."""
    if width * height > MAX_IMAGE_PIXELS:
        raise MediaError(path, f"image of {width}x{height} ({width * height} pixels), over the "
                               f"{MAX_IMAGE_PIXELS} pixel limit for images")


def _number(seconds: float) -> str:
    """10000000.0 -> "10000000", 0.25 -> "0.25": no exponent, no trailing zeros."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".")
