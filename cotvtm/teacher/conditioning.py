"""The teacher at inference: a window's music conditioned on what the CoT teacher writes for it.

Where no prior exists yet, each window's caption (from the frames, by a captioner) goes through
the same chain-of-thought teacher that labels training data (``client.LLMTeacher``: its
retries, rate limits and repairs), and the T5 states of the music description it writes are
the window's E_m: what MusicGen makes of that text. Slower and paid per window, but every
answer is also a label: the sidecar keeps each window's caption, rationale and description.
"""

from __future__ import annotations

import asyncio

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

    async def _ask(self, items: list[CaptionItem]) -> list[LabelRecord]:
        from cotvtm.teacher.client import LLMTeacher

        teacher = LLMTeacher(self.endpoint)
        try:
            return [done.record for done in await asyncio.gather(*(teacher.label(item) for item in items))]
        finally:
            await teacher.close()

    def states(self, records: list[LabelRecord]) -> tuple[np.ndarray, np.ndarray]:
        """E_m (N, L, D) and mask (N, L): each description encoded alone, as the retrieval prior does."""
        states, masks = zip(*(self.t5.encode_alone(record.x_mt) for record in records))
        return np.stack(states), np.stack(masks)


def explanation(record: LabelRecord, model: str) -> list[dict]:
    """A window's sidecar entry: what was seen, why, the music described, by whom, and what it
    cost (requests and tokens, repairs and retries included)."""
    return [{"caption": record.caption, "rationale": record.x_rt, "description": record.x_mt, "teacher": model,
             "usage": record.usage, "chosen": True}]
