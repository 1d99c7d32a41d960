"""Which text space E_m lives in: the one the chosen decoder reads.

MusicGen and Stable Audio Open cross-attend to T5-base's last hidden states; Stable Audio 3 to
its T5Gemma encoder's. The prior is a map into one of these spaces, so a distilled prior records
the space it was distilled for (``PriorConfig.text_space``) and a run whose decoder reads
another is refused before any work. A space is named by the encoder's kind (its
``model_type``): widths are checked apart, where the prior's shapes are matched.
"""

from __future__ import annotations

import json
from pathlib import Path

from cotvtm.errors import CotvtmError

EARLIER = "t5"  # every prior distilled before spaces were recorded read T5's states


def of(config) -> str:
    """The space of a text encoder, from its config (``models.text_encoder_config``)."""
    return str(config.model_type)


def width(config) -> int:
    """Its states' width: T5's ``d_model``, T5Gemma's encoder ``hidden_size``."""
    return int(getattr(config, "d_model", None) or config.encoder.hidden_size)


def recorded(prior_dir: str | Path) -> str | None:
    """The space a distilled prior records (``EARLIER`` for one from before it did); None for a
    folder that is not a prior."""
    try:
        config = json.loads((Path(prior_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(config.get("text_space") or EARLIER) if isinstance(config, dict) else None


def check(prior_dir: str, text_config, decoder: str) -> None:
    """Refuse a prior distilled for another space than the one ``decoder`` reads (``text_config``:
    its text encoder's config)."""
    made_for, reads = recorded(prior_dir), of(text_config)
    if made_for is not None and made_for != reads:
        raise CotvtmError(f"--prior {prior_dir} was distilled for {made_for}'s text space, but --decoder {decoder} "
                          f"reads {reads}'s: distill one for it (`cotvtm embed ... --decoder {decoder}`, then "
                          "`cotvtm distill`), or use the retrieval prior")
