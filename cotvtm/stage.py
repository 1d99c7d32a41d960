"""The one shape of a Ray Data stage, used by every job (soundtrack, labelling, embedding).

A stage is a class. Its actors load what they need once, in ``__init__``; the class declares
where it runs (``placement``: how many actors, the CPU and GPU share of each, how many calls
each runs at once) and its ``name``, under which its errors and timings are recorded.

Rows carry one record each (a dataclass deriving from ``Record``), pickled into one binary
column: nested, optional fields need no Arrow schema, and a record arrives as the object
that left the stage before. A stage implements ``run(records)``, yielding each record (or a
list of records that finished together) as soon as it is done: a new record with its stage's
fields filled in (``dataclasses.replace``), or its successor. Records are frozen: a stage never
changes one it was given, so what left a stage is what the next one gets. A record fails one
way: ``failed`` makes a copy with ``error`` and ``error_stage`` set. The shape owns the rest:
records that failed earlier pass through untouched, an exception fails the call's unfinished
records (never the run), and each record is charged the wall time it waited for.

``run`` may be a generator or an async generator. Ray Data streams a generator's yields one
by one, but gathers all of an async generator's yields of one call before it sends them on;
so a stage whose one input makes many large records (``Decode``: a video's segments of
frames) is a generator, and a stage that waits on many things at once (the decode engine
fed by many videos, an LLM endpoint) is async and gets one record per call, with several
calls in flight per actor (``Place.calls``).

``add_stage`` is the only place that hands a stage to Ray Data.
"""

from __future__ import annotations

import inspect
import pickle
import time
from dataclasses import dataclass, field, replace

import numpy as np

COLUMN = "record"


@dataclass(frozen=True)
class Place:
    """Where a stage's actors run: how many, what each reserves, the records per call, and how
    many calls each actor runs at once (async stages only)."""

    actors: int = 1
    cpus: float = 1.0
    gpus: float = 0.0
    batch: int = 1
    calls: int = 1


@dataclass(frozen=True, kw_only=True)
class Record:
    """What every row carries besides its own fields: whether and where it failed, and the
    seconds each stage spent on it. A failed record passes the later stages untouched.
    Frozen, as every record deriving from it (``@dataclass(frozen=True)``)."""

    error: str | None = None
    error_stage: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    # its place among the records its stage's call was given; a successor made by ``replace``
    # keeps it, so that a call that breaks fails only the records it has not sent on
    given: int | None = field(default=None, compare=False, repr=False)

    def failed(self, stage: str, reason: str):
        """A copy of the record failed at ``stage`` for ``reason``; the record stays as it was."""
        return replace(self, error=reason, error_stage=stage, seconds=dict(self.seconds))

    def timed(self, stage: str, seconds: float):
        """A copy of the record charged ``seconds`` for ``stage``; the record stays as it was."""
        return replace(self, seconds={**self.seconds, stage: seconds})


def records(batch) -> list:
    """The records of a batch of rows."""
    return [pickle.loads(blob) for blob in batch[COLUMN]]


def batch_of(items: list) -> dict:
    """Rows of the records: one binary column that Arrow stores without a schema to infer."""
    column = np.empty(len(items), dtype=object)
    column[:] = [pickle.dumps(item, protocol=5) for item in items]
    return {COLUMN: column}


def use_threads(count: float) -> None:
    """Torch on a CPU must use only the cores this actor reserved (oversubscription is ~80x slower)."""
    import torch

    torch.set_num_threads(max(1, int(count)))


