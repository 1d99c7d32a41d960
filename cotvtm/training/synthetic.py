"""Synthetic studies that show what the two-stage prior buys, with known answers.

- one-to-many: each input has k equally likely targets. A regressor (MSE) can only
  predict their mean, which lies between them; a diffusion prior samples the targets.
- latent chain: the target depends on the input only through a discrete intermediate
  that the teacher exposes as E_r. The two-stage prior learns the intermediate with direct
  supervision; the no-rationale ablation must find it through the diffusion objective.
"""

from dataclasses import dataclass

import torch


@dataclass
class Task:
    train: dict  # e_v, e_r, e_m tensors for fit_in_memory
    test_inputs: torch.Tensor  # (M, clip_dim) inputs to evaluate on
    test_targets: torch.Tensor  # (M, k, L, D): the acceptable answers per test input
    all_targets: torch.Tensor  # (T, L, D): every distinct target


def _unit(generator, *shape) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(*shape, generator=generator), dim=-1)


def one_to_many(inputs=8, k=3, samples_per_input=200, dims=(32, 32, 8, 32), seed=0) -> Task:
    clip_dim, rationale_dim, length, music_dim = dims
    g = torch.Generator().manual_seed(seed)
    e_v = _unit(g, inputs, clip_dim)
    targets = torch.randn(inputs, k, length, music_dim, generator=g)
    which = torch.randint(0, k, (inputs * samples_per_input,), generator=g)
    source = torch.arange(inputs).repeat_interleave(samples_per_input)
    train = {"e_v": e_v[source], "e_r": e_v[source][:, :rationale_dim], "e_m": targets[source, which]}
    return Task(train, e_v, targets, targets.reshape(-1, length, music_dim))


def latent_chain(train_inputs=256, test_inputs=128, classes=6, dims=(32, 32, 8, 32), seed=0) -> Task:
    clip_dim, rationale_dim, length, music_dim = dims
    g = torch.Generator().manual_seed(seed)
    projection = torch.randn(clip_dim, classes, generator=g)
    codes = _unit(g, classes, rationale_dim) * 3  # what the teacher's rationale encodes
    music = torch.randn(classes, length, music_dim, generator=g)
    e_v = _unit(g, train_inputs + test_inputs, clip_dim)
    z = (e_v @ projection).argmax(-1)
    train = {"e_v": e_v[:train_inputs], "e_r": codes[z[:train_inputs]], "e_m": music[z[:train_inputs]]}
    return Task(train, e_v[train_inputs:], music[z[train_inputs:]][:, None], music)


def nearest(samples: torch.Tensor, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the nearest candidate per sample and the relative error to it."""
    flat_s, flat_c = samples.flatten(1), candidates.flatten(1)
    dist = torch.cdist(flat_s, flat_c)
    best = dist.argmin(-1)
    return best, dist.gather(1, best[:, None])[:, 0] / flat_c[best].norm(dim=-1)


def hit_rate(samples: torch.Tensor, allowed: torch.Tensor, tolerance: float = 0.5) -> float:
    """Fraction of samples within ``tolerance`` relative error of one of their allowed targets.

    Independent random targets lie ~1.41 (relative) apart, so 0.5 means clearly in one
    target's neighbourhood, never half-way between two.
    """
    hits = [nearest(s[None], a)[1][0] < tolerance for s, a in zip(samples, allowed)]
    return float(torch.stack(hits).float().mean())
