"""Cosine noise schedule (improved DDPM) with its training loss and samplers.

The schedule knows nothing about the network: every function takes ``eps_fn(x_t, t) -> eps``,
a callable that predicts the noise added to x_0. Classifier-free guidance, conditioning and
batching are the caller's business (see ``TwoStagePrior.guided_eps_fn``).

Sampling uses a respaced chain: ``steps`` timesteps evenly spaced from 0 with stride T / steps
(see ``respaced_timesteps`` for why the chain does not start at T-1). Consecutive kept timesteps
t_k > t_{k-1} form a shorter Markov chain whose cumulative alphas are the original ones, so
beta_k = 1 - alpha_bar(t_k) / alpha_bar(t_{k-1}); the network is always called with the
original timestep t_k it was trained on.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from cotvtm.rng import CounterNoise

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

COSINE_S = 0.008
MAX_BETA = 0.999
METHODS = ("ddpm", "ddim")


def _randn(shape, generator: torch.Generator | CounterNoise | None, like: torch.Tensor | None = None, device=None,
           dtype=None):
    """Gaussian noise drawn on the generator's device, then moved: a CPU generator gives the same
    numbers whatever device the model runs on. A ``CounterNoise`` gives each row its own
    stream's numbers, whatever the batch."""
    device = like.device if like is not None else device
    dtype = like.dtype if like is not None else (dtype or torch.float32)
    if isinstance(generator, CounterNoise):
        return generator.normal(shape, device=device, dtype=dtype)
    source = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=source, dtype=dtype).to(device)


