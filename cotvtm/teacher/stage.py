"""The labelling job on Ray Data: captions first where missing, then one teacher, offline or LLM.

A row is one ``LabelTask``: the caption item, and once labelled the record's JSON line (which
the driver appends as it is) and the HTTP requests it took. Each stage hands on new tasks
(``dataclasses.replace``); a caption that could not be written fails its task, and the driver
writes a failed label for every failed task (``LabelTask.label_line``).

The LLM stage and the vision captioner are async: an actor runs two calls at once on its one
event loop, and inside a call every caption is labelled concurrently. The teacher's semaphore,
not the batch size, bounds requests on the wire.
"""

import asyncio
import math
from dataclasses import dataclass, replace
from pathlib import Path

from cotvtm.errors import CotvtmError
from cotvtm.stage import Place, Record, Stage, add_stage, dataset
from cotvtm.teacher.captioner import CaptionerConfig
from cotvtm.teacher.settings import BuildConfig, EndpointConfig
from cotvtm.teacher.ingest import CaptionItem
from cotvtm.teacher.offline import TEACHER as OFFLINE_TEACHER
from cotvtm.teacher.records import LabelRecord

ASYNC_BATCHES_PER_TASK = 4  # Ray Data's default number of concurrent batches for an async UDF


@dataclass(frozen=True)
class LabelTask(Record):
    """A caption on its way to a label."""

    item: CaptionItem
    line: str = ""  # the label record as a JSON line
    requests: int = 0

    def label_line(self, teacher: str, model: str, version: str) -> str:
        """The label's line; for a task a stage failed, a failed label saying why, with the tokens
        its caption took (an LLM teacher's labels count them; the offline rules count none)."""
        if self.error is None:
            return self.line
        item = self.item
        tokens = {} if teacher == OFFLINE_TEACHER else {"usage": {"prompt_tokens": item.usage[1],
                                                                  "completion_tokens": item.usage[2]}}
        return LabelRecord(id=item.id, caption=item.caption, media=item.media, source=item.source, teacher=teacher,
                           model=model, prompt_version=version, status="failed",
                           reason=f"{self.error_stage}: {self.error}", caption_source=item.caption_source,
                           **tokens).to_json()


def batch_size(cfg: BuildConfig) -> int:
    """Captions per call: many for the offline rules; for an endpoint, enough to keep its share
    of the concurrency busy."""
    if cfg.batch_size:
        return cfg.batch_size
    return 512 if cfg.endpoint is None else max(8, 2 * cfg.endpoint.share(cfg.actors).teacher_concurrency)


class OfflineLabel(Stage):
    """The rule-based teacher: CPU only, microseconds per caption."""

    name = "label"
    takes = LabelTask

    @classmethod
    def placement(cls, cfg: BuildConfig) -> Place:
        return Place(cfg.actors, 1.0, batch=batch_size(cfg))

    def __init__(self, cot: bool, prompt: str):
        from cotvtm.teacher.offline import OfflineTeacher

        self.teacher = OfflineTeacher(cot, prompt)

    def run(self, tasks: list[LabelTask]):
        yield [replace(task, line=self.teacher.label(task.item).to_json(), requests=task.item.usage[0])
               for task in tasks]


class LLMLabel(Stage):
    """Many captions in flight per actor; each ends as a record, never as an exception.

    The API key is read here, from this node's environment: passed as an argument it would sit
    in the actor's creation spec, which Ray keeps and shows."""

    name = "label"
    takes = LabelTask

    @classmethod
    def placement(cls, cfg: BuildConfig) -> Place:
        # two calls per actor: the next block starts while the last one's slowest calls finish
        return Place(cfg.actors, 0.25, batch=batch_size(cfg), calls=2)

    def __init__(self, endpoint: EndpointConfig, cot: bool, prompt: str):
        from cotvtm.teacher.client import LLMTeacher

        self.teacher = LLMTeacher(endpoint, cot, prompt=prompt)

    async def run(self, tasks: list[LabelTask]):
        done = await asyncio.gather(*(self.teacher.label(task.item) for task in tasks))
        yield [replace(task, line=labelled.record.to_json(), requests=labelled.usage.requests)
               for task, labelled in zip(tasks, done)]


class Caption(Stage):
    """Writes the missing captions of a batch (``teacher/captioner.py``): through a vision endpoint,
    many at once, or with a local BLIP, one after another. A caption that cannot be written
    fails its task (which keeps what the attempt cost); other tasks pass through untouched."""

    name = "caption"
    takes = LabelTask

    @classmethod
    def placement(cls, cfg: BuildConfig) -> Place:
        if cfg.captioner_endpoint() is not None:
            return Place(cfg.actors, 0.25, batch=batch_size(cfg), calls=2)
        return Place(1, 1.0, batch=8)

    def __init__(self, captioner: CaptionerConfig, vision: EndpointConfig | None, cache_dir: str | None):
        from cotvtm.teacher.captioner import LocalCaptioner, VisionCaptioner
        from cotvtm.teacher.client import LLMTeacher

        self.source = captioner.source
        self.vision = VisionCaptioner(LLMTeacher(vision)) if vision is not None else None
        self.local = None if vision is not None else LocalCaptioner(captioner.local, cache_dir and Path(cache_dir))

    async def run(self, tasks: list[LabelTask]):
        yield list(await asyncio.gather(*(self._one(task) for task in tasks)))

    async def _one(self, task: LabelTask) -> LabelTask:
        item = task.item
        if not item.needs_caption:
            return task
        from cotvtm.teacher.client import RequestFailed, Usage

        usage = Usage()
        try:
            if self.vision is not None:
                caption = await self.vision.caption(item, usage)
            else:
                caption = await asyncio.to_thread(self.local.caption, item)
        except (CotvtmError, RequestFailed) as exc:
            failed = replace(task, item=self._spent(item, usage), requests=usage.requests)
            return failed.failed(self.name, str(getattr(exc, "reason", exc)))
        return replace(task, item=replace(self._spent(item, usage), caption=caption))

    def _spent(self, item: CaptionItem, usage) -> CaptionItem:
        """``item`` as this captioner left it: who wrote its caption, and the requests and tokens
        that took."""
        return replace(item, caption_source=self.source,
                       usage=(usage.requests, usage.prompt_tokens, usage.completion_tokens))


def labelling(items: list[CaptionItem], cfg: BuildConfig):
    """The Ray Data plan; nothing runs until its rows are consumed. Items without a caption are
    captioned by a stage of their own first."""
    per_task = 1 if cfg.endpoint is None else ASYNC_BATCHES_PER_TASK
    ds = dataset([LabelTask(item) for item in items], blocks=math.ceil(len(items) / (batch_size(cfg) * per_task)))
    if any(item.needs_caption for item in items):
        vision = cfg.captioner_endpoint()
        ds = add_stage(ds, Caption, cfg, captioner=cfg.captioner, vision=vision and vision.share(cfg.actors),
                       cache_dir=cfg.cache_dir)
    if cfg.endpoint is None:
        return add_stage(ds, OfflineLabel, cfg, cot=cfg.cot, prompt=cfg.prompt)
    return add_stage(ds, LLMLabel, cfg, endpoint=cfg.endpoint.share(cfg.actors), cot=cfg.cot, prompt=cfg.prompt)
