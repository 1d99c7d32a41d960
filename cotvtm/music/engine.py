"""MusicGen decoding in slots: every busy slot advances one decoder step at a time.

A window is admitted into any free slot at any step (its prompt prefilled) and leaves when its
last token is sampled; ``step`` returns the finished ones so the caller can admit the next. This
module keeps the books: which window is in which slot and how far each has gone. Which windows
wait for a slot, and in what order they come in, is the scheduler's (``scheduler.py``); the
tensors and the step itself (CUDA graphs on a GPU) are the ``StepRunner``'s (``step_runner.py``).
Windows finish after a known number of steps (MusicGen has no end token), so the books know
which slots are busy, and how long their caches are, without reading anything from the device.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import torch

from cotvtm.music.step_runner import DecodeWindow, StepRunner
from cotvtm.music.sampling import SamplingConfig


class DecodeEngine:
    """Windows in ``slots`` slots, stepped together. ``full``: every step over all slots, so that
    a window's music does not depend on the others (``step_runner.py``)."""

    def __init__(self, model, slots: int, sampling: SamplingConfig, device: str | torch.device = "cpu",
                 graphs: bool | None = None, full: bool = True):
        self.slots = slots
        self.runner = StepRunner(model, slots, sampling, device, graphs, full)
        self.windows: list[DecodeWindow | None] = [None] * slots
        self.length = [0] * slots  # every busy slot moves one position per step
        self.limit = [0] * slots
        self.steps = 0  # decoder steps run (each advances every busy slot)
        self.slot_steps = 0  # useful slot-steps among them

    # -- capacity ---------------------------------------------------------------------------

    @property
    def busy(self) -> list[int]:
        return [s for s, w in enumerate(self.windows) if w is not None]

    @property
    def free(self) -> int:
        """Slots that no window holds."""
        return self.windows.count(None)

    @property
    def occupancy(self) -> float:
        """Useful slot-steps over capacity (slots x steps) so far."""
        return self.slot_steps / max(1, self.steps * self.slots)

    def room(self, windows: Sequence[DecodeWindow]) -> int:
        """How many of ``windows``, in order, can be admitted now: one per free slot, and a window
        longer than the caches only while the engine is idle (which grows them for all)."""
        idle, most, count = not self.busy, min(len(windows), self.free), 0
        while count < most and (idle or self.runner.fits(windows[count])):
            count += 1
        return count

    # -- windows in, one step, windows out --------------------------------------------------

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
        codes (codebooks, frames): the prompt's, then the new ones. Their slots are free again."""
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

    def clear(self) -> None:
        """Drop every admitted window (after a failed step); the caches stay."""
        self.windows = [None] * self.slots
        self.runner.idle()

    # -- what it says of itself -------------------------------------------------------------

    def describe(self) -> dict:
        """The sidecar's engine fields: slots, what a step runs over, its CUDA graphs or why none."""
        capture = self.runner.capture
        return {"slots": self.slots, "steps_over": "all slots" if self.runner.full else "the busy slots' bucket",
                "graphs": [list(shape) for shape in capture.graphs], "eager": capture.eager}

    def stepping(self) -> str:
        """How steps run, in words: the decoder's precision and its graphs (or why none)."""
        return f"{str(self.runner.dtype).removeprefix('torch.')}, {self.runner.capture.describe()}"