class Stage:
    """The base of every stage; see the module's docstring."""

    name = "stage"
    takes: type | tuple[type, ...] = Record  # the records it is given: another kind is a wiring error

    @classmethod
    def placement(cls, settings) -> Place:
        """The stage's actors, from the job's settings."""
        raise NotImplementedError

    def run(self, items: list):
        """Yield each record (or a list finishing together) of ``items`` when it is done."""
        raise NotImplementedError

    def __init_subclass__(cls, **kwargs):
        """Ray Data picks its way of calling a stage from ``__call__``'s kind: give each stage
        the driver that matches its ``run``."""
        super().__init_subclass__(**kwargs)
        if "run" in cls.__dict__:
            cls.__call__ = Stage._call_async if inspect.isasyncgenfunction(cls.run) else Stage._call

    def _live(self, items: list) -> list:
        """The records still to work on (a failed one of any kind passes on); a record of another
        kind than the stage takes stops the pass (the stages are wired wrong): it never fails as
        if its input were bad."""
        live = [item for item in items if item.error is None]
        strangers = {type(item).__name__ for item in live if not isinstance(item, self.takes)}
        if strangers:
            raise TypeError(f"the {self.name} stage takes {_names(self.takes)} records, not {', '.join(strangers)}")
        return [replace(item, given=place) for place, item in enumerate(live)]

    def _call(self, batch):
        items = records(batch)
        clock = _Clock(self.name)
        yield from clock.passed(items)
        live = self._live(items)
        try:
            for done in self.run(live):
                yield clock.left(done)
        except Exception as exc:  # one broken call fails its records, not the run
            yield clock.failed(live, exc)

    async def _call_async(self, batch):
        items = records(batch)
        clock = _Clock(self.name)
        for rows in clock.passed(items):
            yield rows
        live = self._live(items)
        try:
            async for done in self.run(live):
                yield clock.left(done)
        except Exception as exc:  # one broken call fails its records, not the run
            yield clock.failed(live, exc)


def _names(kinds) -> str:
    return " or ".join(kind.__name__ for kind in (kinds if isinstance(kinds, tuple) else (kinds,)))


class _Clock:
    """What a call has sent on, and the seconds since the last record left."""

    def __init__(self, name: str):
        self.name, self.sent, self.since = name, set(), time.perf_counter()

    def passed(self, items: list):
        failed = [item for item in items if item.error is not None]
        return [batch_of(failed)] if failed else []

    def left(self, done) -> dict:
        done = done if isinstance(done, list) else [done]
        now = time.perf_counter()
        self.sent.update(item.given for item in done)
        share = (now - self.since) / max(1, len(done))  # a call may finish none (all failed before)
        self.since = now
        # each is charged its share of the wait, unless the stage timed it
        return batch_of([item if self.name in item.seconds else item.timed(self.name, share) for item in done])

    def failed(self, live: list, exc: Exception) -> dict:
        reason = f"{self.name} stage failed: {type(exc).__name__}: {exc}"
        left = [item for item in live if item.given not in self.sent]
        return self.left([item.failed(self.name, reason) if item.error is None else item for item in left])


def dataset(items: list, blocks: int | None = None, stream: bool = False):
    """A Ray dataset of ``items`` (records), in ``blocks`` blocks (default one per record).

    ``stream``: every record a stage sends on is a block of its own, so that it moves to the
    next stage at once (Ray Data otherwise gathers a task's outputs up to 128 MiB, which
    would hold many segments of one video in one worker).
    """
    import ray.data

    ds = ray.data.from_items([{COLUMN: pickle.dumps(item, protocol=5)} for item in items],
                             override_num_blocks=max(1, blocks or len(items)))
    if stream:
        ds.context.target_max_block_size = 1
    return ds


def to_columns(ds, names: tuple[str, ...]):
    """The records' fields ``names`` as columns, for a writer that needs them (Parquet); a
    record that failed is left out."""

    def row(raw: dict) -> list[dict]:
        item = pickle.loads(raw[COLUMN])
        return [] if item.error is not None else [{name: getattr(item, name) for name in names}]

    return ds.flat_map(row)


def add_stage(ds, stage: type, settings, **kwargs):
    """``stage`` over ``ds`` as a pool of actors placed as it declares; ``kwargs`` go to its
    constructor, with the non-secret settings the actors need (``worker_runtime_env``)."""
    from ray.data import ActorPoolStrategy

    from cotvtm.raycluster import worker_runtime_env

    if not (isinstance(stage, type) and issubclass(stage, Stage)):
        raise TypeError(f"{stage!r} is not a Stage: every Ray Data stage takes the one shape of cotvtm.stage")
    place = stage.placement(settings)
    compute = (ActorPoolStrategy(size=place.actors, max_concurrent_calls_per_actor=place.calls)
               if place.calls > 1 else ActorPoolStrategy(size=place.actors))
    return ds.map_batches(stage, fn_constructor_kwargs=kwargs, batch_size=place.batch, compute=compute,
                          num_cpus=place.cpus, num_gpus=place.gpus, runtime_env=worker_runtime_env())
