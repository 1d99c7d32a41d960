"""The teacher at inference: a window's music conditioned on what the CoT teacher writes for it.

Where no prior exists yet, each window's caption (from the frames, by a captioner) goes through
the same chain-of-thought teacher that labels training data (``client.LLMTeacher``: its
retries, rate limits and repairs), and the T5 states of the music description it writes are
the window's E_m: what MusicGen makes of that text. Slower and paid per window, but every
answer is also a label: the sidecar keeps each window's caption, rationale and description.

Every request is bounded in time and size (``client``), and so is every window: a window with no
answer within ``window_bound_s`` (every turn and retry of its caption at its limit, times the
rounds its batch needs through the endpoint's concurrency) fails with that reason, and the
stage goes on with the others.
"""

from __future__ import annotations

import asyncio
import math

import numpy as np

from cotvtm.teacher.ingest import CaptionItem
from cotvtm.teacher.records import LabelRecord


class TeacherConditioner:
    """Captions -> the teacher's records -> E_m from the run's T5 (``encoders.music_text``)."""

    def __init__(self, endpoint, t5):
        """``endpoint``: a ``settings.EndpointConfig`` (this actor's share of its limits)."""
        self.endpoint, self.t5 = endpoint, t5

    def describe(self, ids: list[str], captions: list[str]) -> list[LabelRecord]:
        """The teacher's record for each caption, all requests in flight together; a record whose
        status is not ``ok`` says why (the teacher never raises for one caption's failure)."""
        return asyncio.run(self._ask([CaptionItem(i, c, caption_source="soundtrack") for i, c in zip(ids, captions)]))

    def window_bound_s(self, windows: int) -> float:
        """How long a window of a batch of ``windows`` may wait for its answer."""
        return self.endpoint.caption_bound_s() * math.ceil(windows / self.endpoint.teacher_concurrency)

    async def _ask(self, items: list[CaptionItem]) -> list[LabelRecord]:
        from cotvtm.teacher.client import LLMTeacher

        teacher = LLMTeacher(self.endpoint)
        bound = self.window_bound_s(len(items))
        try:
            return list(await asyncio.gather(*(self._bounded(teacher, item, bound) for item in items)))
        finally:
            await teacher.close()

    async def _bounded(self, teacher, item: CaptionItem, bound: float) -> LabelRecord:
        """The teacher's record for ``item``, or a failed one once ``bound`` seconds have passed."""
        try:
            return (await asyncio.wait_for(teacher.label(item), bound)).record
        except asyncio.TimeoutError:
            return LabelRecord(id=item.id, caption=item.caption, media=None, source="", teacher=teacher.teacher,
                               model=teacher.model, prompt_version=teacher.prompt_version, status="failed",
                               reason=f"no answer within {bound:g} s (the bound of a window: every request and "
                                      f"retry at its {self.endpoint.teacher_timeout:g} s limit)")

    def states(self, records: list[LabelRecord]) -> tuple[np.ndarray, np.ndarray]:
        """E_m (N, L, D) and mask (N, L): each description encoded alone, as the retrieval prior does."""
        states, masks = zip(*(self.t5.encode_alone(record.x_mt) for record in records))
        return np.stack(states), np.stack(masks)


def explanation(record: LabelRecord, model: str) -> list[dict]:
    """A window's sidecar entry: what was seen, why, the music described, by whom, and what it
    cost (requests and tokens, repairs and retries included)."""
    return [{"caption": record.caption, "rationale": record.x_rt, "description": record.x_mt, "teacher": model,
             "usage": record.usage, "chosen": True}]