class CosineSchedule:
    """Improved-DDPM cosine schedule: f(t) = cos^2((t / T + s) / (1 + s) * pi / 2), s = 0.008,
    beta_t = min(1 - f(t + 1) / f(t), 0.999), so alphas_cumprod[t] = f(t + 1) / f(0) until the clip."""

    def __init__(self, train_steps: int = 1000):
        self.train_steps = train_steps
        f = lambda i: math.cos((i / train_steps + COSINE_S) / (1 + COSINE_S) * math.pi / 2) ** 2  # noqa: E731
        betas = [min(1 - f(i + 1) / f(i), MAX_BETA) for i in range(train_steps)]
        self.betas = torch.tensor(betas, dtype=torch.float64)
        self.alphas_cumprod = torch.cumprod(1 - self.betas, dim=0)  # alpha_bar at t = 0..T-1

    # ---- training ------------------------------------------------------------------------

    def _alpha_bar(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """alpha_bar[t] shaped (B, 1, ..., 1) to broadcast against x."""
        ab = self.alphas_cumprod[t.cpu()].to(device=x.device, dtype=x.dtype)
        return ab.view(-1, *([1] * (x.dim() - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise."""
        ab = self._alpha_bar(t, x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def training_loss(
        self,
        eps_fn: EpsFn,
        x0: torch.Tensor,
        t: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Epsilon MSE at uniformly drawn timesteps (unless t is given).

        mask (B, L), optional: 1 for tokens that count. x0 is (B, L, D). Note the prior does not
        mask zero-padded E_m tokens: it must learn to generate them (see ``TwoStagePrior``).
        """
        if t is None:
            source = generator.device if generator is not None else x0.device
            t = torch.randint(0, self.train_steps, (x0.shape[0],), generator=generator, device=source)
            t = t.to(x0.device)
        if noise is None:
            noise = _randn(x0.shape, generator, like=x0)
        err = (eps_fn(self.q_sample(x0, t, noise), t) - noise).pow(2)
        if mask is None:
            return err.mean()
        weight = mask.to(err.dtype)[..., None].expand_as(err)
        return (err * weight).sum() / weight.sum().clamp_min(1)

    # ---- sampling ------------------------------------------------------------------------

    def respaced_timesteps(self, steps: int) -> torch.Tensor:
        """`steps` timesteps k * T // steps (k = 0..steps-1), ascending: evenly spaced, from 0.

        The chain starts one stride below T ("leading" spacing), not at T-1. With the cosine
        schedule alpha_bar(t) ~ c (T-1-t)^2 near the end, and the clipped last beta makes
        alpha_bar(T-1) ~ 2e-9: an epsilon network's error e there becomes an x_0 error of
        e / sqrt(alpha_bar) ~ 2e4 e, which the next step multiplies by sqrt(alpha_bar(t_prev))
        (x190 at 200 steps, x1370 at 25) and sampling diverges. Starting one stride below T
        bounds that factor by ~2 at every step, while x_start ~ N(0, I) is still a close
        approximation (sqrt(alpha_bar) ~ 0.008 at 200 steps, 0.06 at 25).
        """
        if not 0 < steps <= self.train_steps:
            raise ValueError(f"steps must be in 1..{self.train_steps}, got {steps}")
        return torch.arange(steps, dtype=torch.long) * self.train_steps // steps

    @staticmethod
    def predict_x0(x: torch.Tensor, eps: torch.Tensor, ab_t: float) -> torch.Tensor:
        """x_0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar).

        With betas capped at 0.999, alpha_bar(T-1) ~ 2e-9, so the factor is ~2e4: large but finite.
        """
        return (x - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)

    @staticmethod
    def ddpm_step(x, x0, ab_t: float, ab_prev: float, generator) -> torch.Tensor:
        """Sample x_{t_prev} from the posterior q(x_prev | x_t, x_0) of the respaced chain
        (variance beta_tilde, improved-diffusion's "fixed small")."""
        beta = 1 - ab_t / ab_prev
        mean = (beta * math.sqrt(ab_prev) / (1 - ab_t)) * x0 + ((1 - ab_prev) * math.sqrt(1 - beta) / (1 - ab_t)) * x
        var = beta * (1 - ab_prev) / (1 - ab_t)
        if var <= 0:  # last step: ab_prev = 1
            return mean
        return mean + math.sqrt(var) * _randn(x.shape, generator, like=x)

    @staticmethod
    def ddim_step(x, x0, eps, ab_t: float, ab_prev: float, eta: float, generator) -> torch.Tensor:
        """DDIM update; eta = 0 is deterministic, eta = 1 matches DDPM's variance."""
        sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev))
        x_prev = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - sigma**2, 0.0)) * eps
        if sigma <= 0:
            return x_prev
        return x_prev + sigma * _randn(x.shape, generator, like=x)

    @torch.no_grad()
    def sample(
        self,
        eps_fn: EpsFn,
        shape: tuple[int, ...],
        steps: int = 200,
        method: str = "ddpm",
        eta: float = 0.0,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        clip_x0: float | None = None,
    ) -> torch.Tensor:
        """Run the reverse chain from pure noise; returns x_0 of `shape`.

        clip_x0: clamp the predicted x_0 to [-clip_x0, clip_x0] (off by default: embeddings are
        not bounded). Deterministic given `generator` (for DDIM with eta=0 only x_T is random).
        """
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        timesteps = self.respaced_timesteps(steps)
        x = _randn(shape, generator, device=device or "cpu", dtype=dtype)
        for k in reversed(range(len(timesteps))):
            t = int(timesteps[k])
            ab_t = float(self.alphas_cumprod[t])
            ab_prev = float(self.alphas_cumprod[timesteps[k - 1]]) if k > 0 else 1.0
            eps = eps_fn(x, torch.full((shape[0],), t, device=x.device, dtype=torch.long))
            x0 = self.predict_x0(x, eps, ab_t)
            if clip_x0 is not None:
                x0 = x0.clamp(-clip_x0, clip_x0)
                eps = (x - math.sqrt(ab_t) * x0) / math.sqrt(1 - ab_t)
            if method == "ddpm":
                x = self.ddpm_step(x, x0, ab_t, ab_prev, generator)
            else:
                x = self.ddim_step(x, x0, eps, ab_t, ab_prev, eta, generator)
        return x
