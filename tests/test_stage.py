"""The one stage shape (``cotvtm/stage.py``): what every Ray Data stage gets from it, checked on
its own (Ray Data calls a stage exactly like this: a batch of rows in, batches of rows out)."""

import asyncio
import inspect
from dataclasses import dataclass, replace

import pytest

from cotvtm.stage import Place, Record, Stage, add_stage, batch_of, records


@dataclass(frozen=True)
class Item(Record):
    key: str
    value: int = 0


class Double(Stage):
    """Doubles each value; a value of 13 breaks the call half-way."""

    name = "double"
    takes = Item

    @classmethod
    def placement(cls, settings) -> Place:
        return Place(batch=settings)

    def run(self, items):
        for item in items:
            if item.value == 13:
                raise ValueError("unlucky")
            yield replace(item, value=item.value * 2)


class Later(Stage):
    """The async kind: all the call's items at once, as they finish."""

    name = "later"

    async def run(self, items):
        for item in sorted(items, key=lambda i: -i.value):  # the largest first
            await asyncio.sleep(0)
            yield replace(item, value=item.value + 1)


class Whole(Stage):
    """The call's items in one list, as most stages yield them."""

    name = "whole"

    def run(self, items):
        yield [replace(item, value=-item.value) for item in items]


def _out(stage, items):
    call = stage(batch_of(items))
    if hasattr(call, "__anext__"):
        async def drain():
            return [batch async for batch in call]

        call = asyncio.run(drain())
    return [item for batch in call for item in records(batch)]


def test_records_leave_as_they_finish_with_their_time_and_failed_ones_pass_through():
    failed = Item("gone", 5).failed("decode", "unreadable")
    out = _out(Double(), [Item("a", 1), failed, Item("b", 2)])
    assert [(i.key, i.value, i.error) for i in out] == [("gone", 5, "unreadable"), ("a", 2, None), ("b", 4, None)]
    assert "double" not in out[0].seconds and all(i.seconds["double"] >= 0 for i in out[1:])
    assert _out(Whole(), [failed]) == [failed]  # the call's one list is empty


def test_an_exception_fails_the_unfinished_records_of_its_call_only():
    out = _out(Double(), [Item("a", 1), Item("b", 13), Item("c", 3)])
    assert [(i.key, i.value, i.error_stage) for i in out] == [("a", 2, None), ("b", 13, "double"), ("c", 3, "double")]
    assert out[1].error == "double stage failed: ValueError: unlucky"


def test_an_async_stage_takes_the_same_shape():
    # Ray Data picks how to call a stage from its __call__: streamed yields, or concurrent calls
    assert inspect.isasyncgenfunction(Later.__call__) and inspect.isgeneratorfunction(Double.__call__)
    out = _out(Later(), [Item("a", 1), Item("b", 5)])
    assert [(i.key, i.value) for i in out] == [("b", 6), ("a", 2)]


def test_only_a_stage_reaches_ray_data():
    with pytest.raises(TypeError, match="not a Stage"):
        add_stage(None, Item, 4)
    assert Double.placement(4) == Place(batch=4)


@dataclass(frozen=True)
class Other(Record):
    key: str


def test_a_record_of_another_kind_stops_the_pass_but_a_failed_one_passes():
    stray = Other("x").failed("decode", "unreadable")
    assert [i.key for i in _out(Double(), [Item("a", 1), stray])] == ["x", "a"]
    with pytest.raises(TypeError, match="the double stage takes Item records, not Other"):
        _out(Double(), [Item("a", 1), Other("y")])


def test_the_project_s_errors_cross_a_process_boundary_as_themselves():
    """An actor's set-up error reaches the driver whole: errors whose ``__init__`` takes a path and
    a reason must unpickle (or Ray reports only that the actor died)."""
    import pickle

    from cotvtm.errors import MediaError
    from cotvtm.prior.bank import BankError
    from cotvtm.storage.errors import ObjectNotFound

    for error in (MediaError("a.mp4", "no video stream"), ObjectNotFound("s3://b/key.pem", "no such key"),
                  BankError("bank.jsonl", "no entries")):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error) and copy.reason == error.reason
