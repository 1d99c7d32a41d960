"""The retrieval prior: music that follows the picture with no prior trained.

Each window's CLIP image embedding E_v is compared (cosine) with the CLIP text embeddings of a
bank's captions (``bank.py``): CLIP puts images and texts in one space, so the nearest captions
are those that best describe the frames. The window is conditioned on the T5 states of the
chosen caption's music description, which is exactly what MusicGen makes of that text. With
``k`` > 1 the choice is drawn among the ``k`` nearest, weighted by a softmax of their
similarities over ``temperature``, with the window's own counter-based draw (``cotvtm/rng.py``):
the same window makes the same choice in any batch.

The mood comes from the picture, not from whichever caption matches its objects and light.
Where the bank's entries state a feeling (``BankEntry.feeling``), each distinct feeling is a
CLIP text vector (the mean of a few phrasings, ``FEELING_PROMPTS``, embedded once); a window's
feeling seen is the one nearest its E_v, with a probability (a softmax over the feelings at
CLIP's logit scale), and the caption is retrieved among that feeling's entries only. Entries
stating no feeling join them unless the feeling seen is sure (``SURE`` times as likely as the
runner-up): a picture with no clear mood may be described as well by a caption that states
none. A bank in which no entry states a feeling is searched whole, as nearest-caption retrieval.

Each similarity is one row against the bank (no batched product), and each description is
encoded alone and kept, so a window's E_m depends on the window alone. The explanation of a
window is what was retrieved: the nearest captions of those it drew among, their descriptions
and similarities, each caption's feeling, and on the chosen one the feelings seen (the three
most likely, with their probabilities).
"""

from __future__ import annotations

import numpy as np
import torch

from cotvtm.prior.bank import BankEntry
from cotvtm.rng import uniform

SHOWN = 3  # nearest entries named in each window's explanation
TOKENS = 64  # T5 tokens of a description (longer ones are cut), as distillation pads E_m
FEELING_PROMPTS = ("a photo that feels {}", "a {} scene", "a picture with a {} mood")  # prompt ensembling:
# the mean of a few phrasings depends less on any one wording than a single prompt does
CLIP_LOGIT_SCALE = 100.0  # the scale CLIP was trained to (exp 4.6052), for a model that keeps none
SURE = 2.0  # the feeling seen at least this many times as likely as the runner-up shows clearly over it:
# entries stating no feeling then stay out (a ratio, so that it means the same for 2 feelings or 8)
SHOWN_FEELINGS = 3  # feelings named in each window's explanation: the one seen and two runners-up


class Feelings:
    """The feelings a bank's entries state, as prompt-ensembled CLIP text vectors, and which
    entries state each (names compared trimmed and in lower case)."""

    def __init__(self, entries: list[BankEntry], clip):
        self.stated = [(e.feeling or "").strip().lower() or None for e in entries]
        self.names = sorted({name for name in self.stated if name})
        self.members = {name: np.flatnonzero([s == name for s in self.stated]) for name in self.names}
        self.unstated = np.flatnonzero([s is None for s in self.stated])
        texts = [prompt.format(name) for name in self.names for prompt in FEELING_PROMPTS]
        mean = clip.embed_texts(texts).reshape(len(self.names), len(FEELING_PROMPTS), -1).mean(axis=1)
        self.vectors = (mean / np.linalg.norm(mean, axis=-1, keepdims=True)).astype(np.float32)
        scale = getattr(clip.model, "logit_scale", None)
        self.scale = float(scale.detach().exp()) if scale is not None else CLIP_LOGIT_SCALE

    def probabilities(self, unit: np.ndarray) -> np.ndarray:
        """Each feeling's probability for one window's unit E_v: a softmax at CLIP's logit scale."""
        logits = self.scale * (self.vectors @ unit)
        weights = np.exp(logits - logits.max())
        return weights / weights.sum()

    def eligible(self, probabilities: np.ndarray) -> np.ndarray:
        """The entries a window draws among: the feeling seen's, and the unstated ones unless
        it is sure (with one feeling there is nothing to tell it from: never sure)."""
        seen, runner_up = np.argsort(-probabilities, kind="stable")[:2] if len(self.names) > 1 else (0, None)
        members = self.members[self.names[seen]]
        sure = runner_up is not None and probabilities[seen] >= SURE * probabilities[runner_up]
        return members if sure else np.union1d(members, self.unstated)

    def explain(self, probabilities: np.ndarray) -> list[dict]:
        """The most likely feelings, the one seen first, with their probabilities."""
        top = np.argsort(-probabilities, kind="stable")[:SHOWN_FEELINGS]
        return [{"feeling": self.names[i], "probability": round(float(probabilities[i]), 4)} for i in top]


