"""Score generated music against the references with each metric's model.

One evaluation model is in memory at a time (FD and KL share PANNs when their references
match). References and visual features are computed once and reused for every method. The
"ground truth" row scores the reference music itself on the paired metrics (IB, EMS), the
ceiling a method can be compared with.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cotvtm.eval import embedders, metrics
from cotvtm.eval.features import resample
from cotvtm.eval.testset import REFERENCE_RATE, Item

METRICS = ("fd", "fad", "kl_softmax", "kl_sigmoid", "ib", "ems", "p_at_k")
GROUND_TRUTH = "ground truth"


class Audio:
    """One method's clips (or the references); the last resampled copy is kept (metrics are
    grouped by model rate, and a copy per rate would multiply the memory of a large test set)."""

    def __init__(self, clips: list[np.ndarray], rate: int):
        self.clips, self.rate, self._cached = clips, rate, (None, None)

    def at(self, rate: int | None) -> list[np.ndarray]:
        if rate is None or rate == self.rate:
            return self.clips
        if self._cached[0] != rate:
            self._cached = (rate, [resample(c, self.rate, rate) for c in self.clips])
        return self._cached[1]


class Loaded:
    """Keeps the last loaded evaluation model, so roles sharing a reference load it once."""

    def __init__(self, device: str):
        self.device, self.ref, self.model = device, None, None

    def __call__(self, ref: str):
        if ref != self.ref:
            self.model = None  # release the previous model before loading the next
            self.model, self.ref = embedders.load(ref, self.device), ref
        return self.model


def _frechet(model, refs, methods: dict, table: dict, column: str) -> None:
    """FD and FAD are one computation over different embedding models."""
    reference = np.concatenate(model.embed(refs.at(model.sample_rate)))
    for name, audio in methods.items():
        table[name][column] = metrics.frechet_between(np.concatenate(model.embed(audio.at(model.sample_rate))),
                                                      reference)


def score(models: embedders.EvalModels, items: list[Item], generated: dict[str, tuple[list[np.ndarray], int]],
          k: int = 10, distractors: int = 69, seed: int = 0, device: str = "cpu",
          echo: Callable[[str], None] = print) -> dict[str, dict[str, float]]:
    """method -> metric -> value; ``generated`` maps a method to (clips, sample rate)."""
    refs = Audio([i.reference for i in items], REFERENCE_RATE)
    methods = {name: Audio(clips, rate) for name, (clips, rate) in generated.items()}
    table: dict[str, dict[str, float]] = {name: {} for name in [*methods, GROUND_TRUTH]}
    load = Loaded(device)
    frames = [i.frames for i in items]

    echo(f"evaluate: FD ({models.fd})")
    _frechet(load(models.fd), refs, methods, table, "fd")

    echo(f"evaluate: KL ({models.kl})")
    model = load(models.kl)
    ref_logits = model.logits(refs.at(model.sample_rate))
    for name, audio in methods.items():
        logits = model.logits(audio.at(model.sample_rate))
        table[name]["kl_softmax"] = metrics.kl_softmax(logits, ref_logits)
        table[name]["kl_sigmoid"] = metrics.kl_sigmoid(logits, ref_logits)

    echo(f"evaluate: FAD ({models.fad})")
    _frechet(load(models.fad), refs, methods, table, "fad")

    echo(f"evaluate: IB score ({models.ib})")
    model = load(models.ib)
    visual = model.embed_visual(frames)
    for name, audio in [*methods.items(), (GROUND_TRUTH, refs)]:
        table[name]["ib"] = metrics.paired_cosine(visual, model.embed_audio(audio.at(model.sample_rate)))

    echo(f"evaluate: EMS ({models.ems_visual} vs {models.ems_audio})")
    visual_va = load(models.ems_visual).visual_va(frames)
    model = load(models.ems_audio)
    for name, audio in [*methods.items(), (GROUND_TRUTH, refs)]:
        table[name]["ems"] = metrics.emotion_distance(model.audio_va(audio.at(model.sample_rate)), visual_va)

    echo(f"evaluate: P@{k} ({models.p10})")
    model = load(models.p10)
    pooled = lambda audio: np.stack([e.mean(0) for e in model.embed(audio.at(model.sample_rate))])  # noqa: E731
    ref_features = pooled(refs)
    for name, audio in methods.items():
        retrieval = metrics.precision_at_k(pooled(audio), ref_features, k=k, distractors=distractors, seed=seed)
        table[name]["p_at_k"] = retrieval.hit_rate
        table[name]["p_candidates"] = retrieval.candidates
    return table
