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
So a style's length is memory on every decoder slot: it is limited to ``MAX_STYLE_TOKENS``,
counted on the driver without a tokenizer (``token_bound``) and again, exactly, where it is
encoded; each actor keeps the states of its ``STYLE_CACHE`` most recent styles.
"""

from __future__ import annotations

import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MAX_STYLE_TOKENS = 128  # twice E_m's 64: a sentence of style. Its cross-attention keys and values then cost at
# most twice E_m's: 1.6 GB at 16 slots of musicgen-large in float16, where 1000 characters (501 tokens) took 6.3 GB
STYLE_CACHE = 64  # styles whose states an actor keeps (0.5 MB each at most): more than the videos it has in flight
STYLE_RULE = (f"one line of at most {MAX_STYLE_TOKENS - 2} characters, an accented or compatibility character "
              f"counting as the characters it decomposes into (at most {MAX_STYLE_TOKENS} T5 tokens)")


def token_bound(text: str) -> int:
    """The most T5 tokens ``text`` can take, with no tokenizer at hand: each SentencePiece piece
    covers at least one character of the normalised text (T5 has no byte fallback), normalising
    (NFKC) makes a character at most its NFKD decomposition, and the '▁' starting the text and
    the end token add one each."""
    return len(unicodedata.normalize("NFKD", text)) + 2


def style_fault(text: str) -> str | None:
    """Why ``text`` cannot be a style, or None: one line (a line break would split the file it
    is written in), not blank, within ``MAX_STYLE_TOKENS`` by ``token_bound``."""
    if not text.strip():
        return "the style is empty"
    if text.splitlines() != [text]:
        return "the style holds a line break (a style is one line)"
    if token_bound(text) > MAX_STYLE_TOKENS:
        return (f"the style may take {token_bound(text)} T5 tokens, over the limit of {MAX_STYLE_TOKENS}: "
                f"a style is {STYLE_RULE}")
    return None


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

        tokens = tokenizer([text], return_tensors="pt").to(device)
        if tokens["input_ids"].shape[1] > MAX_STYLE_TOKENS:  # token_bound let it through only if it is wrong
            raise ValueError(f"the style takes {tokens['input_ids'].shape[1]} T5 tokens, over the limit of "
                             f"{MAX_STYLE_TOKENS}")
        with torch.inference_mode():
            states = encoder(**tokens).last_hidden_state[0]
        return cls(text, states.float().cpu().numpy(), tokens["attention_mask"][0].cpu().numpy())


class StyleCache:
    """The states of the ``size`` most recently used styles, each encoded once while it stays:
    an actor meets every style of a run, and their states would otherwise pile up."""

    def __init__(self, size: int = STYLE_CACHE):
        self.size, self.states = size, OrderedDict()

    def get(self, text: str, encode: Callable[[str], StyleStates]) -> StyleStates:
        """``text``'s states, from the cache or ``encode``; the least recently used leave first."""
        states = self.states.pop(text, None)
        self.states[text] = states if states is not None else encode(text)
        while len(self.states) > self.size:
            self.states.popitem(last=False)
        return self.states[text]


def steer(e_m: np.ndarray, mask: np.ndarray, style: StyleStates | None, weight: float):
    """One window's conditioning: E_m (L, D) and mask (L,), followed by the style's states times
    ``weight`` and its mask; E_m as it is without a style."""
    if style is None:
        return e_m, mask
    hidden = np.concatenate([e_m, weight * style.states.astype(e_m.dtype)])
    return hidden, np.concatenate([mask, style.mask.astype(mask.dtype)])
