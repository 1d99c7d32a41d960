"""Explanations: which teacher music descriptions a generated E_m is closest to.

Built from the training set when a prior is exported and stored beside it, so the soundtrack
job can say, per window, what the model "chose" in words. Similarity is the cosine of
mask-weighted mean-pooled E_m sequences.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

VECTORS = "explain.npy"
TEXTS = "explain.jsonl"
MAX_ENTRIES = 50_000


def pool(e_m: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, L, D) states and (N, L) mask -> (N, D) unit vectors."""
    weights = mask.astype(np.float32)[..., None]
    pooled = (e_m * weights).sum(1) / np.maximum(weights.sum(1), 1.0)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-8)


class ExplanationIndex:
    def __init__(self, texts: list[str], vectors: np.ndarray):
        self.texts, self.vectors = texts, vectors.astype(np.float32)

    @classmethod
    def build(cls, texts, e_m: np.ndarray, mask: np.ndarray) -> ExplanationIndex:
        """One entry per distinct description (the first occurrence), at most MAX_ENTRIES."""
        keep, seen = [], set()
        for i, text in enumerate(texts):
            if text and text not in seen and len(keep) < MAX_ENTRIES:
                seen.add(text)
                keep.append(i)
        return cls([str(texts[i]) for i in keep], pool(e_m[keep], mask[keep]))

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        np.save(directory / VECTORS, self.vectors.astype(np.float16))
        (directory / TEXTS).write_text("".join(json.dumps(t) + "\n" for t in self.texts))

    @classmethod
    def load(cls, directory: str | Path | None) -> ExplanationIndex | None:
        """The index stored with a prior, or None when it has none."""
        if directory is None or not (Path(directory) / VECTORS).exists():
            return None
        texts = [json.loads(line) for line in (Path(directory) / TEXTS).read_text().splitlines()]
        return cls(texts, np.load(Path(directory) / VECTORS))

    def nearest(self, e_m: np.ndarray, mask: np.ndarray, k: int = 3) -> list[list[dict]]:
        """Per row of ``e_m``, the ``k`` closest descriptions with their cosine scores."""
        scores = pool(e_m, mask) @ self.vectors.T
        top = np.argsort(-scores, axis=1)[:, :k]
        return [[{"description": self.texts[j], "score": round(float(scores[i, j]), 4)} for j in row]
                for i, row in enumerate(top)]
