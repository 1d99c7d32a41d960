"""Distillation settings; defaults are the paper's hyper-parameters."""

from dataclasses import asdict, dataclass, field

TINY_MUSIC_LEN, PAPER_MUSIC_LEN = 32, 64  # E_m tokens by default (the tiny preset's, the real ones')


@dataclass(frozen=True)
class StageConfig:
    lr: float
    batch_size: int = 256
    epochs: int = 1
    weight_decay: float = 0.01
    lr_schedule: str = "constant"  # constant | cosine


@dataclass(frozen=True)
class DistillConfig:
    variant: str = "full"  # full | mlp_mlp | no_rationale (see cotvtm/prior/architecture.py)
    arch: str = "paper"  # prior widths: paper | tiny
    stage1: StageConfig = field(default_factory=lambda: StageConfig(lr=5e-4, epochs=65))
    stage2: StageConfig = field(default_factory=lambda: StageConfig(lr=1e-4, epochs=72))
    stage2_condition: str = "teacher"  # condition EmbedDiff on the teacher's E_r, or on stage 1's "mlp" output
    val_fraction: float = 0.05
    checkpoint_every: int = 1  # epochs between checkpoints (and always at a stage's end)
    num_workers: int = 1
    use_gpu: bool = False
    placement: str = "PACK"  # Ray placement strategy for the workers: PACK | SPREAD | STRICT_SPREAD
    seed: int = 0

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