class RetrievalPrior:
    """A bank's captions as CLIP text vectors, and its descriptions' T5 states on demand."""

    def __init__(self, entries: list[BankEntry], clip, t5, k: int = 1, temperature: float = 0.05):
        """``clip``: an ``encoders.clip.ClipEncoder``; ``t5``: an ``encoders.music_text.MusicTextEncoder``."""
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        self.entries, self.t5, self.k, self.temperature = entries, t5, k, temperature
        self.keys = clip.embed_texts([entry.caption for entry in entries]).astype(np.float32)
        self.feelings = Feelings(entries, clip) if any(e.feeling for e in entries) else None
        self._states: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def similarities(self, e_v: np.ndarray) -> np.ndarray:
        """(B, N) cosine of each window's E_v (a mean of unit vectors: normalised here) with each caption."""
        return np.stack([self.keys @ row for row in _unit(e_v)])

    def choose(self, e_v: np.ndarray, streams: list[int]) -> tuple[list[int], np.ndarray, list]:
        """The chosen entry of each window, every similarity (B, N), and each window's
        feeling probabilities (None where the bank states no feelings)."""
        scores, chosen, felt = self.similarities(e_v), [], []
        for unit, row, stream in zip(_unit(e_v), scores, streams):
            felt.append(self.feelings.probabilities(unit) if self.feelings is not None else None)
            chosen.append(self._draw(row, self._pool(felt[-1]), stream))
        return chosen, scores, felt

    def _pool(self, probabilities: np.ndarray | None) -> np.ndarray:
        """The entries a window draws among: all, or those its feeling seen allows."""
        if probabilities is None:
            return np.arange(len(self.entries))
        return self.feelings.eligible(probabilities)

    def _draw(self, row: np.ndarray, pool: np.ndarray, stream: int) -> int:
        """The nearest of ``pool``, or with k > 1 a similarity-weighted draw among its k nearest."""
        order = pool[np.argsort(-row[pool], kind="stable")][: self.k]
        if len(order) == 1:
            return int(order[0])
        weights = np.exp((row[order] - row[order[0]]) / self.temperature)
        draw = float(uniform(torch.tensor(stream), torch.tensor(0), torch.tensor(0)))
        return int(order[min(int(np.searchsorted(np.cumsum(weights / weights.sum()), draw)), len(order) - 1)])

    def states(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The T5 states and mask of entry ``index``'s description, encoded once."""
        if index not in self._states:
            self._states[index] = self.t5.encode_alone(self.entries[index].description)
        return self._states[index]

    def sample(self, e_v: np.ndarray, streams: list[int]) -> tuple[np.ndarray, np.ndarray, list[list[dict]]]:
        """E_m (B, L, D), its mask (B, L) and each window's explanation, for E_v (B, clip_dim)."""
        chosen, scores, felt = self.choose(e_v, streams)
        e_m, mask = zip(*(self.states(index) for index in chosen))
        return np.stack(e_m), np.stack(mask), [self.explain(*made) for made in zip(chosen, scores, felt)]

    def explain(self, pick: int, scores: np.ndarray, felt: np.ndarray | None = None) -> list[dict]:
        """The chosen entry, then the nearest others it was drawn among: caption, description,
        similarity (and, with feelings, each one's and on the chosen one those seen)."""
        pool = self._pool(felt)
        nearest = [int(j) for j in pool[np.argsort(-scores[pool], kind="stable")][:SHOWN] if j != pick]
        shown = [pick, *nearest][:SHOWN]
        items = [{"caption": self.entries[j].caption, "description": self.entries[j].description,
                  "score": round(float(scores[j]), 4), "chosen": j == pick} for j in shown]
        if felt is not None:
            for j, item in zip(shown, items):
                item["feeling"] = self.feelings.stated[j]
            items[0]["feelings"] = self.feelings.explain(felt)
        return items


def _unit(e_v: np.ndarray) -> np.ndarray:
    """Rows of E_v (means of unit vectors) scaled to unit length, as float32."""
    return (e_v / np.maximum(np.linalg.norm(e_v, axis=-1, keepdims=True), 1e-8)).astype(np.float32)
