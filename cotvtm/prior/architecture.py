"""Configuration of the distilled prior (E_v -> E_r' -> E_m), JSON-serialisable."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

VARIANTS = ("full", "mlp_mlp", "no_rationale")
SAMPLERS = ("ddpm", "ddim")


@dataclass
class PriorConfig:
    """Sizes and sampling defaults of a :class:`~cotvtm.prior.TwoStagePrior`.

    The defaults are the paper's sizes (CLIP ViT-B/32, LLM2Vec Llama-3-8B, t5-base).

    variant:
        ``full``          E_v -> RationaleMLP -> E_r' -> EmbedDiff(E_v, E_r') -> E_m
        ``mlp_mlp``       E_v -> RationaleMLP -> E_r' -> MusicMLP(E_r') -> E_m   (ablation)
        ``no_rationale``  E_v -> EmbedDiff(E_v) -> E_m                           (ablation)
    """

    clip_dim: int = 512  # E_v
    rationale_dim: int = 4096  # E_r
    music_dim: int = 768  # T5 d_model, the width of each E_m token
    music_len: int = 64  # L, number of E_m tokens
    mlp_hidden: int = 2048
    mlp_dropout: float = 0.2
    diff_width: int = 768
    diff_layers: int = 6
    diff_heads: int = 12
    cond_dropout: float = 0.1
    train_steps: int = 1000
    sample_steps: int = 200
    sampler: str = "ddpm"
    guidance_scale: float = 3.0
    music_scale: float = 1.0  # diffusion runs on E_m * music_scale: set ~1 / std(E_m) of the data
    mask_threshold: float = 0.1  # token kept if its RMS > this x the row's max token RMS
    variant: str = "full"
    trained: bool = False  # set True by training; random weights otherwise
    text_space: str = "t5"  # the decoder text space E_m was distilled for (cotvtm/text_space.py)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.diff_width % self.diff_heads:
            raise ValueError(f"diff_width {self.diff_width} is not divisible by diff_heads {self.diff_heads}")
        if not 0 < self.sample_steps <= self.train_steps:
            raise ValueError(f"sample_steps must be in 1..{self.train_steps}, got {self.sample_steps}")

    @classmethod
    def paper(cls, **overrides: Any) -> PriorConfig:
        """The paper's sizes."""
        return cls(**overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> PriorConfig:
        """Debug size for CPU tests: same architecture, about 0.15 M parameters."""
        sizes = dict(
            clip_dim=32, rationale_dim=32, music_dim=32, music_len=8, mlp_hidden=64,
            diff_width=64, diff_layers=2, diff_heads=4, sample_steps=25,
        )
        return cls(**{**sizes, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PriorConfig:
        """Inverse of :meth:`to_dict`; ignores ``model_type``, rejects unknown keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k != "model_type"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown PriorConfig keys: {unknown}")
        return cls(**data)
