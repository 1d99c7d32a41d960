"""The device side of the decode engine: a slot's tensors, the step function, its CUDA graphs.

A slot holds one window: its tokens in the codebook delay pattern, its position, its
self-attention cache (``decoder.py``), the cross-attention keys and values of its E_m, and its
random stream. Classifier-free guidance gives each slot two rows (with and without E_m).

Everything a step touches lives in preallocated device tensors, so on a GPU the step is
captured once per bucket of busy slots as a CUDA graph and replayed (eager on the CPU, where
the same step function runs: only the capture differs). Which window sits in which slot, and
when it ends, is the engine's bookkeeping (``engine.py``): the runner reads nothing back from
the device until a window's codes are taken.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import torch

from cotvtm.music.decoder import StaticDecoder
from cotvtm.music.sampling import SamplingConfig, choose, guide, with_unconditional

POSITION_STEP = 64  # caches grow in steps of this many positions


@dataclass
class DecodeWindow:
    """One window to decode: E_m, how many decoder steps, its random stream, an optional prompt."""

    id: Hashable
    hidden: np.ndarray  # (L, D) E_m
    mask: np.ndarray  # (L,)
    new_tokens: int  # decoder steps (the delay pattern's extra steps included)
    stream: int  # cotvtm.rng.stream_id of (seed, input, window)
    prompt: np.ndarray | None = None  # (codebooks, frames) codes to continue

    @property
    def positions(self) -> int:
        """Sequence length: the start token, the prompt, the new tokens."""
        return 1 + (0 if self.prompt is None else self.prompt.shape[1]) + self.new_tokens


def delay_pattern(model, prompt: np.ndarray | None, positions: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' own ``build_delay_pattern_mask`` for one window of ``positions`` tokens:
    the delayed prefix (start token and prompt) and, per position, the token forced there
    (-1: to be sampled), both (codebooks, ...)."""
    codebooks = model.decoder.config.num_codebooks
    start = int(model.generation_config.decoder_start_token_id)
    ids = torch.full((codebooks, 1), start, dtype=torch.long, device=device)
    if prompt is not None and prompt.shape[1]:
        ids = torch.cat([ids, torch.as_tensor(prompt, dtype=torch.long, device=device)], dim=1)
    return model.decoder.build_delay_pattern_mask(ids, pad_token_id=start, max_length=positions)


