"""Settings of one evaluation run: test set, output, methods, models, sampling."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cotvtm.errors import CotvtmError
from cotvtm.teacher.settings import EndpointConfig

ROLES = ("fd", "fad", "kl", "ib", "p10", "ems_audio", "ems_visual")  # the evaluation models, one per metric

METHODS = ("cot-vtm", "mlp_mlp", "no_rationale", "retrieval", "caption2music", "cot2music", "llm2music")
PRIOR_METHODS = {"cot-vtm": "full", "mlp_mlp": "mlp_mlp", "no_rationale": "no_rationale"}  # method -> variant
CAPTION_SOURCES = ("model", "manifest")


@dataclass(frozen=True)
class EvalConfig:
    testset: str
    out: str
    preset: str = "tiny"
    methods: tuple[str, ...] = METHODS
    priors: dict = field(default_factory=dict)  # variant -> checkpoint dir
    train_tiny_priors: bool = True  # tiny preset without prior dirs: distill small priors offline first
    model_overrides: dict = field(default_factory=dict)  # clip/t5/musicgen/rationale -> ref
    eval_overrides: dict = field(default_factory=dict)  # metric role -> KIND:LOCATION
    bank: str | None = None  # the retrieval method's bank (None: the shipped one)
    retrieval_k: int = 1  # the retrieval method draws among this many nearest captions
    external: dict = field(default_factory=dict)  # name -> folder of another system's audio (eval/external.py)
    captioner: str | None = None  # None: "retrieval" (tiny) or BLIP (paper)
    captions: str = "model"  # model | manifest (manifest captions where given)
    endpoint: EndpointConfig | None = None  # None: the offline teacher for cot2music / llm2music
    window_s: float = 10.0
    frames_per_window: int = 8
    frame_reader: str = "pyav"
    short_side: int = 224
    guidance_scale: float = 3.0
    top_k: int = 250
    prior_steps: int | None = None
    batch_size: int = 8
    k: int = 10
    distractors: int = 69
    seed: int = 0
    device: str = "cpu"
    cache_dir: Path | None = None
    save_audio: bool = True

    def validate(self) -> EvalConfig:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            wrong = unknown[0] if unknown else "(none)"
            raise CotvtmError(f"unknown method {wrong!r}; choose from {', '.join(METHODS)}")
        if self.captions not in CAPTION_SOURCES:
            raise CotvtmError(f"--captions must be one of {', '.join(CAPTION_SOURCES)}")
        for name, value in (("--window-seconds", self.window_s), ("--frames-per-window", self.frames_per_window),
                            ("--batch-size", self.batch_size), ("--k", self.k)):
            if value <= 0:
                raise CotvtmError(f"{name} must be positive")
        if set(self.external) & {*METHODS, "ground truth"}:
            raise CotvtmError(f"--external {sorted(set(self.external) & {*METHODS, 'ground truth'})[0]}: the name "
                              "of one of the project's own rows; choose another")
        if self.distractors < 0:
            raise CotvtmError("--distractors must not be negative")
        if self.endpoint is not None:
            self.endpoint.validate()
        return self
