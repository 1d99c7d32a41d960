"""Settings of one evaluation run: test set, output, methods, models, sampling.

A setting the soundtrack job has too (the preset, the window, the sampling) is borrowed from
its declaration with ``same``, so the two commands cannot drift apart; the teacher endpoint is
the labelling run's own ``EndpointConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from cotvtm.options import Checked, positive, same, setting, split
from cotvtm.settings import Access, ModelChoice, Resources, SoundtrackConfig, default_device
from cotvtm.teacher.settings import EndpointConfig

METHODS = ("cot-vtm", "mlp_mlp", "no_rationale", "retrieval", "caption2music", "cot2music", "llm2music")
PRIOR_METHODS = {"cot-vtm": "full", "mlp_mlp": "mlp_mlp", "no_rationale": "no_rationale"}  # method -> variant
CAPTION_SOURCES = ("model", "manifest")
OWN_ROWS = (*METHODS, "ground truth")  # the table's rows that an --external name may not take
_GENERATION = ("clip", "t5", "musicgen", "rationale")  # per-component references over the preset's
_EXTERNAL = "--external: expected NAME=DIR (a name for the table, the folder of its audio), each NAME once"


def external_folders(values) -> dict[str, str]:
    """``NAME=DIR`` values -> {name: folder}; a malformed or repeated one is left out (the
    check of ``external`` refuses those)."""
    pairs = [value.partition("=") for value in values]
    return {name.strip(): folder.strip() for name, sep, folder in pairs if sep and name.strip() and folder.strip()}


@dataclass(frozen=True)
class MetricModels(Checked):
    """The evaluation models, one per metric, each over the preset's (``KIND:LOCATION``; the
    kinds are in cotvtm/eval/embedders.py)."""

    fd: str | None = setting(None, metavar="REF", help="FD's audio embedder")
    fad: str | None = setting(None, metavar="REF", help="FAD's audio embedder")
    kl: str | None = setting(None, metavar="REF", help="KL's audio tagger")
    ib: str | None = setting(None, metavar="REF", help="IB's joint visual and audio embedder")
    p10: str | None = setting(None, metavar="REF", help="P@10's music features")
    ems_audio: str | None = setting(None, metavar="REF", help="EMS's valence and arousal of the music")
    ems_visual: str | None = setting(None, metavar="REF", help="EMS's valence and arousal of the visuals")

    def overrides(self) -> dict[str, str]:
        """The roles given, by role."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}


