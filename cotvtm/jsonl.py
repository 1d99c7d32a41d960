"""JSONL manifests: one JSON object a line, and errors that name the file and the line."""

import json
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
