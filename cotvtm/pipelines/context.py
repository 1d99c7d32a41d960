"""What a soundtrack run's stages need to know, built once by the driver and handed to each.

``Where`` says where a run reads and writes; ``RunContext`` adds what the driver worked out
(the models, their sizes, the stores, the config digest, the fields every sidecar shares). It
is frozen and pickles into every actor, so stages take one argument instead of ten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cotvtm.settings import Resources, SoundtrackConfig
from cotvtm.models import ModelRefs
from cotvtm.pipelines.progress import PROGRESS_DIR, VideoProgress
from cotvtm.provenance import SigningFiles
from cotvtm.storage import Store


@dataclass(frozen=True)
class Where:
    """Where a run reads and writes: folders or ``s3://`` prefixes, the S3-compatible endpoint
    (else ``AWS_ENDPOINT_URL``), where the tiny preset is built (else the user cache), and
    whether hidden media under the source are inputs too, and whether every model must be
    licensed for commercial use (``cotvtm.licences``)."""

    source: str
    dest: str
    endpoint_url: str | None = None
    cache_dir: Path | None = None
    include_hidden: bool = False
    commercial: bool = False
    sign_cert: str | None = None  # with sign_key: where the C2PA signing credentials are (never their content)
    sign_key: str | None = None
    resign: bool = False  # with signing: existing outputs made unsigned are made again, signed
    teacher_url: str | None = None  # --conditioning teacher: its endpoint, its key's variable, its retries
    teacher_key_env: str = "OPENAI_API_KEY"
    teacher_retries: int = 6
    teacher_timeout: float = 60.0  # seconds per request, connect to last byte
    teacher_terms: str | None = None  # --teacher-terms: what the provider's terms allow for its answers

    def signing(self) -> SigningFiles | None:
        """Where the outputs' signer reads its certificate chain and key, when they are signed."""
        if self.sign_cert is None or self.sign_key is None:
            return None
        return SigningFiles(self.sign_cert, self.sign_key, self.endpoint_url)


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
