"""A long decoder call says where it is: Stable Audio spends tens of seconds on one window at
real size, which a console would otherwise show as silence."""

from __future__ import annotations

import time
from functools import partial

# At most one line this often per call: enough to show a slow window moves, few enough that a
# fast one (the tiny models: well under a second) says nothing.
STEP_LINE_EVERY_S = 5.0


class StepLines:
    """Called after each sampler step; prints ``music    <what>, step 5/8 (12 s)`` at most every
    ``every`` seconds. The Music actor's lines reach the driver's console through Ray."""

    def __init__(self, what: str, steps: int, echo=partial(print, flush=True), every: float = STEP_LINE_EVERY_S,
                 clock=time.monotonic):
        self.what, self.steps, self.echo, self.every, self.clock = what, steps, echo, every, clock
        self.began = self.said = clock()

    def __call__(self, index: int, *_) -> None:
        """Step ``index`` (from 0) is done; as a diffusers pipeline's ``callback`` too."""
        now = self.clock()
        if now - self.said >= self.every:
            self.said = now
            self.echo(f"music    {self.what}, step {index + 1}/{self.steps} ({now - self.began:.0f} s)")
