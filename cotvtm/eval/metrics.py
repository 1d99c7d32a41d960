"""The paper's metrics as plain functions over embeddings, logits and predictions.

Everything here is numpy and deterministic; the models that produce the inputs live in
``embedders.py``. Conventions follow the reference implementations the paper's numbers come
from: Fréchet distance as in pytorch-fid / frechet-audio-distance, KL as in audioldm_eval
(reference distribution first), P@10 as in the CoT-VTM paper (the ground truth among itself
and 69 random distractors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KL_EPS = 1e-6  # audioldm_eval adds this inside log(q): a class the generated audio misses costs ~13.8 nats


@dataclass(frozen=True)
class Gaussian:
    """Mean and covariance of an embedding set (a single sample has zero covariance)."""

    mean: np.ndarray
    cov: np.ndarray
    count: int


def gaussian(embeddings: np.ndarray) -> Gaussian:
    """Fit a Gaussian to (N, D) embeddings. N == 1 gives a point mass (zero covariance)."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"need a non-empty (N, D) array of embeddings, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or infinity")
    cov = np.cov(x, rowvar=False) if len(x) > 1 else np.zeros((x.shape[1], x.shape[1]))
    return Gaussian(x.mean(axis=0), np.atleast_2d(cov), len(x))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (tiny negative eigenvalues clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray) -> float:
    """Tr(sqrt(cov1 @ cov2)) without complex arithmetic.

    cov1 @ cov2 is similar to S @ cov2 @ S with S = sqrt(cov1), which is symmetric PSD, so its
    eigenvalues are real and non-negative even when either covariance is singular (fewer
    samples than dimensions, constant features). ``scipy.linalg.sqrtm(cov1 @ cov2)``, the
    usual route, returns complex noise or fails on such inputs; pytorch-fid works around
    that by adding eps * I and retrying. This form needs no retry.
    """
    root = _psd_sqrt(cov1)
    values = np.linalg.eigvalsh(root @ cov2 @ root)
    return float(np.sqrt(np.clip(values, 0.0, None)).sum())


def frechet_distance(a: Gaussian, b: Gaussian) -> float:
    """||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 sqrt(C_a C_b)): the Fréchet (2-Wasserstein) distance squared."""
    if a.mean.shape != b.mean.shape:
        raise ValueError(f"embedding sizes differ: {a.mean.shape[0]} vs {b.mean.shape[0]}")
    diff = a.mean - b.mean
    value = diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2 * trace_sqrt_product(a.cov, b.cov)
    return max(float(value), 0.0)  # rounding can make identical sets come out at -1e-12


def frechet_between(generated: np.ndarray, reference: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) embedding sets (FD, FAD)."""
    return frechet_distance(gaussian(generated), gaussian(reference))


def kl(p: np.ndarray, q: np.ndarray, eps: float = KL_EPS) -> np.ndarray:
    """Row-wise sum p * (log p - log(q + eps)); 0 * log 0 counts as 0 (audioldm_eval's form)."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - np.log(q + eps)), 0.0)
    return terms.sum(axis=-1)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))


def _paired(generated: np.ndarray, reference: np.ndarray) -> None:
    if np.shape(generated) != np.shape(reference) or np.ndim(generated) != 2 or len(generated) == 0:
        raise ValueError(f"KL needs paired (N, classes) logits, got {np.shape(generated)} and {np.shape(reference)}")


def kl_softmax(generated_logits: np.ndarray, reference_logits: np.ndarray) -> float:
    """Mean over pairs of KL(softmax(reference) || softmax(generated)) over the classes."""
    _paired(generated_logits, reference_logits)
    return float(kl(_softmax(reference_logits), _softmax(generated_logits)).mean())


def kl_sigmoid(generated_logits: np.ndarray, reference_logits: np.ndarray) -> float:
    """Mean over pairs of sum_c p_c log(p_c / q_c) with p, q the per-class sigmoid outputs.

    This is audioldm_eval's ``kullback_leibler_divergence_sigmoid`` (and the PaSST-based KL of
    later work): multi-label taggers give independent per-class probabilities, and the sum
    runs over the positive terms only, not the full Bernoulli KL. Kept as published so numbers
    compare with the literature; unlike a true divergence it can come out negative.
    """
    _paired(generated_logits, reference_logits)
    return float(kl(_sigmoid(reference_logits), _sigmoid(generated_logits)).mean())


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def paired_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine similarity of row i of ``a`` with row i of ``b`` (the ImageBind score)."""
    if np.shape(a) != np.shape(b) or len(a) == 0:
        raise ValueError(f"need paired (N, D) embeddings, got {np.shape(a)} and {np.shape(b)}")
    return float((_unit(a) * _unit(b)).sum(axis=-1).mean())


def emotion_distance(music_va: np.ndarray, visual_va: np.ndarray) -> float:
    """Mean Euclidean distance between paired (valence, arousal) predictions (EMS; lower matches better)."""
    if np.shape(music_va) != np.shape(visual_va) or np.ndim(music_va) != 2 or np.shape(music_va)[1] != 2:
        raise ValueError(f"need paired (N, 2) valence-arousal predictions, got {np.shape(music_va)} "
                         f"and {np.shape(visual_va)}")
    return float(np.linalg.norm(np.asarray(music_va, np.float64) - visual_va, axis=-1).mean())


@dataclass(frozen=True)
class Retrieval:
    """P@k: how often the ground truth ranks in the top k among its candidates."""

    hit_rate: float
    mean_rank: float
    candidates: int  # per query: the ground truth plus the distractors actually available
    k: int


def truth_rank(truth_score: float, distractor_scores: np.ndarray) -> int:
    """1-based rank of the ground truth; a tie with a distractor counts against it."""
    return 1 + int(np.count_nonzero(np.asarray(distractor_scores) >= truth_score))


def precision_at_k(generated: np.ndarray, reference: np.ndarray, k: int = 10, distractors: int = 69,
                   seed: int = 0) -> Retrieval:
    """For each generated item i, rank reference i among itself and ``distractors`` other
    references (drawn at random, without replacement) by cosine similarity to the generated
    item's features; return the fraction ranked in the top ``k``.

    With fewer than ``distractors + 1`` items every other reference is a distractor, and
    ``candidates`` says how many there were (with ``candidates <= k`` every hit is free).
    """
    gen, ref = _unit(generated), _unit(reference)
    if gen.shape != ref.shape or len(gen) == 0:
        raise ValueError(f"need paired (N, D) features, got {gen.shape} and {ref.shape}")
    rng = np.random.default_rng(seed)
    n = len(gen)
    count = min(distractors, n - 1)
    ranks = []
    for i in range(n):
        others = np.delete(np.arange(n), i)
        chosen = rng.choice(others, size=count, replace=False) if count else others[:0]
        ranks.append(truth_rank(gen[i] @ ref[i], ref[chosen] @ gen[i]))
    ranks = np.asarray(ranks)
    return Retrieval(float((ranks <= k).mean()), float(ranks.mean()), count + 1, k)
