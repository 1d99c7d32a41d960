"""What kind of media a file is, and how its windows are planned and their frames sampled.

One place for the extensions (videos, images, and audio files, which are listed so that they
get a clear error), the output suffix of each kind, and the probe -> windows -> frames sequence
that the soundtrack passes, the training-set embedding and the evaluation share.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import PurePosixPath

import numpy as np

from cotvtm.video import limits
from cotvtm.video.limits import MAX_DURATION_S
from cotvtm.video.types import VideoInfo, Window

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".ts", ".mts", ".mpg", ".mpeg", ".flv", ".3gp")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
AUDIO_EXTENSIONS = (".m4a", ".mp3", ".wav", ".aac", ".flac", ".ogg", ".opus")
LISTED_EXTENSIONS = VIDEO_EXTENSIONS + IMAGE_EXTENSIONS + AUDIO_EXTENSIONS
KEEP_CONTAINER = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".ts", ".avi"}  # others are written as .mkv
MUSIC_SUFFIX = ".m4a"  # an image's output: the music itself


def _suffix(key: str) -> str:
    return PurePosixPath(key).suffix.lower()


def is_image(key: str) -> bool:
    return _suffix(key) in IMAGE_EXTENSIONS


def is_listed(key: str) -> bool:
    """Media the soundtrack job takes (or refuses with a reason); other files are ignored."""
    return _suffix(key) in LISTED_EXTENSIONS


def output_suffix(key: str) -> str:
    """A video keeps its container when ffmpeg can stream-copy into it; an image gets music."""
    if is_image(key):
        return MUSIC_SUFFIX
    return _suffix(key) if _suffix(key) in KEEP_CONTAINER else ".mkv"


def plan_media_windows(path, key: str, window_s: float, image_seconds: float,
                       max_duration_s: float = MAX_DURATION_S) -> tuple[VideoInfo, list[Window]]:
    """Probe ``path`` (the local copy of ``key``) and plan its windows; an image stands for every
    window of a clip ``image_seconds`` long."""
    from cotvtm.video.windows import plan_windows

    info = probe_media(path, key, image_seconds, max_duration_s)
    return info, plan_windows(info.duration, window_s)


def probe_media(path, key: str, image_seconds: float, max_duration_s: float = MAX_DURATION_S) -> VideoInfo:
    """What ``key`` is, refused (``video/limits.py``) before anything is planned when it declares
    more seconds or larger frames than the limits allow."""
    from cotvtm.video.image import probe_image
    from cotvtm.video.probe import probe

    if is_image(key):
        return replace(probe_image(path, image_seconds), path=key)
    info = replace(probe(path), path=key)
    limits.check_duration(key, info.duration, max_duration_s)
    limits.check_frame(key, info.width, info.height)
    return info


def plan_shots(path, key: str, window_s: float, image_seconds: float,
               max_duration_s: float = MAX_DURATION_S) -> tuple[VideoInfo, list[Window], list[float]]:
    """Like ``plan_media_windows``, with windows whose boundaries sit on the video's shot cuts
    (``video/shots.py``); the cuts too. An image has none."""
    from cotvtm.video.shots import detect_cuts
    from cotvtm.video.windows import plan_shot_windows, plan_windows

    info = probe_media(path, key, image_seconds, max_duration_s)
    if is_image(key):
        return info, plan_windows(info.duration, window_s), []
    cuts = [cut for cut in detect_cuts(path) if cut < info.duration]
    return info, plan_shot_windows(info.duration, cuts, window_s), cuts


def window_frames(path, key: str, info: VideoInfo, windows: list[Window], per_window: int, short_side: int | None,
                  reader: str = "pyav") -> np.ndarray:
    """(windows, per_window, H, W, 3) uint8: frames at the centres of equal parts of each window
    (an image's upright picture in every slot), scaled so the short side is ``short_side``."""
    from cotvtm.video.frames import read_window_frames
    from cotvtm.video.image import image_frames
    from cotvtm.video.windows import sample_times

    if is_image(key):
        return np.repeat(image_frames(path, per_window, short_side)[None], len(windows), axis=0)
    return np.stack([read_window_frames(path, sample_times(w, per_window), short_side, rotation=info.rotation,
                                        reader=reader) for w in windows])