@dataclass(frozen=True)
class EvalConfig(Checked):
    """One evaluation: which methods, with which models, on which items, scored how."""

    testset: str = setting(positional=True, help="manifest (.jsonl or .csv): id, visual (video or image), audio, "
                                                 "[caption]")
    out: str = setting(positional=True, help="output folder: results.md/.csv/.json, metrics.png, tradeoff.png, "
                                             "audio/")
    methods: tuple[str, ...] = setting(METHODS, flag="--method", choices=METHODS, shown_default="all",
                                       help="method to run (repeat)")
    preset: str = same(ModelChoice, "preset")
    clip: str | None = same(ModelChoice, "clip")
    t5: str | None = same(ModelChoice, "t5")
    musicgen: str | None = same(ModelChoice, "musicgen")
    rationale: str | None = same(ModelChoice, "rationale")
    tiny_seed: int = same(ModelChoice, "tiny_seed")
    prior_full: str | None = setting(None, metavar="DIR", help="prior checkpoint for cot-vtm")
    prior_mlp_mlp: str | None = setting(None, metavar="DIR", help="prior checkpoint for the mlp_mlp ablation")
    prior_no_rationale: str | None = setting(None, metavar="DIR",
                                             help="prior checkpoint for the no_rationale ablation")
    untrained_priors: bool = setting(False, help="tiny preset: use random priors instead of distilling small ones "
                                                 "first")
    bank: str | None = same(ModelChoice, "bank", help="the retrieval method's bank from `cotvtm bank` (a local file "
                                                      "or s3:// URI); default: the shipped scene bank")
    retrieval_k: int = same(SoundtrackConfig, "retrieval_k")
    external: tuple[str, ...] = setting(factory=tuple, metavar="NAME=DIR", check=(
        lambda v: len(external_folders(v)) == len(v), _EXTERNAL),
        help="score audio another system made for the test set: exactly one file per item, DIR/<id>.<ext> in DIR "
             "itself (id as audio/<method>/ names them; subfolders are not searched), any common audio format, local "
             "or s3://; only the item's length is decoded (repeat)")
    captioner: str | None = same(SoundtrackConfig, "captioner",
                                 help="the caption baselines' captioner: retrieval (the scene description nearest the "
                                      "frames by CLIP) or blip:REF (default: retrieval with the tiny preset, "
                                      "BLIP-large otherwise)")
    captions: str = setting("model", choices=CAPTION_SOURCES,
                            help="caption source for the caption baselines (manifest: its captions where given)")
    cache_dir: Path | None = same(Access, "cache_dir")
    window_s: float = same(SoundtrackConfig, "window_s")
    frames_per_window: int = same(SoundtrackConfig, "frames_per_window")
    frame_reader: str = same(SoundtrackConfig, "frame_reader")
    guidance_scale: float = same(SoundtrackConfig, "guidance_scale")
    top_k: int = same(SoundtrackConfig, "top_k")
    prior_steps: int | None = same(SoundtrackConfig, "prior_steps")
    batch_size: int = setting(8, check=positive(), help="items per model batch")
    k: int = setting(10, check=positive(), help="P@k cut-off")
    distractors: int = setting(69, check=(lambda v: v >= 0, "{flag} must not be negative"),
                               help="random distractors per P@k query")
    seed: int = same(SoundtrackConfig, "seed")
    device: str | None = same(Resources, "device", default=None)
    save_audio: bool = setting(True, flag="--no-audio", help="do not write the generated audio")
    metric_models: MetricModels = field(default_factory=MetricModels)
    endpoint: EndpointConfig | None = None  # the teacher of cot2music / llm2music; None: the offline one
    short_side: int = 224  # frames are scaled to this short side for CLIP

    RELATIONS = (((lambda c: bool(c.methods)), "--method: give at least one"),
                 ((lambda c: not set(c.external_folders) & set(OWN_ROWS)),
                  "--external: a name of one of the project's own rows (a method or ground truth); choose another"))

    def __post_init__(self):
        object.__setattr__(self, "methods", tuple(dict.fromkeys(self.methods)))  # each method once, in order
        object.__setattr__(self, "device", self.device or default_device())  # none given: the machine decides
        super().__post_init__()

    @property
    def priors(self) -> dict[str, str]:
        """The prior checkpoints given, by variant."""
        given = {"full": self.prior_full, "mlp_mlp": self.prior_mlp_mlp, "no_rationale": self.prior_no_rationale}
        return {variant: folder for variant, folder in given.items() if folder}

    @property
    def train_tiny_priors(self) -> bool:
        """Whether the tiny preset distils small priors offline for the variants not given."""
        return not self.untrained_priors

    @property
    def model_overrides(self) -> dict[str, str]:
        """The generation models given over the preset's, by component."""
        return {name: getattr(self, name) for name in _GENERATION if getattr(self, name)}

    @property
    def eval_overrides(self) -> dict[str, str]:
        """The evaluation models given over the preset's, by metric role."""
        return self.metric_models.overrides()

    @property
    def external_folders(self) -> dict[str, str]:
        """Other systems' audio folders, by the name their rows take."""
        return external_folders(self.external)



class EvalEndpoint(EndpointConfig):
    """The teacher endpoint as ``cotvtm evaluate`` takes it: with its three flags from before the
    endpoint was declared once for every command, kept one release (they warn)."""

    RENAMED = {"--base-url": ("teacher_url",), "--model": ("teacher_model",), "--api-key-env": ("teacher_key_env",)}


SECTIONS = ((None, EvalConfig), ("evaluation models (KIND:LOCATION; see cotvtm/eval/embedders.py)", MetricModels),
            ("teacher for cot2music / llm2music (no --teacher-model: the offline teacher)", EvalEndpoint, True))


def configure(**settings) -> EvalConfig:
    """An evaluation's configuration from settings by field name: ``EvalConfig``'s,
    ``MetricModels``' and ``EndpointConfig``'s (an endpoint without ``teacher_model`` is none:
    cot2music and llm2music then ask the offline teacher)."""
    own, metric, teacher = split(settings, EvalConfig, MetricModels, EvalEndpoint)
    if teacher:
        own["endpoint"] = replace(own.get("endpoint") or EndpointConfig(), **teacher).named()
    if metric:
        own["metric_models"] = replace(own.get("metric_models") or MetricModels(), **metric)
    return EvalConfig(**own)
