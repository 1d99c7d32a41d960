"""MusicGen decoding in slots: every busy slot advances one decoder step at a time.

A slot holds one window: its tokens in the codebook delay pattern, its position, its
self-attention cache (``decoder.py``), the cross-attention keys and values of its E_m, and its
random stream. A window is admitted into any free slot at any step (its prompt prefilled in one
forward) and leaves when its last token is sampled; ``step`` returns the finished ones so the
caller can admit the next. Classifier-free guidance gives each slot two rows (with and
without E_m).

Everything a step touches lives in preallocated device tensors, so on a GPU the step is
captured once per bucket of busy slots as a CUDA graph and replayed (eager on the CPU, where
the same step function runs: only the capture differs). Windows finish after a known number of
steps (MusicGen has no end token), so the host knows which slots are busy without reading
anything back from the device until a window's codes are taken.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from cotvtm.music.decoder import StaticDecoder
from cotvtm.music.sampling import SamplingConfig, choose, guide, with_unconditional

POSITION_STEP = 64  # caches grow in steps of this many positions


@dataclass
class Window:
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


class DecodeEngine:
    def __init__(self, model, slots: int, sampling: SamplingConfig, device: str | torch.device = "cpu",
                 graphs: bool | None = None):
        self.model, self.slots, self.sampling = model, slots, sampling
        self.device = torch.device(device)
        self.dtype = next(model.decoder.parameters()).dtype
        self.rows_per_slot = 2 if sampling.guided else 1
        self.num_codebooks = model.decoder.config.num_codebooks
        self.pad = int(model.generation_config.pad_token_id)
        self.use_graphs = self.device.type == "cuda" if graphs is None else graphs
        self.windows: list[Window | None] = [None] * slots
        self.length = [0] * slots  # host copies: every busy slot moves one position per step
        self.limit = [0] * slots
        self.waiting: deque[Window] = deque()  # submitted, not yet admitted
        self.steps = 0  # decoder steps run (each advances every busy slot)
        self.slot_steps = 0  # useful slot-steps among them
        self.cache: StaticDecoder | None = None

    # -- capacity ---------------------------------------------------------------------------

    @property
    def busy(self) -> list[int]:
        return [s for s, w in enumerate(self.windows) if w is not None]

    def fits(self, window: Window) -> bool:
        return (self.cache is not None and window.positions <= self.cache.positions
                and window.hidden.shape[0] <= self.cache.text)

    def _allocate(self, window: Window) -> None:
        """Caches (and graphs) sized for ``window`` and what came before; only while idle."""
        old = self.cache
        positions = max(window.positions, old.positions if old else 0)
        positions = -(-positions // POSITION_STEP) * POSITION_STEP
        text = max(window.hidden.shape[0], old.text if old else 0)
        self.cache = None
        rows = self.slots * self.rows_per_slot
        self.cache = StaticDecoder(self.model, rows, positions, text, self.device, self.dtype)
        shape = (self.slots, self.num_codebooks, positions)
        self.tokens = torch.full(shape, self.pad, dtype=torch.long, device=self.device)
        self.pattern = torch.full(shape, self.pad, dtype=torch.long, device=self.device)
        self.position = torch.zeros(self.slots, dtype=torch.long, device=self.device)
        self.stream = torch.zeros(self.slots, dtype=torch.long, device=self.device)
        self.active = torch.zeros(self.slots, dtype=torch.bool, device=self.device)
        self.graphs = self._capture() if self.use_graphs else {}

    # -- admission ----------------------------------------------------------------------------

    @torch.inference_mode()
    def admit(self, window: Window) -> int:
        """Put ``window`` into the lowest free slot and prefill its prompt; returns the slot."""
        if not self.fits(window):
            if self.busy:
                raise RuntimeError("the engine must be idle to grow its caches for a longer window")
            self._allocate(window)
        slot = self.windows.index(None)
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
        self.windows[slot], self.length[slot], self.limit[slot] = window, prefix.shape[1], window.positions
        return slot

    def _set_conditioning(self, rows: slice, window: Window) -> None:
        hidden = torch.as_tensor(window.hidden, dtype=self.dtype, device=self.device)[None]
        mask = torch.as_tensor(window.mask, dtype=torch.long, device=self.device)[None]
        if self.rows_per_slot == 2:
            hidden, mask = with_unconditional(hidden, mask)
        self.cache.set_cross(rows, hidden, mask)

    # -- stepping -----------------------------------------------------------------------------

    @torch.inference_mode()
    def step(self) -> list[tuple[Hashable, np.ndarray]]:
        """One decoder step for every busy slot; returns the windows that finished, with their
        codes (codebooks, frames): the prompt's, then the new ones."""
        busy = self.busy
        if not busy:
            return []
        width = busy[-1] + 1
        graph = next((n for n in sorted(self.graphs) if n >= width), None)
        if graph is not None:
            self.graphs[graph].replay()
        else:
            self._step(width, max(self.length[s] for s in busy))
        self.steps += 1
        self.slot_steps += len(busy)
        finished = []
        for slot in busy:
            self.length[slot] += 1
            if self.length[slot] == self.limit[slot]:
                finished.append((self.windows[slot].id, self._codes(slot)))
                self.windows[slot] = None
                self.active[slot] = False
        return finished

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

    def _codes(self, slot: int) -> np.ndarray:
        """The window's codes without the delay pattern's padding (as ``generate`` returns them)."""
        out = self.tokens[slot, :, : self.limit[slot]]
        return out[out != self.pad].reshape(self.num_codebooks, -1).cpu().numpy()

    def _capture(self) -> dict:
        """One CUDA graph per bucket of busy slots (1, 2, 4, ... slots), captured while idle;
        a capture that fails leaves the engine eager, with a warning."""
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

    # -- a whole batch ------------------------------------------------------------------------

    def submit(self, window: Window) -> None:
        """Queue a window: it is admitted as soon as a slot is free."""
        self.waiting.append(window)

    def clear(self) -> None:
        """Drop every window, admitted or queued (after a failed step); the caches stay."""
        self.windows = [None] * self.slots
        self.waiting.clear()
        if self.cache is not None:
            self.active.zero_()

    @property
    def pending(self) -> bool:
        return bool(self.waiting or self.busy)

    def advance(self) -> list[tuple[Hashable, np.ndarray]]:
        """Admit waiting windows into free slots, then one step; the windows that finished."""
        while self.waiting and None in self.windows and (self.fits(self.waiting[0]) or not self.busy):
            self.admit(self.waiting.popleft())
        return self.step()

    def run(self, windows: Iterable[Window]) -> dict[Hashable, np.ndarray]:
        """Decode every window, admitting the next whenever a slot frees; codes by window id."""
        done = {}
        for window in windows:
            self.submit(window)
        while self.pending:
            done.update(self.advance())
        return done

    @property
    def occupancy(self) -> float:
        """Useful slot-steps over capacity (slots x steps) so far."""
        return self.slot_steps / max(1, self.steps * self.slots)
