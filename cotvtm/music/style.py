"""A style text steering the music beside the picture (``--style``, ``--styles``).

The prior's E_m lives in T5 space: it is what MusicGen's (and Stable Audio's) T5 would make of
a description of music that fits the picture. A style's own T5 states live in the same space,
so the decoder can attend to both: the window's conditioning becomes the sequence
[E_m ; w x style states], the masks joined the same way. The decoder's cross-attention spreads
over picture and style tokens together; ``--style-weight`` w scales the style's states, and so
the keys and values its tokens offer (the decoders' attention projections have no bias): above 1
the style draws more of the attention and weighs more in what it brings back, towards 0 it
fades. Classifier-free guidance's unconditional rows stay empty, so guidance amplifies picture
and style together. ``bench/style_weight.py`` measures how far the weight moves the music on the
tiny models.

Every decoder takes the joined sequence as it takes E_m alone (MusicGen's engine grows its
cross-attention caches to the longest conditioning it is given; Stable Audio projects any length).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StyleStates:
    """A style's T5 states (tokens, width) and mask (tokens,), from the decoder's own T5."""

    text: str
    states: np.ndarray
    mask: np.ndarray

    @classmethod
    def encode(cls, text: str, tokenizer, encoder, device) -> StyleStates:
        """``text`` through a decoder's own tokenizer and T5 encoder, as for a text prompt."""
        import torch

        with torch.inference_mode():
            tokens = tokenizer([text], return_tensors="pt").to(device)
            states = encoder(**tokens).last_hidden_state[0]
        return cls(text, states.float().cpu().numpy(), tokens["attention_mask"][0].cpu().numpy())


def steer(e_m: np.ndarray, mask: np.ndarray, style: StyleStates | None, weight: float):
    """One window's conditioning: E_m (L, D) and mask (L,), followed by the style's states times
    ``weight`` and its mask; E_m as it is without a style."""
    if style is None:
        return e_m, mask
    hidden = np.concatenate([e_m, weight * style.states.astype(e_m.dtype)])
    return hidden, np.concatenate([mask, style.mask.astype(mask.dtype)])
