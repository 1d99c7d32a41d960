"""The MLPs of the prior: stage 1 (E_v -> E_r') and the ``mlp_mlp`` ablation's stage 2."""

from __future__ import annotations

import torch
from torch import nn


def _hidden_block(d_in: int, d_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.LayerNorm(d_out), nn.GELU(), nn.Dropout(dropout))


class RationaleMLP(nn.Module):
    """Stage 1: CLIP embedding E_v (B, clip_dim) -> rationale embedding E_r' (B, rationale_dim).

    Trained by MSE against the LLM2Vec embedding of the teacher's rationale.
    """

    def __init__(self, clip_dim: int, rationale_dim: int, hidden: int, dropout: float = 0.2):
        super().__init__()
        self.net = nn.Sequential(
            _hidden_block(clip_dim, hidden, dropout),
            _hidden_block(hidden, hidden, dropout),
            nn.Linear(hidden, rationale_dim),
        )

    def forward(self, e_v: torch.Tensor) -> torch.Tensor:
        return self.net(e_v)


class MusicMLP(nn.Module):
    """Ablation stage 2: E_r' (B, rationale_dim) -> E_m (B, L, music_dim), deterministic.

    A shared hidden vector plus a learned per-position embedding, then a per-token MLP
    (cheaper than one Linear to L * music_dim outputs).
    """

    def __init__(self, rationale_dim: int, music_dim: int, music_len: int, hidden: int, dropout: float = 0.2):
        super().__init__()
        self.encode = _hidden_block(rationale_dim, hidden, dropout)
        self.pos = nn.Parameter(torch.randn(music_len, hidden) * 0.02)
        self.decode = nn.Sequential(_hidden_block(hidden, hidden, dropout), nn.Linear(hidden, music_dim))

    def forward(self, e_r: torch.Tensor) -> torch.Tensor:
        h = self.encode(e_r)[:, None, :] + self.pos  # (B, L, hidden)
        return self.decode(h)
