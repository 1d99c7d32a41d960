"""The retrieval prior: music that follows the picture with no prior trained.

Each window's CLIP image embedding E_v is compared (cosine) with the CLIP text embeddings of a
bank's captions (``bank.py``): CLIP puts images and texts in one space, so the nearest captions
are those that best describe the frames. The window is conditioned on the T5 states of the
chosen caption's music description, which is exactly what MusicGen makes of that text. With
``k`` > 1 the choice is drawn among the ``k`` nearest, weighted by a softmax of their
similarities over ``temperature``, with the window's own counter-based draw (``cotvtm/rng.py``):
the same window makes the same choice in any batch.

Each similarity is one row against the bank (no batched product), and each description is
encoded alone and kept, so a window's E_m depends on the window alone. The explanation of a
window is what was retrieved: the nearest captions, their descriptions and similarities.
"""

from __future__ import annotations

import numpy as np
import torch

from cotvtm.prior.bank import BankEntry
from cotvtm.rng import uniform

SHOWN = 3  # nearest entries named in each window's explanation
TOKENS = 64  # T5 tokens of a description (longer ones are cut), as distillation pads E_m


class RetrievalPrior:
    """A bank's captions as CLIP text vectors, and its descriptions' T5 states on demand."""

    def __init__(self, entries: list[BankEntry], clip, t5, k: int = 1, temperature: float = 0.05):
        """``clip``: an ``encoders.clip.ClipEncoder``; ``t5``: an ``encoders.music_text.MusicTextEncoder``."""
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        self.entries, self.t5, self.k, self.temperature = entries, t5, k, temperature
        self.keys = clip.embed_texts([entry.caption for entry in entries]).astype(np.float32)
        self._states: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def similarities(self, e_v: np.ndarray) -> np.ndarray:
        """(B, N) cosine of each window's E_v (a mean of unit vectors: normalised here) with each caption."""
        unit = e_v / np.maximum(np.linalg.norm(e_v, axis=-1, keepdims=True), 1e-8)
        return np.stack([self.keys @ row for row in unit.astype(np.float32)])

    def choose(self, e_v: np.ndarray, streams: list[int]) -> tuple[list[int], np.ndarray]:
        """The chosen entry of each window, and every similarity (B, N)."""
        scores = self.similarities(e_v)
        chosen = []
        for row, stream in zip(scores, streams):
            order = np.argsort(-row, kind="stable")[: self.k]
            if self.k == 1:
                chosen.append(int(order[0]))
                continue
            weights = np.exp((row[order] - row[order[0]]) / self.temperature)
            draw = float(uniform(torch.tensor(stream), torch.tensor(0), torch.tensor(0)))
            pick = min(int(np.searchsorted(np.cumsum(weights / weights.sum()), draw)), self.k - 1)
            chosen.append(int(order[pick]))
        return chosen, scores

    def states(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The T5 states and mask of entry ``index``'s description, encoded once."""
        if index not in self._states:
            self._states[index] = self.t5.encode_alone(self.entries[index].description)
        return self._states[index]

    def sample(self, e_v: np.ndarray, streams: list[int]) -> tuple[np.ndarray, np.ndarray, list[list[dict]]]:
        """E_m (B, L, D), its mask (B, L) and each window's explanation, for E_v (B, clip_dim)."""
        chosen, scores = self.choose(e_v, streams)
        e_m, mask = zip(*(self.states(index) for index in chosen))
        return np.stack(e_m), np.stack(mask), [self.explain(pick, row) for pick, row in zip(chosen, scores)]

    def explain(self, pick: int, scores: np.ndarray) -> list[dict]:
        """The chosen entry, then the nearest others: caption, description, similarity."""
        others = [int(j) for j in np.argsort(-scores, kind="stable")[:SHOWN] if j != pick][: SHOWN - 1]
        return [{"caption": self.entries[j].caption, "description": self.entries[j].description,
                 "score": round(float(scores[j]), 4), "chosen": j == pick} for j in [pick, *others]]
