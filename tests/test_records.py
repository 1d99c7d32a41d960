"""Records are made once: a stage hands on new records (what it learned, or its failure) and
leaves those it was given as they were; a failure travels one way, on ``Record.error``."""

import asyncio
import importlib
import pickle
import pkgutil
from dataclasses import FrozenInstanceError

import pytest

import cotvtm
from cotvtm.errors import CotvtmError
from cotvtm.pipelines.job import Outcome, Segment
from cotvtm.stage import Record
from cotvtm.teacher import captioner, offline
from cotvtm.teacher.ingest import CaptionItem
from cotvtm.teacher.records import LabelRecord
from cotvtm.teacher.stage import Caption, LabelTask, OfflineLabel


class Unreadable:
    """A local captioner that cannot read any media."""

    def __init__(self, ref, cache_dir):
        pass

    def caption(self, item: CaptionItem) -> str:
        raise CotvtmError(f"{item.media}: file not found")


def _first(calls):
    async def first():
        return await anext(calls)

    return asyncio.run(first())


def test_stages_leave_their_input_and_a_caption_that_fails_fails_its_task(monkeypatch):
    monkeypatch.setattr(captioner, "LocalCaptioner", Unreadable)
    tasks = [LabelTask(CaptionItem("a", "A kite over a field.")), LabelTask(CaptionItem("b", "", media="/gone.png"))]
    given = pickle.dumps(tasks)
    captioned = _first(Caption(captioner.CaptionerConfig(local="tiny"), None, None).run(tasks))
    labelled = next(OfflineLabel(True, offline.PROMPT_VERSION).run(captioned[:1]))
    assert pickle.dumps(tasks) == given and captioned[0] is tasks[0] and labelled[0] is not tasks[0]
    failed = captioned[1]
    assert (failed.error_stage, failed.error, failed.item.caption_source) == ("caption", "/gone.png: file not found",
                                                                              "local:tiny")
    assert failed.label_line(offline.TEACHER, offline.MODEL, "v") == LabelRecord(
        "b", "", "/gone.png", "", offline.TEACHER, offline.MODEL, "v", "failed",
        reason="caption: /gone.png: file not found", caption_source="local:tiny").to_json()
    assert '"status": "ok"' in labelled[0].line


def test_a_failed_record_is_a_new_record_and_makes_its_error_row():
    segment = Segment("a.mp4", 0, 1, frames=b"pixels", seconds={"decode": 1.0})
    failed = segment.failed("embed", "\x1b[31mbroken\x1b[0m")
    assert segment.error is None and segment.frames == b"pixels" and failed.frames is None
    failed.seconds["embed"] = 2.0
    assert segment.seconds == {"decode": 1.0}
    assert Outcome.of_failed(failed, variant=2).row() == {
        "key": "a.mp4", "status": "error", "reason": "embed: broken", "output": "", "sidecar": "", "windows": 0,
        "duration": 0.0, "variant": 2}


def _kinds(kind: type):
    for sub in kind.__subclasses__():
        yield sub
        yield from _kinds(sub)


def _frozen(kind: type) -> bool:
    """A frozen dataclass of its own (a plain subclass would only inherit its parent's flag)."""
    params = kind.__dict__.get("__dataclass_params__")
    return params is not None and params.frozen


def test_every_record_of_the_package_is_frozen():
    for module in pkgutil.walk_packages(cotvtm.__path__, "cotvtm."):
        importlib.import_module(module.name)
    kinds = [kind for kind in _kinds(Record) if kind.__module__.startswith("cotvtm.")]
    assert {"Segment", "Composed", "Outcome", "LabelTask", "Example"} <= {kind.__name__ for kind in kinds}
    assert [kind.__name__ for kind in kinds if not _frozen(kind)] == []
    with pytest.raises(FrozenInstanceError):
        Segment("a.mp4", 0, 1).error = "changed"
