"""Data that flows through the video stages: what a file is (VideoInfo) and where its windows are."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VideoInfo:
    """What ffprobe says about one input file; enough to plan windows, read frames and mux.

    ``width``/``height`` are the stored picture size. ``rotation`` is how many degrees
    (0, 90, 180 or 270) the stored picture must be turned *clockwise* to be upright, the
    meaning of the legacy ``rotate`` tag: a phone video shot in portrait has ``rotation=90``.
    ``fps`` is 0.0 when the file does not say; ``nb_frames`` is None when the container
    has no frame count (Matroska, MPEG-TS).
    """

    path: str
    duration: float
    width: int
    height: int
    rotation: int
    fps: float
    codec: str
    nb_frames: int | None
    has_audio: bool
    size_bytes: int
    audio_rate: int = 0  # the first audio stream's sample rate, channels and ffmpeg layout name ("" unnamed)
    audio_channels: int = 0
    audio_layout: str = ""

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown to a viewer, after rotation."""
        if self.rotation in (90, 270):
            return self.height, self.width
        return self.width, self.height


@dataclass(frozen=True)
class Window:
    """A logical span [start, end) of a video in seconds; never a file of its own."""

    index: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start
