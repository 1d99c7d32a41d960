"""The records of the soundtrack job, in the order they flow.

    pass 1:  Source --Decode--> Segment (frames) --Embed--> Segment (e_v) --Prior--> Segment (saved)
    pass 2:  VideoJob --Music--> Composed --Mux--> Outcome

Every record is frozen. The driver lists each input's ``Track``s and makes each ``Source`` and
``VideoJob`` once, with everything it knows (the style, the saved plan, the segments already
done). A stage hands on new records: what it learns (a segment's frames, E_v, captions; the
decoder that made the music; at Mux the ending and the beats, in the ``Outcome``) and its
failures (``Record.failed``) are in the records it returns. A record that failed
passes the later stages untouched and reaches the driver as it failed, which makes its
manifest row with ``Outcome.of_failed``.
"""

from dataclasses import dataclass, field, fields, replace

import numpy as np

from cotvtm.errors import without_ansi
from cotvtm.pipelines.progress import Plan
from cotvtm.stage import Record
from cotvtm.video.types import Window


@dataclass(frozen=True)
class Source(Record):
    """An input for pass 1: its key, its content identity when listed (saved work of other
    content is not reused), and for a partly done input its saved plan and the segments whose
    conditioning is saved."""

    key: str
    identity: str = ""
    plan: Plan | None = None
    conditioned: frozenset = frozenset()


@dataclass(frozen=True)
class Segment(Record):
    """A run of consecutive windows of one video.

    Each stage drops the bulky field the next one does not need (frames after CLIP, E_v once
    the conditioning is saved), so rows stay small as they move on.
    """

    key: str
    index: int  # segment number within the video; -1 for a video that failed before its segments
    count: int  # segments in the video
    windows: list[Window] = field(default_factory=list)
    frames: np.ndarray | None = None  # (windows, frames, H, W, 3) uint8
    e_v: np.ndarray | None = None  # (windows, clip_dim)
    captions: list[str] = field(default_factory=list)  # --conditioning teacher: what each window shows

    def failed(self, stage: str, reason: str) -> "Segment":
        return replace(super().failed(stage, reason), frames=None, e_v=None)


@dataclass(frozen=True)
class Track:
    """One output the run makes, as the driver lists it before any saved progress is read: an
    input's variant (``--variants``), its output keys, its content identity and its style."""

    key: str
    out_video: str
    out_sidecar: str
    out_still: str | None = None  # image inputs: the optional still-image video
    identity: str = ""
    style: str | None = None  # the style text steering its music (--style, --styles)
    variant: int = 1  # which of the input's --variants tracks


@dataclass(frozen=True)
class VideoJob(Record):
    """An input for pass 2: its ``Track``, and the segments whose music an earlier run saved
    (from the one listing of saved progress, read wave by wave)."""

    key: str
    out_video: str
    out_sidecar: str
    out_still: str | None = None
    identity: str = ""
    composed: frozenset = frozenset()
    style: str | None = None
    variant: int = 1

    @classmethod
    def of(cls, track: Track, composed: frozenset) -> "VideoJob":
        return cls(**{f.name: getattr(track, f.name) for f in fields(track)}, composed=composed)

    @property
    def stream_key(self) -> str:
        """What the random streams of its windows are drawn for: variant 1's are the input's own."""
        return self.key if self.variant == 1 else f"{self.key}\x00variant {self.variant}"


@dataclass(frozen=True)
class Composed(Record):
    """A video whose music is saved, segment by segment: what Mux needs to finish it."""

    job: VideoJob
    plan: Plan
    streams: list[dict]  # {"segments": [first, end], "first_window", "start"}: where each stream begins
    resumed_at: int  # segments whose music an earlier run had already saved
    sample_rate: int
    decoder: dict = field(default_factory=dict)  # the decoder that made the music (its ``describe``)

    @property
    def key(self) -> str:
        return self.job.key

    @property
    def variant(self) -> int:
        return self.job.variant


@dataclass(frozen=True)
class Outcome(Record):
    """One manifest row: what happened to one input (``row()``: its fields, without the
    record's own); from Mux also what it learned of the music it finished."""

    key: str
    status: str  # ok | error | skipped
    reason: str = ""
    output: str = ""
    sidecar: str = ""
    windows: int = 0
    duration: float = 0.0
    variant: int = 1
    ending: dict | None = None  # how the track ended (music/ending.py)
    beats: list[float] | None = None  # the music's beats, seconds (music/beats.py); None: not tracked
    warnings: list[str] = field(default_factory=list)  # e.g. why no beats were tracked

    @classmethod
    def of_failed(cls, record: Record, variant: int | None = None) -> "Outcome":
        """The error row of a record that failed at a stage (of ``variant``, for a record of no
        variant), its reason without a terminal's colour codes (Ray colours its messages)."""
        return cls(record.key, "error", reason=without_ansi(f"{record.error_stage}: {record.error}"),
                   variant=record.variant if variant is None else variant)

    def row(self) -> dict:
        return {name: getattr(self, name) for name in MANIFEST_FIELDS}


MANIFEST_FIELDS = ("key", "status", "reason", "output", "sidecar", "windows", "duration", "variant")
