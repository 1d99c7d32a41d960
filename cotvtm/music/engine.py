"""MusicGen decoding in slots: every busy slot advances one decoder step at a time.

A window is admitted into any free slot at any step (its prompt prefilled) and leaves when its
last token is sampled; ``step`` returns the finished ones so the caller can admit the next. This
module keeps the books: which window is in which slot, how far each has gone, which wait for a
slot. The tensors and the step itself (CUDA graphs on a GPU) are the ``StepRunner``'s
(``step_runner.py``). Windows finish after a known number of steps (MusicGen has no end token),
so the books know which slots are busy, and how long their caches are, without reading anything
from the device.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable

import numpy as np
import torch

from cotvtm.music.step_runner import DecodeWindow, StepRunner
from cotvtm.music.sampling import SamplingConfig


class DecodeEngine:
    """Windows in ``slots`` slots, stepped together; the window queue behind them. ``full``:
    every step over all slots, so that a window's music does not depend on the others
    (``step_runner.py``)."""

    def __init__(self, model, slots: int, sampling: SamplingConfig, device: str | torch.device = "cpu",
                 graphs: bool | None = None, full: bool = True):
        self.slots = slots
        self.runner = StepRunner(model, slots, sampling, device, graphs, full)
        self.windows: list[DecodeWindow | None] = [None] * slots
        self.length = [0] * slots  # every busy slot moves one position per step
        self.limit = [0] * slots
        self.waiting: deque[DecodeWindow] = deque()  # submitted, not yet admitted
        self.steps = 0  # decoder steps run (each advances every busy slot)
        self.slot_steps = 0  # useful slot-steps among them

    # -- capacity ---------------------------------------------------------------------------

    @property
    def busy(self) -> list[int]:
        return [s for s, w in enumerate(self.windows) if w is not None]

    @property
    def free(self) -> int:
        """Slots that no window holds or waits for: how many more windows to queue now."""
        return self.slots - len(self.busy) - len(self.waiting)

    @property
    def pending(self) -> bool:
        return bool(self.waiting or self.busy)

    @property
    def occupancy(self) -> float:
        """Useful slot-steps over capacity (slots x steps) so far."""
        return self.slot_steps / max(1, self.steps * self.slots)

    # -- windows in, one step ---------------------------------------------------------------

    def admit(self, *windows: DecodeWindow) -> list[int]:
        """Put ``windows`` into the lowest free slots and prefill their prompts together (one
        at a time with ``full``); returns their slots."""
        if not all(self.runner.fits(window) for window in windows):
            if self.busy:
                raise RuntimeError("the engine must be idle to grow its caches for a longer window")
            self.runner.grow(*windows)  # once, for the longest
        free = [s for s, w in enumerate(self.windows) if w is None][: len(windows)]
        if len(free) < len(windows):
            raise RuntimeError(f"{len(windows)} windows for {len(free)} free slots")
        groups = [[n] for n in range(len(windows))] if self.runner.full else [list(range(len(windows)))]
        for group in groups:
            lengths = self.runner.load([free[n] for n in group], [windows[n] for n in group])
            for n, length in zip(group, lengths):
                slot = free[n]
                self.length[slot], self.windows[slot], self.limit[slot] = length, windows[n], windows[n].positions
        return free

    def step(self) -> list[tuple[Hashable, np.ndarray]]:
        """One decoder step for every busy slot; returns the windows that finished, with their
        codes (codebooks, frames): the prompt's, then the new ones."""
        busy = self.busy
        if not busy:
            return []
        self.runner.run(busy[-1] + 1, max(self.length[s] for s in busy))
        self.steps += 1
        self.slot_steps += len(busy)
        ended = []
        for slot in busy:
            self.length[slot] += 1
            if self.length[slot] == self.limit[slot]:
                ended.append(slot)
        if not ended:
            return []
        codes = self.runner.codes(ended, [self.limit[slot] for slot in ended])
        finished = [(self.windows[slot].id, found) for slot, found in zip(ended, codes)]
        for slot in ended:
            self.windows[slot] = None
            self.runner.release(slot)
        return finished

    # -- a stream of windows ----------------------------------------------------------------

    def submit(self, window: DecodeWindow) -> None:
        """Queue a window: it is admitted as soon as a slot is free."""
        self.waiting.append(window)

    def clear(self) -> None:
        """Drop every window, admitted or queued (after a failed step); the caches stay."""
        self.windows = [None] * self.slots
        self.waiting.clear()
        self.runner.idle()

    def advance(self) -> list[tuple[Hashable, np.ndarray]]:
        """Admit waiting windows into free slots, then one step; the windows that finished.
        A window longer than the caches waits until the engine is idle, which grows them."""
        free, admitted, idle = self.windows.count(None), [], not self.busy
        while self.waiting and len(admitted) < free and (idle or self.runner.fits(self.waiting[0])):
            admitted.append(self.waiting.popleft())  # an idle engine grows its caches for all of them
        if admitted:
            self.admit(*admitted)
        return self.step()

    def run(self, windows: Iterable[DecodeWindow]) -> dict[Hashable, np.ndarray]:
        """Decode every window, admitting the next whenever a slot frees; codes by window id.
        A failure drops them all, so the next run starts from an empty engine."""
        done = {}
        for window in windows:
            self.submit(window)
        try:
            while self.pending:
                done.update(self.advance())
        except Exception:
            self.clear()
            raise
        return done
