"""What a soundtrack run's stages need to know, built once by the driver and handed to each.

``settings.Access`` says where a run reads and writes; ``RunContext`` adds what the driver
worked out (the models, their sizes, the stores, the config digest, the fields every sidecar
shares). It is frozen and pickles into every actor, so stages take one argument instead of ten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from cotvtm.settings import Resources, SoundtrackConfig
from cotvtm.models import ModelRefs
from cotvtm.pipelines.progress import PROGRESS_DIR, VideoProgress
from cotvtm.provenance import SigningFiles
from cotvtm.storage import Store


@dataclass(frozen=True)
class ModelFacts:
    """What the driver reads from the models' configs once: the sizes the prior must match,
    CLIP's input size, and whether the prior was trained."""

    dims: dict  # clip_dim, music_dim, rationale_dim
    short_side: int
    prior_trained: bool
    conditioning: str = ""  # what conditions the music, in words (runner._conditioning)


@dataclass(frozen=True)
class RunContext:
    refs: ModelRefs
    cfg: SoundtrackConfig
    res: Resources
    facts: ModelFacts
    src: Store
    out: Store
    digest: str  # the config digest: part of every output name
    sidecar: dict = field(default_factory=dict)  # fields every sidecar shares
    signing: SigningFiles | None = None  # with --sign-cert/--sign-key: the Mux stage signs every output
    bank: tuple = ()  # with the retrieval prior: the bank's entries (prior/bank.py), read by the driver
    teacher: object = None  # with --conditioning teacher: its endpoint (teacher.settings.EndpointConfig)

    @cached_property
    def progress(self) -> Store:
        """Where saved progress lives (hidden in the output store)."""
        return self.out.child(PROGRESS_DIR)

    def video(self, key: str, variant: int = 1) -> VideoProgress:
        """One input's saved progress (its music: that of ``variant``)."""
        return VideoProgress(self.progress, self.digest, key, variant)
