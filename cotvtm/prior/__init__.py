"""The distilled prior: CLIP embedding E_v -> (MLP) E_r' -> (EmbedDiff) T5 sequence E_m."""

from .architecture import PriorConfig
from .cosine import CosineSchedule
from .prior import TwoStagePrior

__all__ = ["CosineSchedule", "PriorConfig", "TwoStagePrior"]
