"""The distilled prior: CLIP embedding E_v -> (MLP) E_r' -> (EmbedDiff) T5 sequence E_m.

Its classes load on first use (``from cotvtm.prior import TwoStagePrior``), so that reading the
prior's sampler names (``prior.architecture.SAMPLERS``) for the command line needs no torch.
"""

import importlib

_HOMES = {"PriorConfig": "architecture", "CosineSchedule": "cosine", "TwoStagePrior": "prior"}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
