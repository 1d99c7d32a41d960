"""Which windows of music the decoder makes next, and whom their music goes back to.

The scheduler knows nothing of videos, storage or Ray. It feeds ``Feedable`` streams: each is a
track (or a stretch of one) that hands out its next windows as ``MusicRequest``s and takes
their music back in order; composing (``Composer.request``, ``join``, ``take``) and saving are
the stream's. Two ways to feed:

- ``feed`` (continuous): one ``EngineBackend``, fed by the streams of every caller in flight.
  When a stream's windows finish it is asked for its next at once, and free slots go to the
  streams with the most windows left, so that a long track does not end the run alone and
  new callers' streams fill the slots that the others leave while they drain.
- ``lockstep`` (batched): every stream's next windows rendered together, step after step; a
  step waits for its slowest window. Any backend's ``render`` does.

With the engine, windows wait here for a slot, in one queue, and go in as slots free
(``render``, ``decode``, and ``feed`` alike): the engine itself only admits, steps and releases.
A stream's own failure (its ``requests`` or ``finished`` raising) fails that stream only, and so
does an engine that breaks while the stream has windows in it; the other streams go on.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from cotvtm.music.decoder import MusicRequest, WindowMusic


class Feedable(Protocol):
    """A stream of windows, as the scheduler sees it."""

    @property
    def remaining(self) -> int:
        """Windows left to make: the streams with the most go first."""

    def requests(self) -> list[MusicRequest]:
        """The next window(s) to make, in order; [] once the stream is done (finished or failed)."""

    def finished(self, music: list[WindowMusic]) -> None:
        """The music of the requests last handed out, in their order."""

    def fail(self, reason: str) -> None:
        """The stream's windows could not be made; it is done."""


@dataclass(eq=False)
class _Fed:
    """A stream in ``feed``: its caller's wait, and the music of its windows in the engine."""

    stream: Feedable
    done: asyncio.Future
    music: list[WindowMusic | None] = field(default_factory=list)


