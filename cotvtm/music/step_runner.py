"""The device side of the decode engine: a slot's tensors, the step function, its CUDA graphs.

A slot holds one window: its tokens in the codebook delay pattern, its position, its
self-attention cache (``musicgen_layers.py``), the cross-attention keys and values of its E_m, and its
random stream. Classifier-free guidance gives each slot two rows (with and without E_m).

Everything a step touches lives in preallocated device tensors, so on a GPU the step is
captured as CUDA graphs and replayed (eager on the CPU, where the same step function runs: only
the capture differs). A graph is captured per (slots, cache length) bucket: slots in powers of
two, or all of them with ``full``; cache lengths in steps of ``POSITION_STEP``, so attention
reads the keys written so far, not the whole cache.

No host sync: which window sits in which slot and when it ends is the engine's bookkeeping
(``engine.py``), admission builds a window's delay pattern and conditioning on the host and
copies them in without waiting (pinned memory on a GPU), and nothing is read back from the
device until a finished window's codes are taken.

With ``full`` (the default), every step runs over all slots, empty ones masked: every matrix
product then has the same shape at every step, so a window's logits do not depend on how many
other windows are busy (cuBLAS picks its kernel, and with it the rounding, by shape), and
windows are admitted one per prefill for the same reason. Without it, a step runs over the
smallest bucket of slots covering the busy ones and windows admitted together share a prefill:
faster while the engine is partly empty, at the price of last-bit differences between runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np
import torch

from cotvtm.music.musicgen_layers import StaticDecoder
from cotvtm.music.sampling import SamplingConfig, choose, guide

POSITION_STEP = 64  # caches grow, and attention reads them, in steps of this many positions


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


@dataclass
class Capture:
    """How the runner steps: the CUDA graphs it captured, or why it runs eagerly."""

    graphs: list[tuple[int, int]] = field(default_factory=list)  # (slots, cache positions) of each graph
    eager: str | None = "no step yet"  # why steps run eagerly; None when every step replays a graph

    def describe(self) -> str:
        if self.eager is not None:
            return f"eager ({self.eager})"
        slots, lengths = sorted({s for s, _ in self.graphs}), sorted({n for _, n in self.graphs})
        return (f"{len(self.graphs)} CUDA graphs captured (slots {_span(slots)} x cache positions "
                f"{_span(lengths)})")


def delay_pattern(model, prompt: np.ndarray | None, positions: int,
                  device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' own ``build_delay_pattern_mask`` for one window of ``positions`` tokens:
    the delayed prefix (start token and prompt) and, per position, the token forced there
    (-1: to be sampled), both (codebooks, ...). On the host by default: it reads values (a
    Python ``min`` over a tensor), which on a GPU would wait for every queued step."""
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
                 graphs: bool | None = None, full: bool = True):
        self.model, self.slots, self.sampling, self.full = model, slots, sampling, full
        self.device = torch.device(device)
        self.dtype = next(model.decoder.parameters()).dtype
        self.rows_per_slot = 2 if sampling.guided else 1
        self.num_codebooks = model.decoder.config.num_codebooks
        self.pad = int(model.generation_config.pad_token_id)
        self.use_graphs = self.device.type == "cuda" if graphs is None else graphs
        self.cache: StaticDecoder | None = None
        self.graphs: dict[tuple[int, int], torch.cuda.CUDAGraph] = {}
        self.capture = Capture()
        self._patterns: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # unprompted windows, by length

    # -- tensors ------------------------------------------------------------------------------

    def fits(self, window: DecodeWindow) -> bool:
        return (self.cache is not None and window.positions <= self.cache.positions
                and window.hidden.shape[0] <= self.cache.text)

    @torch.inference_mode()
    def grow(self, *windows: DecodeWindow) -> None:
        """Caches (and graphs) sized for ``windows`` and what came before; only while no slot is busy."""
        old = self.cache
        positions = _round_up(max(*(w.positions for w in windows), old.positions if old else 0))
        text = max(*(w.hidden.shape[0] for w in windows), old.text if old else 0)
        self.cache, self.graphs = None, {}  # the old caches go before the new ones are made
        self.cache = StaticDecoder(self.model, self.slots * self.rows_per_slot, positions, text, self.device)
        shape = (self.slots, self.num_codebooks, positions)
        self.tokens = torch.full(shape, self.pad, dtype=torch.long, device=self.device)
        self.pattern = torch.full(shape, self.pad, dtype=torch.long, device=self.device)
        self.position = torch.zeros(self.slots, dtype=torch.long, device=self.device)
        self.stream = torch.zeros(self.slots, dtype=torch.long, device=self.device)
        self.active = torch.zeros(self.slots, dtype=torch.bool, device=self.device)
        if self.use_graphs:
            self._capture()
        else:
            self.capture = Capture(eager=f"graphs are not used on {self.device.type}")

    def buffers(self) -> dict[str, torch.Tensor]:
        """Every tensor a step reads or writes besides the weights, by name: a captured graph
        replays on these addresses, so they must never move."""
        own = {name: getattr(self, name) for name in ("tokens", "pattern", "position", "stream", "active")}
        return {**own, **self.cache.buffers()}

    @torch.inference_mode()
    def load(self, slots: list[int], windows: list[DecodeWindow]) -> list[int]:
        """Put ``windows`` into ``slots``, prefilling their prompts in one forward; returns each
        prefix length, the position its first new token goes to. Everything is built on the
        host and copied in without a sync."""
        patterns = [self._delay_pattern(window) for window in windows]
        lengths = [prefix.shape[1] for prefix, _ in patterns]
        tokens = self._rows([prefix for prefix, _ in patterns])
        index = self._upload(torch.tensor(slots))
        rows = torch.tensor(slots)[:, None] * self.rows_per_slot + torch.arange(self.rows_per_slot)  # host
        self.tokens[index] = self._upload(tokens)
        self.pattern[index] = self._upload(self._rows([pattern for _, pattern in patterns]))
        self.position[index] = self._upload(torch.tensor(lengths))
        self.stream[index] = self._upload(torch.tensor([window.stream for window in windows]))
        self.active.index_fill_(0, index, True)  # a scalar, not a value copied from the host
        self._set_conditioning(self._upload(rows.flatten()), windows)
        seen = max(lengths) - 1  # all but the last prefix token; the next step feeds that one
        if seen > 0:
            prompted = [n for n, length in enumerate(lengths) if length > 1]
            feed = tokens[prompted, :, :seen].repeat_interleave(self.rows_per_slot, 0)
            positions = torch.arange(seen)[None].expand(feed.shape[0], -1)
            self.cache.forward(self._upload(rows[prompted].flatten()), self._upload(feed), self._upload(positions),
                               seen)
        return lengths

    def _delay_pattern(self, window: DecodeWindow) -> tuple[torch.Tensor, torch.Tensor]:
        if window.prompt is not None:
            return delay_pattern(self.model, window.prompt, window.positions)
        if window.positions not in self._patterns:
            self._patterns[window.positions] = delay_pattern(self.model, None, window.positions)
        return self._patterns[window.positions]

    def _rows(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """Host tensors (codebooks, n) padded into slot rows (windows, codebooks, positions)."""
        out = torch.full((len(parts), self.num_codebooks, self.cache.positions), self.pad, dtype=torch.long)
        for row, part in zip(out, parts):
            row[:, : part.shape[1]] = part
        return out

    def _set_conditioning(self, rows: torch.Tensor, windows: list[DecodeWindow]) -> None:
        """E_m and its mask, padded to the caches' text length; with guidance each slot's second
        row has no E_m at all (zero states, zero mask), as transformers expects."""
        hidden = np.zeros((len(windows), self.rows_per_slot, self.cache.text, windows[0].hidden.shape[1]), np.float32)
        mask = np.zeros(hidden.shape[:3], np.int64)
        for n, window in enumerate(windows):
            hidden[n, 0, : len(window.hidden)], mask[n, 0, : len(window.mask)] = window.hidden, window.mask
        self.cache.set_cross(rows, self._upload(torch.from_numpy(hidden).flatten(0, 1)),
                             self._upload(torch.from_numpy(mask).flatten(0, 1)))

    def _upload(self, host: torch.Tensor) -> torch.Tensor:
        """A host tensor on the device, copied without waiting for the queued steps."""
        if self.device.type != "cuda":
            return host.to(self.device)
        return host.pin_memory().to(self.device, non_blocking=True)

    @torch.inference_mode()
    def release(self, slot: int) -> None:
        """The slot's window is done: later steps leave the slot as it is."""
        self.active[slot] = False

    @torch.inference_mode()
    def idle(self) -> None:
        """Every slot released (the engine dropped its windows)."""
        if self.cache is not None:
            self.active.zero_()

    def codes(self, slots: list[int], positions: list[int]) -> list[np.ndarray]:
        """The slots' codes without the delay pattern's padding (as ``generate`` returns them),
        read in one copy: the one time the engine waits for the device."""
        tokens = self.tokens[torch.tensor(slots, device=self.device)].cpu().numpy()
        out = []
        for row, length in zip(tokens, positions):
            row = row[:, :length]
            out.append(row[row != self.pad].reshape(self.num_codebooks, -1))
        return out

    # -- a step -------------------------------------------------------------------------------

    def bucket(self, width: int, upto: int) -> tuple[int, int]:
        """The (slots, cache positions) a step over slots [0, width) reading ``upto`` positions
        runs at: a captured graph's shape, and the eager step's too, so the two agree."""
        slots = self.slots if self.full else min(self.slots, 1 << max(0, width - 1).bit_length())
        return slots, min(self.cache.positions, _round_up(upto))

    @torch.inference_mode()
    def run(self, width: int, upto: int) -> None:
        """One step over slots [0, width), whose caches hold at most ``upto`` positions: the
        graph of its bucket, or the step itself."""
        shape = self.bucket(width, upto)
        graph = self.graphs.get(shape)
        if graph is not None:
            graph.replay()
        else:
            self._step(*shape)

    def scores(self, width: int, upto: int) -> torch.Tensor:
        """Guided float32 scores (width, codebooks, vocab) of the next tokens of slots [0, width)
        (writing the keys and values of their last tokens into the caches, as a step does)."""
        codebooks, rps = self.num_codebooks, self.rows_per_slot
        position = self.position[:width]
        last = (position - 1).clamp(min=0)[:, None, None].expand(width, codebooks, 1)
        tokens = self.tokens[:width].gather(2, last).repeat_interleave(rps, 0)
        positions = (position - 1).clamp(min=0)[:, None].repeat_interleave(rps, 0)
        logits = self.cache.forward(slice(0, width * rps), tokens, positions, upto)
        return guide(logits.view(width, rps, codebooks, -1), self.sampling.guidance_scale)

    def _step(self, width: int, upto: int) -> None:
        """Device work of one step over slots [0, width): only tensors, no host reads, so that
        it can be captured; slots that are not active keep their tokens and positions. Logits,
        guidance and noise are float32 whatever the decoder's dtype."""
        codebooks, position = self.num_codebooks, self.position[:width]
        chosen = choose(self.scores(width, upto), self.stream[:width], position, self.sampling)
        at = position.clamp(max=self.tokens.shape[2] - 1)[:, None, None].expand(width, codebooks, 1)
        forced = self.pattern[:width].gather(2, at)[..., 0]
        chosen = torch.where(forced == -1, chosen, forced)
        active = self.active[:width]
        kept = self.tokens[:width].gather(2, at)[..., 0]
        self.tokens[:width].scatter_(2, at, torch.where(active[:, None], chosen, kept)[..., None])
        self.position[:width] += active.long()

    def shapes(self) -> list[tuple[int, int]]:
        """Every (slots, cache positions) bucket a step can run at, with the present caches."""
        widths = [self.slots] if self.full else sorted({min(1 << i, self.slots)
                                                        for i in range(self.slots.bit_length() + 1)})
        lengths = range(POSITION_STEP, self.cache.positions + 1, POSITION_STEP)
        return [(width, length) for width in widths for length in lengths]

    def _capture(self) -> None:
        """One CUDA graph per bucket, captured while idle (nothing is active, so warm-up and
        capture change no slot); a capture that fails leaves the runner eager, and says why."""
        shapes, pool = self.shapes(), None
        try:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for shape in shapes:
                    self._step(*shape)
            torch.cuda.current_stream(self.device).wait_stream(side)
            pool = torch.cuda.graph_pool_handle()
            for shape in reversed(shapes):  # the largest first: the pool fits the rest
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=pool):
                    self._step(*shape)
                self.graphs[shape] = graph
        except Exception as exc:  # noqa: BLE001 - eager decoding still works
            self.graphs = {}
            self.capture = Capture(eager=f"CUDA graph capture failed: {type(exc).__name__}: {exc}")
            warnings.warn(f"{self.capture.eager}; decoding eagerly", stacklevel=2)
            return
        self.capture = Capture(graphs=sorted(self.graphs), eager=None)


def _round_up(positions: int) -> int:
    return -(-positions // POSITION_STEP) * POSITION_STEP


def _span(values: list[int]) -> str:
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"