class StepRunner:
    """``slots`` slots of preallocated tensors, and one decoder step over the first ``width``.

    The tensors are made under inference mode, so every method that changes them runs under it
    too: torch refuses in-place updates of inference tensors outside it."""

    def __init__(self, model, slots: int, sampling: SamplingConfig, device: str | torch.device = "cpu",
                 graphs: bool | None = None):
        self.model, self.slots, self.sampling = model, slots, sampling
        self.device = torch.device(device)
        self.dtype = next(model.decoder.parameters()).dtype
        self.rows_per_slot = 2 if sampling.guided else 1
        self.num_codebooks = model.decoder.config.num_codebooks
        self.pad = int(model.generation_config.pad_token_id)
        self.use_graphs = self.device.type == "cuda" if graphs is None else graphs
        self.cache: StaticDecoder | None = None

    # -- tensors ------------------------------------------------------------------------------

    def fits(self, window: DecodeWindow) -> bool:
        return (self.cache is not None and window.positions <= self.cache.positions
                and window.hidden.shape[0] <= self.cache.text)

    @torch.inference_mode()
    def grow(self, window: DecodeWindow) -> None:
        """Caches (and graphs) sized for ``window`` and what came before; only while no slot is busy."""
        old = self.cache
        positions = max(window.positions, old.positions if old else 0)
        positions = -(-positions // POSITION_STEP) * POSITION_STEP
        text = max(window.hidden.shape[0], old.text if old else 0)
        self.cache = None  # the old caches go before the new ones are made
        rows = self.slots * self.rows_per_slot
        self.cache = StaticDecoder(self.model, rows, positions, text, self.device, self.dtype)
        shape = (self.slots, self.num_codebooks, positions)
        self.tokens = torch.full(shape, self.pad, dtype=torch.long, device=self.device)
        self.pattern = torch.full(shape, self.pad, dtype=torch.long, device=self.device)
        self.position = torch.zeros(self.slots, dtype=torch.long, device=self.device)
        self.stream = torch.zeros(self.slots, dtype=torch.long, device=self.device)
        self.active = torch.zeros(self.slots, dtype=torch.bool, device=self.device)
        self.graphs = self._capture() if self.use_graphs else {}

    @torch.inference_mode()
    def load(self, slot: int, window: DecodeWindow) -> int:
        """Put ``window`` into ``slot`` and prefill its prompt; returns its prefix length, the
        position its first new token goes to."""
        prefix, pattern = delay_pattern(self.model, window.prompt, window.positions, self.device)
        self.tokens[slot] = self.pad
        self.tokens[slot, :, : prefix.shape[1]] = prefix
        self.pattern[slot] = self.pad
        self.pattern[slot, :, : pattern.shape[1]] = pattern
        rows = slice(slot * self.rows_per_slot, (slot + 1) * self.rows_per_slot)
        self._set_conditioning(rows, window)
        if prefix.shape[1] > 1:  # all but the last prefix token; the next step feeds that one
            seen = prefix.shape[1] - 1
            tokens = prefix[None, :, :seen].expand(self.rows_per_slot, -1, -1)
            positions = torch.arange(seen, device=self.device)[None].expand(self.rows_per_slot, -1)
            self.cache.forward(rows, tokens, positions, seen)
        self.position[slot], self.stream[slot], self.active[slot] = prefix.shape[1], window.stream, True
        return prefix.shape[1]

    def _set_conditioning(self, rows: slice, window: DecodeWindow) -> None:
        hidden = torch.as_tensor(window.hidden, dtype=self.dtype, device=self.device)[None]
        mask = torch.as_tensor(window.mask, dtype=torch.long, device=self.device)[None]
        if self.rows_per_slot == 2:
            hidden, mask = with_unconditional(hidden, mask)
        self.cache.set_cross(rows, hidden, mask)

    @torch.inference_mode()
    def release(self, slot: int) -> None:
        """The slot's window is done: later steps leave the slot as it is."""
        self.active[slot] = False

    @torch.inference_mode()
    def idle(self) -> None:
        """Every slot released (the engine dropped its windows)."""
        if self.cache is not None:
            self.active.zero_()

    def codes(self, slot: int, positions: int) -> np.ndarray:
        """The slot's codes without the delay pattern's padding (as ``generate`` returns them)."""
        out = self.tokens[slot, :, :positions]
        return out[out != self.pad].reshape(self.num_codebooks, -1).cpu().numpy()

    # -- a step -------------------------------------------------------------------------------

    @torch.inference_mode()
    def run(self, width: int, upto: int) -> None:
        """One step over slots [0, width), whose caches hold at most ``upto`` positions: the
        smallest captured graph that covers them, or the step itself."""
        graph = next((n for n in sorted(self.graphs) if n >= width), None)
        if graph is not None:
            self.graphs[graph].replay()
        else:
            self._step(width, upto)

    def _step(self, width: int, upto: int) -> None:
        """Device work of one step over slots [0, width): only tensors, no host reads, so that
        it can be captured; slots that are not active keep their tokens and positions."""
        codebooks, rps = self.num_codebooks, self.rows_per_slot
        position = self.position[:width]
        last = (position - 1).clamp(min=0)[:, None, None].expand(width, codebooks, 1)
        tokens = self.tokens[:width].gather(2, last).repeat_interleave(rps, 0)
        positions = (position - 1).clamp(min=0)[:, None].repeat_interleave(rps, 0)
        logits = self.cache.forward(slice(0, width * rps), tokens, positions, upto)
        scores = guide(logits.view(width, rps, codebooks, -1), self.sampling.guidance_scale)
        chosen = choose(scores, self.stream[:width], position, self.sampling)
        at = position.clamp(max=self.tokens.shape[2] - 1)[:, None, None].expand(width, codebooks, 1)
        forced = self.pattern[:width].gather(2, at)[..., 0]
        chosen = torch.where(forced == -1, chosen, forced)
        active = self.active[:width]
        kept = self.tokens[:width].gather(2, at)[..., 0]
        self.tokens[:width].scatter_(2, at, torch.where(active[:, None], chosen, kept)[..., None])
        self.position[:width] += active.long()

    def _capture(self) -> dict:
        """One CUDA graph per bucket of busy slots (1, 2, 4, ... slots), captured while idle;
        a capture that fails leaves the runner eager, with a warning."""
        buckets = sorted({min(2 ** i, self.slots) for i in range(self.slots.bit_length() + 1)})
        upto, graphs, pool = self.cache.positions, {}, None
        try:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for width in buckets:  # warm-up (nothing is active: no slot changes)
                    self._step(width, upto)
            torch.cuda.current_stream(self.device).wait_stream(side)
            pool = torch.cuda.graph_pool_handle()
            for width in reversed(buckets):  # the largest first: the pool fits the rest
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=pool):
                    self._step(width, upto)
                graphs[width] = graph
        except Exception as exc:  # noqa: BLE001 - eager decoding still works
            warnings.warn(f"CUDA graph capture failed, decoding eagerly: {type(exc).__name__}: {exc}", stacklevel=2)
            return {}
        return graphs
