"""TwoStagePrior: CLIP image embedding E_v -> T5 conditioning sequence E_m for MusicGen.

Stage 1 (``mlp``) maps E_v to a rationale embedding E_r'; stage 2 (``diff``, an EmbedDiff
sampled with the cosine schedule) generates E_m given [E_v, E_r']. The ablations swap stage 2
for a deterministic ``music_mlp`` (``mlp_mlp``) or drop stage 1 (``no_rationale``).

Padding and the attention mask: training pads each E_m target to L tokens with zeros (the
same zeros MusicGen's cross-attention sees, as it multiplies encoder states by their mask).
The prior therefore learns to emit near-zero tokens where the description has ended. At
sampling time a token is kept (mask 1) when its RMS exceeds ``mask_threshold`` times the
largest token RMS of its row; the first token is always kept. Dropped tokens are zeroed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import ModelError
from .architecture import PriorConfig
from .cosine import CosineSchedule, EpsFn
from .embed_diff import EmbedDiff
from .mlp import MusicMLP, RationaleMLP

MODEL_TYPE = "cotvtm-prior"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def token_mask(e_m: torch.Tensor, threshold: float) -> torch.Tensor:
    """(B, L) long: 1 where a token's RMS > threshold * max token RMS of its row; token 0 always 1."""
    rms = e_m.float().pow(2).mean(dim=-1).sqrt()
    keep = rms > threshold * rms.amax(dim=1, keepdim=True)
    keep[:, 0] = True
    return keep.long()