class Scheduler:
    """Feeds streams' windows to ``backend``; with the engine decoder, through the one queue of
    windows waiting for its slots."""

    def __init__(self, backend):
        self.backend = backend
        self.engine = getattr(backend, "engine", None)
        self._queue: deque = deque()  # the engine's windows (``DecodeWindow``) waiting for a slot, in order
        self._ready: list[_Fed] = []  # streams with no window in the engine
        self._flight: dict[int, tuple[_Fed, int, MusicRequest]] = {}  # by tag: the stream, the window's position,
        # its request
        self._tags = itertools.count()
        self._driver: asyncio.Task | None = None

    # -- the engine's queue -----------------------------------------------------------------

    def render(self, requests: list[MusicRequest]) -> list[WindowMusic]:
        """The music of ``requests``, in order: with the engine, their windows through the queue
        (``decode``); another decoder renders them itself."""
        if self.engine is None:
            return self.backend.render(requests)
        tags = [next(self._tags) for _ in requests]
        codes = self.decode([self.backend.window(tag, request) for tag, request in zip(tags, requests)])
        return self.backend.music(requests, [codes[tag] for tag in tags])

    def decode(self, windows: Iterable) -> dict[Hashable, np.ndarray]:
        """Every ``DecodeWindow`` through the queue and the engine; codes by window id. A failure
        empties queue and engine, so that the next call starts from an empty engine."""
        self._queue.extend(windows)
        codes: dict[Hashable, np.ndarray] = {}
        try:
            while self._queue or self.engine.busy:
                codes.update(self._step())
        except Exception:
            self._empty()
            raise
        return codes

    def _step(self) -> list[tuple[Hashable, np.ndarray]]:
        """Queued windows into the free slots, in order, then one engine step: the windows that
        finished, with their codes. A window longer than the caches waits until the engine is idle."""
        count = self.engine.room(list(itertools.islice(self._queue, self.engine.free)))
        if count:
            self.engine.admit(*(self._queue.popleft() for _ in range(count)))
        return self.engine.step()

    def _empty(self) -> None:
        """Drop every window, queued or in a slot; the engine's caches stay."""
        self.engine.clear()
        self._queue.clear()

    # -- continuous -------------------------------------------------------------------------

    async def feed(self, streams: Iterable[Feedable]) -> None:
        """Make every window of ``streams`` on the engine, beside the streams of the other calls
        in flight on this event loop; returns when these streams are done."""
        if self.engine is None:
            raise ValueError("continuous feeding needs the engine backend")
        loop = asyncio.get_running_loop()
        fed = [_Fed(stream, loop.create_future()) for stream in streams]
        self._ready += fed
        if self._driver is None or self._driver.done():
            self._driver = loop.create_task(self._drive())
        await asyncio.gather(*(one.done for one in fed))

    async def _drive(self) -> None:
        """Step the engine while any stream has work, yielding to the loop between steps so that
        new calls' streams join the running engine."""
        before, started = _counters(self.engine), time.perf_counter()
        try:
            while self._ready or self._flight:
                self._send()
                self._receive()
                await asyncio.sleep(0)
        except Exception as exc:  # the scheduler's own fault: no caller is left waiting for ever
            self._abandon(exc)
        report(self.engine, before, started)

    def _send(self) -> None:
        """Queue the next windows of the streams with none in the engine while slots are free,
        the streams with the most windows left first."""
        free = self.engine.free - len(self._queue)
        self._ready.sort(key=lambda one: -one.stream.remaining)
        waiting = []
        for one in self._ready:
            if free <= 0:
                waiting.append(one)
                continue
            requests = _requests(one.stream)
            if not requests:
                _settle(one.done)
                continue
            one.music = [None] * len(requests)
            for position, request in enumerate(requests):
                tag = next(self._tags)
                self._flight[tag] = one, position, request
                self._queue.append(self.backend.window(tag, request))
            free -= len(requests)
        self._ready = waiting

    def _receive(self) -> None:
        """One engine step; a stream whose windows have all finished gets their music and is
        ready for its next."""
        try:
            finished = self._step()
            made = self.backend.music([self._flight[tag][2] for tag, _ in finished], [codes for _, codes in finished])
        except Exception as exc:  # the engine broke: its windows' streams fail, the rest go on
            self._lost(exc)
            return
        for (tag, _), music in zip(finished, made):
            one, position, _ = self._flight.pop(tag)
            one.music[position] = music
            if all(window is not None for window in one.music):
                music, one.music = one.music, []
                if _finished(one.stream, music):
                    self._ready.append(one)
                else:
                    _settle(one.done)

    def _lost(self, exc: Exception) -> None:
        self._empty()
        for one in {id(one): one for one, _, _ in self._flight.values()}.values():
            one.stream.fail(_reason(exc))
            _settle(one.done)
        self._flight = {}

    def _abandon(self, exc: Exception) -> None:
        """Every caller's wait ends with ``exc``; the engine is left empty for the next calls."""
        self._empty()
        for one in [*self._ready, *(one for one, _, _ in self._flight.values())]:
            if not one.done.done():
                one.done.set_exception(exc)
        self._ready, self._flight = [], {}

    # -- lockstep ---------------------------------------------------------------------------

    def lockstep(self, streams: Iterable[Feedable]) -> None:
        """Make every window of ``streams``, step by step: a step renders every stream's next
        windows together and hands each stream its music."""
        before, started = _counters(self.engine), time.perf_counter()
        live = list(streams)
        while live:
            asked = [(stream, _requests(stream)) for stream in live]
            live = self._step_together([(stream, requests) for stream, requests in asked if requests])
        if self.engine is not None:
            report(self.engine, before, started)

    def _step_together(self, asked: list[tuple[Feedable, list[MusicRequest]]]) -> list[Feedable]:
        """Render the step's requests; the streams that go on. A render that fails loses the
        step's windows, and so fails all its streams."""
        try:
            music = self.render([request for _, requests in asked for request in requests])
        except Exception as exc:
            for stream, _ in asked:
                stream.fail(_reason(exc))
            return []
        going, start = [], 0
        for stream, requests in asked:
            if _finished(stream, music[start: start + len(requests)]):
                going.append(stream)
            start += len(requests)
        return going


def report(engine, before: tuple[int, int], started: float) -> None:
    """The engine's line since ``before`` (steps, slot-steps) and ``started``: what the
    occupancy and GPU benches sum."""
    steps, useful = engine.steps - before[0], engine.slot_steps - before[1]
    if steps:
        print(f"music    engine: {steps} steps, {useful} slot-steps of {steps * engine.slots} "
              f"({100 * useful / (steps * engine.slots):.1f} % occupancy) in {time.perf_counter() - started:.2f} s; "
              f"{engine.stepping()}", flush=True)


def _counters(engine) -> tuple[int, int]:
    return (engine.steps, engine.slot_steps) if engine is not None else (0, 0)


def _requests(stream: Feedable) -> list[MusicRequest]:
    """The stream's next requests; a stream that cannot say fails alone."""
    try:
        return stream.requests()
    except Exception as exc:
        stream.fail(_reason(exc))
        return []


def _finished(stream: Feedable, music: list[WindowMusic]) -> bool:
    """Hand the stream its music; False when it could not take it (and so failed)."""
    try:
        stream.finished(music)
    except Exception as exc:
        stream.fail(_reason(exc))
        return False
    return True


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _settle(done: asyncio.Future) -> None:
    if not done.done():  # a cancelled caller's future is already done
        done.set_result(None)
