"""A run's progress from the driver's own counts, and how much of its wall time was start-up.

Under a terminal Ray Data's progress bars show each stage; in a pipe or a log file this says,
every ``PROGRESS_EVERY_S`` seconds, how many segments pass 1 prepared and how many inputs
pass 2 finished. Start-up is Ray's start plus, for the first record of each
pass, the time it waited for the stages' actors (loading their models) beyond its own work.
"""

from __future__ import annotations

import threading
import time

from cotvtm.counted import counted

# Often enough that a pipe or a log file shows the run is alive, rare enough to read: a small
# job lasts about a minute, a library hours.
PROGRESS_EVERY_S = 10.0


class Ticker:
    """Counts a run's work as the driver sees it, and says it every ``every`` seconds."""

    def __init__(self, total: int, finished, echo, every: float | None = PROGRESS_EVERY_S, clock=time.monotonic):
        """``total``: the run's tracks to make; ``finished()``: how many of them are done (or failed);
        ``every`` None: count, but say nothing (under a terminal, Ray Data's bars show the progress)."""
        self.total, self.finished, self.echo, self.every, self.clock = total, finished, echo, every, clock
        self.began, self.segments, self.startup = clock(), 0, 0.0
        self._waiting: dict[int, float] = {}  # pass -> when it began, until its first record came
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ray_started(self, seconds: float) -> None:
        self.startup += seconds

    def pass_began(self, number: int) -> None:
        """Pass ``number`` (1 or 2) starts its stages: the first time only (the first wave)."""
        self._waiting.setdefault(number, self.clock())

    def saw(self, record, number: int) -> None:
        """A record came out of pass ``number`` (a segment prepared, unless it failed): the first
        one's wait beyond its own stages' seconds (``Record.seconds``) was its stages starting."""
        began = self._waiting.get(number)
        if began is not None:
            self._waiting[number] = None
            self.startup += max(0.0, self.clock() - began - sum(record.seconds.values()))
        if number == 1 and getattr(record, "error", None) is None:
            self.segments += 1

    def line(self) -> str:
        """The progress line, e.g. ``progress 41 s in: 7 segments prepared, 2/10 outputs finished``."""
        done = self.finished()
        waiting = any(began is not None for began in list(self._waiting.values())) and not self.segments and not done
        work = ("the stages are starting (their actors load the models)" if waiting else
                f"{counted(self.segments, 'segment')} prepared")
        return f"progress {self.clock() - self.began:.0f} s in: {work}, {done}/{self.total} outputs finished"

    def __enter__(self) -> "Ticker":
        if self.every is not None:
            self._thread = threading.Thread(target=self._tick, name="cotvtm-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            self.echo(self.line())

