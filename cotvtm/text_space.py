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


def encoder_config(ref: str):
    """The text encoder's config: a transformers folder or hub id, or a diffusers pipeline's
    ``text_encoder/`` (where Stable Audio keeps it)."""
    from transformers import AutoConfig

    from cotvtm.models import diffusers_folder, text_encoder_folders

    ref = diffusers_folder(ref)  # a Stable Audio 3 hub id, converted once
    return AutoConfig.from_pretrained(ref, **text_encoder_folders(ref)[0])


def of(ref: str) -> str:
    """The space of the text encoder at ``ref``."""
    return str(encoder_config(ref).model_type)


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


def check(prior_dir: str, text_ref: str, decoder: str) -> None:
    """Refuse a prior distilled for another space than the one ``decoder`` reads."""
    made_for, reads = recorded(prior_dir), of(text_ref)
    if made_for is not None and made_for != reads:
        raise CotvtmError(f"--prior {prior_dir} was distilled for {made_for}'s text space, but --decoder {decoder} "
                          f"reads {reads}'s: distill one for it (`cotvtm embed ... --decoder {decoder}`, then "
                          "`cotvtm distill`), or use the retrieval prior")
