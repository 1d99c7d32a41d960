"""One shape for the Ray Data stages, and one way to add a stage to a dataset.

A stage is a class: it loads what it needs once per actor in ``__init__`` and turns a batch of
rows into rows in ``__call__``. Its ``name`` is what errors and timings are recorded under, its
``role`` says which resources its actors take (``Resources.place``). ``add_stage`` is the one
place that calls ``map_batches``: every pipeline (the soundtrack passes, the training-set
embedding, the teacher) adds its stages through it, with the non-secret settings the actors
need (``worker_runtime_env``).
"""

from __future__ import annotations

import time

from cotvtm.config import Place
from cotvtm.pipelines.rows import batch_of, records

__all__ = ["Place", "Stage", "add_stage"]


def add_stage(ds, stage: type, place: Place, batch_size: int, **kwargs):
    """``stage`` as a pool of ``place.actors`` actors over ``ds``; ``kwargs`` go to its constructor."""
    from ray.data import ActorPoolStrategy

    from cotvtm.raycluster import worker_runtime_env

    compute = (ActorPoolStrategy(size=place.actors, max_concurrent_calls_per_actor=place.calls)
               if place.calls > 1 else ActorPoolStrategy(size=place.actors))
    return ds.map_batches(stage, fn_constructor_kwargs=kwargs, batch_size=batch_size, compute=compute,
                          num_cpus=place.cpus, num_gpus=place.gpus, runtime_env=worker_runtime_env())


class Stage:
    """A stage over records (``Segment``s or ``VideoJob``s: anything with ``error``, ``fail`` and
    ``seconds``): failed records pass through untouched, the batch is timed, and an exception
    fails the batch's records, never the run."""

    name = "stage"
    role = "model"

    def __call__(self, batch) -> dict:
        items = records(batch)
        live = [item for item in items if item.error is None]
        if live:
            started = time.perf_counter()
            try:
                self.process(live)
            except Exception as exc:  # one broken batch fails its videos, not the run
                self.fail_unfinished(live, exc)
            self.timed(live, started)
        return batch_of(items)

    def timed(self, items: list, started: float) -> None:
        """Each record's share of the batch's wall time since ``started``."""
        for item in items:
            item.seconds[self.name] = (time.perf_counter() - started) / len(items)

    def process(self, items: list) -> None:
        raise NotImplementedError

    def fail_unfinished(self, items: list, exc: Exception) -> None:
        """A broken batch fails its records that had not failed yet."""
        for item in items:
            if item.error is None:
                item.fail(self.name, f"{self.name} stage failed: {type(exc).__name__}: {exc}")
