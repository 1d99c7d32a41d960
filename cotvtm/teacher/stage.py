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
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from cotvtm.errors import CotvtmError
from cotvtm.teacher.captioner import CaptionerConfig
from cotvtm.teacher.config import BuildConfig, EndpointConfig
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

    def __init__(self, cot: bool, prompt: str):
        from cotvtm.teacher.offline import OfflineTeacher

        self.teacher = OfflineTeacher(cot, prompt)

    def __call__(self, batch) -> dict:
        items = _items(batch)
        lines = [self.teacher.label(item).to_json() for item in items]
        return _out(lines, [item.usage[0] for item in items])  # requests: its caption's, if any


class LLMLabel:
    """Many captions in flight per actor; each ends as a record, never as an exception.

    The API key is read here, from this node's environment: passed as an argument it would sit
    in the actor's creation spec, which Ray keeps and shows."""

    def __init__(self, endpoint: EndpointConfig, cot: bool, prompt: str):
        from cotvtm.teacher.client import LLMTeacher

        self.teacher = LLMTeacher(endpoint, cot, prompt=prompt)

    async def __call__(self, batch) -> dict:
        done = await asyncio.gather(*(self.teacher.label(item) for item in _items(batch)))
        return _out([d.record.to_json() for d in done], [d.usage.requests for d in done])


class Caption:
    """Writes the missing captions of a batch (``teacher/captioner.py``): through a vision endpoint,
    many at once, or with a local BLIP, one after another. A failure is kept on the item, whose
    label then fails with it; other items pass through untouched."""

    def __init__(self, captioner: CaptionerConfig, vision: EndpointConfig | None, cache_dir: str | None):
        from cotvtm.teacher.captioner import LocalCaptioner, VisionCaptioner
        from cotvtm.teacher.client import LLMTeacher

        self.source = captioner.source
        self.vision = VisionCaptioner(LLMTeacher(vision)) if vision is not None else None
        self.local = None if vision is not None else LocalCaptioner(captioner.local, cache_dir and Path(cache_dir))

    async def __call__(self, batch) -> dict:
        items = await asyncio.gather(*(self._one(item) for item in _items(batch)))
        column = np.empty(len(items), dtype=object)
        column[:] = [item_row(item)["item"] for item in items]
        return {"item": column}

    async def _one(self, item: CaptionItem) -> CaptionItem:
        if not item.needs_caption:
            return item
        from cotvtm.teacher.client import RequestFailed, Usage

        usage = Usage()
        try:
            if self.vision is not None:
                caption = await self.vision.caption(item, usage)
            else:
                caption = await asyncio.to_thread(self.local.caption, item)
        except (CotvtmError, RequestFailed) as exc:
            return replace(item, error=f"caption: {getattr(exc, 'reason', exc)}", caption_source=self.source,
                           usage=(usage.requests, usage.prompt_tokens, usage.completion_tokens))
        return replace(item, caption=caption, caption_source=self.source,
                       usage=(usage.requests, usage.prompt_tokens, usage.completion_tokens))


def plan(items: list[CaptionItem], cfg: BuildConfig):
    """The Ray Data plan; nothing runs until its rows are consumed. Items without a caption are
    captioned by a stage of their own first."""
    import ray.data

    from cotvtm.pipelines.stages import Place, add_stage

    rows = [item_row(item) for item in items]
    endpoint, actors, cot, prompt = cfg.endpoint, cfg.actors, cfg.cot, cfg.prompt
    size = cfg.batch_size or (512 if endpoint is None else max(8, 2 * endpoint.share(actors).concurrency))
    per_task = 1 if endpoint is None else ASYNC_BATCHES_PER_TASK
    ds = ray.data.from_items(rows, override_num_blocks=max(1, math.ceil(len(rows) / (size * per_task))))
    if any(item.needs_caption for item in items):
        vision = cfg.captioner_endpoint()
        place = Place(actors, 0.25, calls=2) if vision is not None else Place(1, 1.0)
        ds = add_stage(ds, Caption, place, 8 if vision is None else size, captioner=cfg.captioner,
                       vision=vision and vision.share(actors), cache_dir=cfg.cache_dir)
    if endpoint is None:
        return add_stage(ds, OfflineLabel, Place(actors, 1.0), size, cot=cot, prompt=prompt)
    # two tasks per actor: the next block starts while the last one's slowest calls finish
    return add_stage(ds, LLMLabel, Place(actors, 0.25, calls=2), size, endpoint=endpoint.share(actors), cot=cot,
                     prompt=prompt)
