"""The records that flow through the soundtrack job's two passes."""

from dataclasses import dataclass, field

import numpy as np

from cotvtm.video.types import VideoInfo, Window


@dataclass
class VideoJob:
    """An input and its output keys; the row of the compose pass.

    ``error`` set means later stages pass the job through.
    """

    key: str  # input key, relative to the input store's root
    out_video: str  # output keys, relative to the output store's root
    out_sidecar: str
    out_still: str | None = None  # image inputs: the optional still-image video
    identity: str = ""  # the input's content identity when listed: saved work of other content is not reused
    info: VideoInfo | None = None
    windows: list[Window] = field(default_factory=list)
    segments: int = 0
    cuts: list[float] = field(default_factory=list)  # shot cuts (seconds), with --windows shots
    loudness: dict | None = None  # with --loudness: the target, what was measured, the gain (Mux)
    streams: list[dict] = field(default_factory=list)  # {"segments": [first, end], "first_window", "start"}
    resumed_at: int = 0  # segments whose music an earlier run had already saved
    sample_rate: int = 0
    error: str | None = None
    error_stage: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage

    def fail(self, stage: str, reason: str) -> None:
        self.error, self.error_stage = reason, stage


@dataclass
class Segment:
    """A run of consecutive windows of one video; the row of the conditioning pass.

    Each stage drops the bulky field the next one does not need (frames after CLIP,
    embeddings once the conditioning is saved), so rows stay small as they move on.
    """

    key: str
    index: int  # segment number within the video; -1 for a video that failed before its segments
    count: int  # segments in the video
    windows: list[Window] = field(default_factory=list)
    frames: np.ndarray | None = None  # (windows, frames, H, W, 3) uint8
    e_v: np.ndarray | None = None  # (windows, clip_dim)
    error: str | None = None
    error_stage: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def fail(self, stage: str, reason: str) -> None:
        self.error, self.error_stage = reason, stage
        self.frames = self.e_v = None


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
