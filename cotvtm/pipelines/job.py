"""The record that flows through the soundtrack pipeline, one per input video."""

from dataclasses import dataclass, field

import numpy as np

from cotvtm.video.types import VideoInfo, Window


@dataclass
class VideoJob:
    """An input video and what the stages have made of it so far.

    Each stage fills its fields and drops the bulky ones the next stages do not need
    (frames after CLIP, embeddings after MusicGen, audio after the mux), so a row stays
    small as it moves on. ``error`` set means later stages pass the job through.
    """

    key: str  # input key, relative to the input store's root
    out_video: str  # output keys, relative to the output store's root
    out_sidecar: str
    out_still: str | None = None  # image inputs: the optional still-image video
    info: VideoInfo | None = None
    windows: list[Window] = field(default_factory=list)
    frames: np.ndarray | None = None  # (windows, frames, H, W, 3) uint8
    e_v: np.ndarray | None = None  # (windows, clip_dim)
    e_m: np.ndarray | None = None  # (windows, L, music_dim)
    mask: np.ndarray | None = None  # (windows, L)
    explanations: list[list[dict]] = field(default_factory=list)  # per window: nearest teacher descriptions
    audio: np.ndarray | None = None  # (samples,) float32
    sample_rate: int = 0
    error: str | None = None
    error_stage: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage

    def fail(self, stage: str, reason: str) -> None:
        self.error, self.error_stage = reason, stage
        self.frames = self.e_v = self.e_m = self.mask = self.audio = None


@dataclass
class Outcome:
    """One manifest row: what happened to one input."""

    key: str
    status: str  # ok | error | skipped
    reason: str = ""
    output: str = ""
    sidecar: str = ""
    windows: int = 0
    duration: float = 0.0
