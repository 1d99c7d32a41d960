"""JSONL manifests: one JSON object a line, and errors that name the file and the line; numbers
as found in JSON that someone else wrote."""

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

from cotvtm.errors import CotvtmError


def json_objects(path: Path, where: Callable[[int], str]) -> Iterator[tuple[str, dict]]:
    """``(place, object)`` for every non-blank line; ``where(line number)`` names the place in
    messages (each caller keeps its own style, e.g. ``set.jsonl:3`` or ``set.jsonl line 3``)."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            place = where(number)
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CotvtmError(f"{place}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(row, dict):
                raise CotvtmError(f"{place}: expected a JSON object, found {type(row).__name__}")
            yield place, row


def finite(value) -> float | None:
    """A JSON number that is finite; None for text, true/false, null, NaN, 1e309 or 10**400."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def seconds_of(value) -> float | None:
    """A time or a duration: a finite number that is not negative."""
    value = finite(value)
    return value if value is not None and value >= 0 else None
