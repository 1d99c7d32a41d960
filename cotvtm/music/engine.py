"""MusicGen decoding in slots: every busy slot advances one decoder step at a time.

A window is admitted into any free slot at any step (its prompt prefilled in one forward) and
leaves when its last token is sampled; ``step`` returns the finished ones so the caller can
admit the next. This module keeps the books: which window is in which slot, how far each has
gone, which wait for a slot. The tensors and the step itself (CUDA graphs on a GPU) are the
``StepRunner``'s (``runner.py``). Windows finish after a known number of steps (MusicGen has no
end token), so the books know which slots are busy without reading anything from the device.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable

import numpy as np
import torch

from cotvtm.music.step_runner import DecodeWindow, StepRunner
from cotvtm.music.sampling import SamplingConfig


class DecodeEngine:
    """Windows in ``slots`` slots, stepped together; the window queue behind them."""

    def __init__(self, model, slots: int, sampling: SamplingConfig, device: str | torch.device = "cpu",
                 graphs: bool | None = None):
        self.slots = slots
        self.runner = StepRunner(model, slots, sampling, device, graphs)
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

    # -- one window, one step ---------------------------------------------------------------

    def admit(self, window: DecodeWindow) -> int:
        """Put ``window`` into the lowest free slot and prefill its prompt; returns the slot."""
        if not self.runner.fits(window):
            if self.busy:
                raise RuntimeError("the engine must be idle to grow its caches for a longer window")
            self.runner.grow(window)
        slot = self.windows.index(None)
        self.length[slot] = self.runner.load(slot, window)
        self.windows[slot], self.limit[slot] = window, window.positions
        return slot

    def step(self) -> list[tuple[Hashable, np.ndarray]]:
        """One decoder step for every busy slot; returns the windows that finished, with their
        codes (codebooks, frames): the prompt's, then the new ones."""
        busy = self.busy
        if not busy:
            return []
        self.runner.run(busy[-1] + 1, max(self.length[s] for s in busy))
        self.steps += 1
        self.slot_steps += len(busy)
        finished = []
        for slot in busy:
            self.length[slot] += 1
            if self.length[slot] == self.limit[slot]:
                finished.append((self.windows[slot].id, self.runner.codes(slot, self.limit[slot])))
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
        while self.waiting and None in self.windows and (self.runner.fits(self.waiting[0]) or not self.busy):
            self.admit(self.waiting.popleft())
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
