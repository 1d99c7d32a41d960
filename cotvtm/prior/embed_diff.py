"""EmbedDiff: the transformer that predicts the noise on E_m tokens (the network only).

Input sequence, one row per example::

    [ time | proj(E_v) | proj(E_r) | x_t token 1 .. x_t token L ] + learned positions

The rationale token is absent when the model is built with ``rationale_dim=None``
(the ``no_rationale`` ablation). The output is epsilon for the L E_m tokens.
The noise schedule and samplers live in :mod:`cotvtm.prior.cosine` and call this network.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps t (B,) -> (B, dim), as in DDPM / improved-diffusion."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class Block(nn.Module):
    """Pre-norm transformer block with full (bidirectional) self-attention."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width), nn.Dropout(dropout)
        )

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        b, n, w = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        return self.proj(y.transpose(1, 2).reshape(b, n, w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class EmbedDiff(nn.Module):
    """Conditional epsilon-prediction network over the E_m token sequence."""

    def __init__(
        self,
        music_dim: int,
        music_len: int,
        clip_dim: int,
        rationale_dim: int | None,
        width: int,
        layers: int,
        heads: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.music_len = music_len
        self.time_mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.SiLU(), nn.Linear(4 * width, width))
        self.clip_proj = nn.Sequential(nn.LayerNorm(clip_dim), nn.Linear(clip_dim, width))
        self.rationale_proj = (
            nn.Sequential(nn.LayerNorm(rationale_dim), nn.Linear(rationale_dim, width)) if rationale_dim else None
        )
        n_cond = 2 if rationale_dim else 1
        # Learned "no condition" tokens: used where cond_mask is False (condition dropout / CFG).
        self.null_cond = nn.Parameter(torch.randn(n_cond, width) * 0.02)
        self.in_proj = nn.Linear(music_dim, width)
        self.pos = nn.Parameter(torch.randn(1 + n_cond + music_len, width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, heads, dropout) for _ in range(layers))
        self.out_norm = nn.LayerNorm(width)
        self.out_proj = nn.Linear(width, music_dim)
        # eps = out + gate(t) * x_t. At high noise eps ~= x_t, an identity a transformer with a
        # final LayerNorm only learns roughly, and its error is divided by sqrt(alpha_bar) in
        # the x_0 estimate; the time-dependent skip makes that identity exact. Starts at 1.
        self.skip_gate = nn.Linear(width, 1)
        nn.init.zeros_(self.skip_gate.weight)
        nn.init.ones_(self.skip_gate.bias)

    def condition_tokens(
        self, e_v: torch.Tensor, e_r: torch.Tensor | None, cond_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """(B, n_cond, width): projected conditions, or the null tokens where cond_mask is False."""
        tokens = [self.clip_proj(e_v)]
        if self.rationale_proj is not None:
            if e_r is None:
                raise ValueError("this EmbedDiff is conditioned on a rationale embedding: pass e_r")
            tokens.append(self.rationale_proj(e_r))
        cond = torch.stack(tokens, dim=1)
        if cond_mask is None:
            return cond
        keep = cond_mask.to(device=cond.device, dtype=torch.bool)[:, None, None]
        return torch.where(keep, cond, self.null_cond.to(cond.dtype)[None])

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        e_v: torch.Tensor,
        e_r: torch.Tensor | None = None,
        cond_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict epsilon.

        x_t (B, L, music_dim) noised E_m; t (B,) long timesteps; e_v (B, clip_dim);
        e_r (B, rationale_dim) or None; cond_mask (B,) bool, False -> null conditions
        (None = keep all). Returns (B, L, music_dim).
        """
        width = self.pos.shape[-1]
        time = self.time_mlp(timestep_embedding(t, width).to(x_t.dtype))[:, None]
        h = torch.cat([time, self.condition_tokens(e_v, e_r, cond_mask), self.in_proj(x_t)], dim=1)
        h = h + self.pos
        for block in self.blocks:
            h = block(h)
        eps = self.out_proj(self.out_norm(h[:, -self.music_len :]))
        return eps + self.skip_gate(time) * x_t
