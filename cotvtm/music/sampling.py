"""Choosing MusicGen's next tokens: guidance, temperature, top-k, and batch-invariant draws.

``guide`` is transformers' ``ClassifierFreeGuidanceLogitsProcessor`` arithmetic (uncond +
scale x (cond - uncond), in float32), so greedy decoding picks exactly what ``generate`` picks.
Sampling draws with the Gumbel-max trick: the token is the argmax of the top-k scores plus
Gumbel noise, which samples from softmax(top-k / temperature) like ``generate``'s
multinomial does, but the noise of a (window, step, codebook, token) is a hash of those four
(``cotvtm/rng.py``): a window's music does not depend on the windows it shares a step with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cotvtm.rng import gumbel


@dataclass(frozen=True)
class SamplingConfig:
    guidance_scale: float = 3.0
    top_k: int = 250
    temperature: float = 1.0
    do_sample: bool = True

    @property
    def guided(self) -> bool:
        """Classifier-free guidance doubles the rows: one with E_m, one without."""
        return bool(self.guidance_scale and self.guidance_scale > 1)


def with_unconditional(hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """E_m (B, L, D) and its mask stacked over the rows guidance compares them with: no E_m at all
    (zero states, zero mask), as transformers expects the caller to supply them."""
    return torch.cat([hidden, torch.zeros_like(hidden)]), torch.cat([mask, torch.zeros_like(mask)])


def guide(logits: torch.Tensor, scale: float) -> torch.Tensor:
    """(n, rows per window, codebooks, vocab) -> guided float32 scores (n, codebooks, vocab)."""
    logits = logits.float()
    if logits.shape[1] == 1:
        return logits[:, 0]
    cond, uncond = logits[:, 0], logits[:, 1]
    return uncond + (cond - uncond) * scale


def choose(scores: torch.Tensor, streams: torch.Tensor, counters: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """Next tokens (n, codebooks) from scores (n, codebooks, vocab); row i's draws come from
    ``streams[i]`` at ``counters[i]`` (its position) alone."""
    if not cfg.do_sample:
        return scores.argmax(-1)
    vocab = scores.shape[-1]
    top = min(cfg.top_k, vocab) if cfg.top_k else vocab
    values, index = (scores / cfg.temperature).topk(top, dim=-1)
    codebook = torch.arange(scores.shape[1], device=scores.device)[None, :, None]
    noise = gumbel(streams[:, None, None], counters[:, None, None], codebook * vocab + index)
    pick = (values + noise).argmax(-1, keepdim=True)
    return index.gather(-1, pick)[..., 0]
