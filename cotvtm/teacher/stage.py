"""The labelling stage on Ray Data: one actor pool, offline or LLM.

Rows carry a caption item as a JSON string and come back as a record's JSON line plus the
number of HTTP requests it took, so that no Arrow schema has to be inferred from nested,
optional fields, and the driver can append the line as it is.

The LLM actor's ``__call__`` is a coroutine: Ray Data then runs it on one event loop per
actor and keeps several batches in flight, and inside a batch every caption is labelled
concurrently. The teacher's semaphore, not the batch size, bounds requests on the wire.
"""

import asyncio
import json
import math
from dataclasses import asdict

import numpy as np

from cotvtm.teacher.config import EndpointConfig
from cotvtm.teacher.ingest import CaptionItem

ASYNC_BATCHES_PER_TASK = 4  # Ray Data's default number of concurrent batches for an async UDF


def item_row(item: CaptionItem) -> dict:
    return {"item": json.dumps(asdict(item), ensure_ascii=False)}


def _items(batch) -> list[CaptionItem]:
    return [CaptionItem(**json.loads(text)) for text in batch["item"]]


def _out(lines: list[str], requests: list[int]) -> dict:
    column = np.empty(len(lines), dtype=object)
    column[:] = lines
    return {"record": column, "requests": np.asarray(requests, dtype=np.int64)}


class OfflineLabel:
    """The rule-based teacher: CPU only, microseconds per caption."""

    def __init__(self, cot: bool):
        from cotvtm.teacher.offline import OfflineTeacher

        self.teacher = OfflineTeacher(cot)

    def __call__(self, batch) -> dict:
        lines = [self.teacher.label(item).to_json() for item in _items(batch)]
        return _out(lines, [0] * len(lines))


class LLMLabel:
    """Many captions in flight per actor; each ends as a record, never as an exception.

    The API key is read here, from this node's environment: passed as an argument it would sit
    in the actor's creation spec, which Ray keeps and shows."""

    def __init__(self, endpoint: EndpointConfig, cot: bool):
        from cotvtm.teacher.client import LLMTeacher

        self.teacher = LLMTeacher(endpoint, cot)

    async def __call__(self, batch) -> dict:
        done = await asyncio.gather(*(self.teacher.label(item) for item in _items(batch)))
        return _out([d.record.to_json() for d in done], [d.usage.requests for d in done])


def plan(items: list[CaptionItem], endpoint: EndpointConfig | None, cot: bool, actors: int = 1,
         batch_size: int | None = None):
    """The Ray Data plan; nothing runs until its rows are consumed."""
    import ray.data

    from cotvtm.pipelines.stages import Place, add_stage

    rows = [item_row(item) for item in items]
    if endpoint is None:
        size = batch_size or 512
        blocks = max(1, math.ceil(len(rows) / size))
        ds = ray.data.from_items(rows, override_num_blocks=blocks)
        return add_stage(ds, OfflineLabel, Place(actors, 1.0), size, cot=cot)
    share = endpoint.share(actors)
    size = batch_size or max(8, 2 * share.concurrency)
    blocks = max(1, math.ceil(len(rows) / (size * ASYNC_BATCHES_PER_TASK)))
    ds = ray.data.from_items(rows, override_num_blocks=blocks)
    # two tasks per actor: the next block starts while the last one's slowest calls finish
    return add_stage(ds, LLMLabel, Place(actors, 0.25, calls=2), size, endpoint=share, cot=cot)
