"""Distillation settings; defaults are the paper's hyper-parameters.

``DistillConfig`` is both what a run records (``to_dict``: a rerun with the same one resumes or
keeps its prior) and the ``distill`` command's settings; ``DistillRun`` holds the flags that set
its two stages (``--epochs1``, ``--lr2``, ...) and where the run keeps its checkpoints.
"""

from dataclasses import asdict, dataclass, field, replace

from cotvtm.options import Checked, at_least, positive, setting
from cotvtm.prior.architecture import VARIANTS

TINY_MUSIC_LEN, PAPER_MUSIC_LEN = 32, 64  # E_m tokens by default (the tiny preset's, the real ones')
ARCHS = ("paper", "tiny")  # prior widths (PriorConfig.paper, PriorConfig.tiny)
PLACEMENTS = ("PACK", "SPREAD", "STRICT_SPREAD")  # Ray placement strategies for the workers
LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class StageConfig:
    lr: float
    batch_size: int = 256
    epochs: int = 1
    weight_decay: float = 0.01
    lr_schedule: str = "constant"  # constant | cosine


@dataclass(frozen=True)
class DistillConfig(Checked):
    variant: str = setting("full", choices=VARIANTS, help="the prior's architecture: full, or an ablation")
    arch: str = setting("paper", choices=ARCHS, help="prior widths")
    stage1: StageConfig = field(default_factory=lambda: StageConfig(lr=5e-4, epochs=65))
    stage2: StageConfig = field(default_factory=lambda: StageConfig(lr=1e-4, epochs=72))
    stage2_condition: str = "teacher"  # condition EmbedDiff on the teacher's E_r, or on stage 1's "mlp" output
    val_fraction: float = 0.05
    checkpoint_every: int = setting(1, check=at_least(1), help="epochs between checkpoints (and always at a "
                                                               "stage's end)")
    num_workers: int = setting(1, flag="--workers", check=at_least(1), help="Ray Train workers")
    use_gpu: bool = setting(False, flag="--gpu", help="one GPU per worker")
    placement: str = setting("PACK", choices=PLACEMENTS, help="how Ray places the workers on the nodes")
    seed: int = setting(0, help="where the training's random draws come from (initial weights, batches, noise)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DistillConfig":
        data = dict(data)
        for stage in ("stage1", "stage2"):
            if isinstance(data.get(stage), dict):
                data[stage] = StageConfig(**data[stage])
        return cls(**data)

    def epochs(self) -> list[tuple[int, int]]:
        """Every (stage, epoch) the run goes through, in order; stage 1 is skipped without an MLP."""
        first = [] if self.variant == "no_rationale" else [(1, e) for e in range(self.stage1.epochs)]
        return first + [(2, e) for e in range(self.stage2.epochs)]


_PAPER = DistillConfig()
# Each stage flag: the stages it sets, and the StageConfig field it sets there.
_STAGE_FIELDS = {"epochs1": ((1,), "epochs"), "epochs2": ((2,), "epochs"), "lr1": ((1,), "lr"), "lr2": ((2,), "lr"),
                 "batch_size": ((1, 2), "batch_size"), "lr_schedule": ((1, 2), "lr_schedule")}


@dataclass(frozen=True)
class DistillRun(Checked):
    """A distillation run's input and output, and the flags that set its two stages. A stage
    flag left unset keeps the configuration's own value (the paper's, when none is given)."""

    shards: str = setting(positional=True, help="a shards folder written by `cotvtm embed`")
    out: str = setting(positional=True, help="output folder: OUT/prior is the checkpoint the soundtrack job loads "
                                             "(--prior)")
    epochs1: int | None = setting(None, check=at_least(1), help="stage 1 (MLP) epochs",
                                  shown_default=str(_PAPER.stage1.epochs))
    epochs2: int | None = setting(None, check=at_least(1), help="stage 2 (EmbedDiff) epochs",
                                  shown_default=str(_PAPER.stage2.epochs))
    lr1: float | None = setting(None, check=positive(), help="stage 1 learning rate",
                                shown_default=f"{_PAPER.stage1.lr:g}")
    lr2: float | None = setting(None, check=positive(), help="stage 2 learning rate",
                                shown_default=f"{_PAPER.stage2.lr:g}")
    batch_size: int | None = setting(None, check=at_least(1), help="training examples per step, both stages",
                                     shown_default=str(_PAPER.stage1.batch_size))
    lr_schedule: str | None = setting(None, choices=LR_SCHEDULES, help="the learning rate over each stage",
                                      shown_default=_PAPER.stage1.lr_schedule)
    storage_path: str | None = setting(None, metavar="PATH", help="Ray Train storage, shared by all nodes",
                                       shown_default="OUT/runs")

    def config(self, base: DistillConfig) -> DistillConfig:
        """``base`` with the stage flags that were given set in its stages."""
        stages = {1: {}, 2: {}}
        for name, (numbers, key) in _STAGE_FIELDS.items():
            if getattr(self, name) is not None:
                for number in numbers:
                    stages[number][key] = getattr(self, name)
        return replace(base, stage1=replace(base.stage1, **stages[1]), stage2=replace(base.stage2, **stages[2]))
