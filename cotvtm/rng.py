"""Counter-based random numbers: every draw is a pure function of (stream, counter, index).

A stateful generator (``torch.Generator``) hands numbers out in call order, so a window's
draws would depend on which other windows share its batch, when it was admitted and how
often the job was resumed. Here a window owns a *stream* (a hash of the seed, its input and its
window index); a draw is a hash of (stream, counter, index) where the counter is a step or
draw number and the index a position (codebook x vocabulary entry, or an element). Nothing
else enters, so the same window gets the same numbers in any batch, on any device, and a
CUDA graph can replay the computation (no host state is touched).

The hash is a 32-bit integer finaliser (``lowbias32``) run on int64 tensors.
"""

from __future__ import annotations

import hashlib
import math

import torch

_MASK = 0xFFFFFFFF


def stream_id(seed: int, key: str, window: int, purpose: str = "music") -> int:
    """The stream of one window of one input for one purpose ("music", "prior"): 32 bits of a
    SHA-256 of the four, so that the prior's and MusicGen's draws are unrelated."""
    digest = hashlib.sha256(f"{purpose}\x00{seed}\x00{key}\x00{window}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _mix(x: torch.Tensor) -> torch.Tensor:
    """lowbias32: a bijective 32-bit mixer (products wrap in int64; the low 32 bits are exact)."""
    x = x & _MASK
    x = ((x ^ (x >> 16)) * 0x7FEB352D) & _MASK
    x = ((x ^ (x >> 15)) * 0x846CA68B) & _MASK
    return x ^ (x >> 16)


def hash3(stream: torch.Tensor, counter: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """32-bit hashes of broadcast (stream, counter, index) int64 tensors."""
    return _mix(_mix(_mix(stream) ^ counter) ^ index)


def uniform(stream: torch.Tensor, counter: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Uniform draws in the open interval (0, 1), float32 (24 bits of the hash)."""
    bits = hash3(stream, counter, index) >> 8
    return (bits.to(torch.float32) + 0.5) * (1.0 / (1 << 24))


def gumbel(stream: torch.Tensor, counter: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Gumbel(0, 1) draws: argmax(logits + gumbel) samples from softmax(logits)."""
    return -torch.log(-torch.log(uniform(stream, counter, index)))


class CounterNoise:
    """Gaussian noise whose row ``i`` comes from ``streams[i]`` alone: a drop-in for a
    ``torch.Generator`` in the prior's sampler (``cotvtm/prior/cosine.py``). Each call is one
    draw number; element ``j`` of a row uses indices 2j and 2j+1 (Box-Muller)."""

    def __init__(self, streams: list[int] | torch.Tensor):
        self.streams = torch.as_tensor(streams, dtype=torch.int64)
        self.draw = 0

    def normal(self, shape, device=None, dtype=None) -> torch.Tensor:
        rows, per_row = shape[0], math.prod(shape[1:])
        if rows != len(self.streams):
            raise ValueError(f"noise for {rows} rows asked of {len(self.streams)} streams")
        streams = self.streams.to(device)[:, None]
        index = torch.arange(per_row, device=device, dtype=torch.int64)[None, :] * 2
        counter = torch.tensor(self.draw, device=device, dtype=torch.int64)
        self.draw += 1
        u1, u2 = uniform(streams, counter, index), uniform(streams, counter, index + 1)
        z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)
        return z.reshape(shape).to(dtype or torch.float32)