class TwoStagePrior(nn.Module):
    """The distilled prior. Build from a :class:`PriorConfig`; sample with :meth:`sample`."""

    def __init__(self, config: PriorConfig):
        super().__init__()
        self.config = config
        c = config
        self.schedule = CosineSchedule(c.train_steps)
        self.mlp = None
        self.diff = None
        self.music_mlp = None
        if c.variant in ("full", "mlp_mlp"):
            self.mlp = RationaleMLP(c.clip_dim, c.rationale_dim, c.mlp_hidden, c.mlp_dropout)
        if c.variant == "mlp_mlp":
            self.music_mlp = MusicMLP(c.rationale_dim, c.music_dim, c.music_len, c.mlp_hidden, c.mlp_dropout)
        else:
            rationale_dim = c.rationale_dim if c.variant == "full" else None
            self.diff = EmbedDiff(
                c.music_dim, c.music_len, c.clip_dim, rationale_dim, c.diff_width, c.diff_layers, c.diff_heads
            )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    # ---- stage 1 -------------------------------------------------------------------------

    def forward_rationale(self, e_v: torch.Tensor) -> torch.Tensor:
        """E_v (B, clip_dim) -> E_r' (B, rationale_dim)."""
        if self.mlp is None:
            raise ValueError(f"variant {self.config.variant!r} has no rationale stage")
        return self.mlp(e_v)

    def rationale_loss(self, e_v: torch.Tensor, e_r: torch.Tensor) -> torch.Tensor:
        """Stage-1 objective: MSE(mlp(E_v), E_r)."""
        return F.mse_loss(self.forward_rationale(e_v), e_r)

    # ---- stage 2 -------------------------------------------------------------------------

    def music_loss(
        self,
        e_v: torch.Tensor,
        e_r: torch.Tensor | None,
        e_m: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Stage-2 objective on zero-padded targets E_m (B, L, music_dim).

        Diffusion variants: epsilon MSE on E_m * ``music_scale``, with both conditions dropped
        together (null tokens) for a ``cond_dropout`` fraction of rows. ``mlp_mlp``: MSE(music_mlp(E_r), E_m).
        e_r is the rationale embedding to condition on (teacher's or stage 1's; ignored by
        ``no_rationale``).
        """
        if self.music_mlp is not None:
            return F.mse_loss(self.music_mlp(e_r), e_m)
        e_r = e_r if self.config.variant == "full" else None
        source = generator.device if generator is not None else e_m.device
        keep = torch.rand(e_m.shape[0], generator=generator, device=source) >= self.config.cond_dropout
        keep = keep.to(e_m.device)
        eps_fn = lambda x, t: self.diff(x, t, e_v, e_r, keep)  # noqa: E731
        return self.schedule.training_loss(eps_fn, e_m * self.config.music_scale, generator=generator)

    def guided_eps_fn(self, e_v: torch.Tensor, e_r: torch.Tensor | None, guidance_scale: float) -> EpsFn:
        """eps_fn(x, t) for the sampler with classifier-free guidance.

        eps = eps_u + s * (eps_c - eps_u), with the conditional rows [0, B) and the
        unconditional rows [B, 2B) computed in one forward of 2B rows. s == 1 is exactly the
        conditional prediction, so only the B conditional rows are run.
        """
        b = e_v.shape[0]
        if guidance_scale == 1.0:
            keep = torch.ones(b, dtype=torch.bool, device=e_v.device)
            return lambda x, t: self.diff(x, t, e_v, e_r, keep)
        e_v2 = torch.cat([e_v, e_v])
        e_r2 = None if e_r is None else torch.cat([e_r, e_r])
        keep2 = torch.arange(2 * b, device=e_v.device) < b

        def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            eps_c, eps_u = self.diff(torch.cat([x, x]), torch.cat([t, t]), e_v2, e_r2, keep2).chunk(2)
            return eps_u + guidance_scale * (eps_c - eps_u)

        return eps_fn

    # ---- inference -----------------------------------------------------------------------

    @torch.no_grad()
    def sample(
        self,
        e_v: torch.Tensor,
        steps: int | None = None,
        method: str | None = None,
        guidance_scale: float | None = None,
        generator: torch.Generator | None = None,
        eta: float = 0.0,
        mask_threshold: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """E_v (B, clip_dim) -> (E_m (B, L, music_dim) in the model's dtype, mask (B, L) long).

        None arguments take the config's values. Runs in eval mode (restored afterwards);
        deterministic given `generator` (a CPU generator gives the same result on any device).
        """
        c = self.config
        was_training = self.training
        self.eval()
        try:
            e_m = self._generate(e_v.to(self.device, self.dtype), steps, method, guidance_scale, generator, eta)
        finally:
            self.train(was_training)
        mask = token_mask(e_m, c.mask_threshold if mask_threshold is None else mask_threshold)
        return e_m * mask[..., None].to(e_m.dtype), mask

    def _generate(self, e_v, steps, method, guidance_scale, generator, eta) -> torch.Tensor:
        c = self.config
        e_r = self.mlp(e_v) if self.mlp is not None else None
        if self.music_mlp is not None:
            return self.music_mlp(e_r)
        eps_fn = self.guided_eps_fn(e_v, e_r, c.guidance_scale if guidance_scale is None else guidance_scale)
        shape = (e_v.shape[0], c.music_len, c.music_dim)
        x0 = self.schedule.sample(
            eps_fn, shape, steps=steps or c.sample_steps, method=method or c.sampler, eta=eta,
            generator=generator, device=self.device, dtype=self.dtype,
        )
        return x0 / c.music_scale

    # ---- persistence ---------------------------------------------------------------------

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` into `directory` (created if needed)."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        config = {"model_type": MODEL_TYPE, **self.config.to_dict()}
        (path / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(path / WEIGHTS_NAME), metadata={"format": "pt", "model_type": MODEL_TYPE})

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: torch.device | str = "cpu") -> TwoStagePrior:
        """Load a directory written by :meth:`save_pretrained` (strict); returned in eval mode."""
        path = Path(directory)
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (path / name).is_file():
                raise ModelError(f"{path}: no {name}, not a cotvtm prior checkpoint")
        data = json.loads((path / CONFIG_NAME).read_text())
        if data.get("model_type") != MODEL_TYPE:
            raise ModelError(f"{path}: model_type is {data.get('model_type')!r}, expected {MODEL_TYPE!r}")
        model = cls(PriorConfig.from_dict(data))
        model.load_state_dict(load_file(str(path / WEIGHTS_NAME)), strict=True)
        return model.to(device).eval()
