"""JSONL manifests: one JSON object a line, and errors that name the file and the line; numbers
as found in JSON that someone else wrote. Also what every small line file read whole (a styles
file, a bank) shares: a size read within a limit, lines within a limit, JSON within a depth."""

import codecs
import json
import math
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from cotvtm.errors import CotvtmError

MAX_JSON_DEPTH = 32  # the rows read here are objects of texts, numbers and short lists (3 levels at most);
# json's recursive parser would overflow Python's stack near 1000, so depth is checked before parsing

_BRACKETS = re.compile(r'\\.|["\[\]{}]', re.DOTALL)  # an escape (skipped whole), a quote, a bracket


class TextError(ValueError):
    """Why a small text file or one of its lines cannot be used; the caller names the file."""

    def __init__(self, reason: str, line: int | None = None):
        super().__init__(reason if line is None else f"line {line}: {reason}")
        self.reason, self.line = reason, line


def json_objects(path: Path, where: Callable[[int], str]) -> Iterator[tuple[str, dict]]:
    """``(place, object)`` for every non-blank line; ``where(line number)`` names the place in
    messages (each caller keeps its own style, e.g. ``set.jsonl:3`` or ``set.jsonl line 3``)."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            place = where(number)
            try:
                row = loads(line)
            except TextError as exc:
                raise CotvtmError(f"{place}: {exc.reason}") from None
            if not isinstance(row, dict):
                raise CotvtmError(f"{place}: expected a JSON object, found {type(row).__name__}")
            yield place, row


def loads(text: str, line: int | None = None):
    """``text`` parsed as JSON; TextError (naming ``line``) for text that is not JSON or nests
    deeper than MAX_JSON_DEPTH, never RecursionError: the depth is scanned before parsing."""
    if deeper_than(text, MAX_JSON_DEPTH):
        raise TextError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", line)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TextError(f"not valid JSON ({exc.msg} at column {exc.colno})", line) from None
    except ValueError as exc:  # valid JSON Python will not hold, e.g. an integer of 5000 digits
        raise TextError(f"not usable JSON ({exc})", line) from None


def deeper_than(text: str, limit: int) -> bool:
    """Whether the arrays and objects of ``text`` nest deeper than ``limit``: brackets outside
    strings, counted in one pass with no recursion. Exact over any valid prefix of JSON, which
    is as far as a parser descends."""
    level, quoted = 0, False
    for found in _BRACKETS.finditer(text):
        char = found.group()
        if char == '"':
            quoted = not quoted
        elif quoted or len(char) == 2:
            continue
        elif char in "[{":
            level += 1
            if level > limit:
                return True
        else:
            level -= 1
    return False


def read_bounded(uri: str | Path, endpoint_url: str | None, max_bytes: int) -> bytes:
    """A small file's bytes, a local path or an ``s3://`` URI; TextError when it cannot be read
    or holds more than ``max_bytes`` (refused by its size, before its bytes are read)."""
    from cotvtm.storage import StorageError, is_s3_uri, open_store

    text = str(uri)
    try:
        if is_s3_uri(text):
            parent, _, name = text.rpartition("/")
            store = open_store(parent, endpoint_url)
            info = store.info(name)
            _within(info.size, max_bytes)
            return store.get_bytes(name, identity=info.identity)  # that object: not a larger one put since
        with open(os.open(text, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:  # a FIFO: no wait for a writer
            found = os.fstat(handle.fileno())
            if not stat.S_ISREG(found.st_mode):
                raise TextError("not a regular file")
            _within(found.st_size, max_bytes)
            data = handle.read(max_bytes + 1)
    except StorageError as exc:
        raise TextError(exc.reason) from None
    except OSError as exc:
        raise TextError(f"cannot be read ({exc.strerror or exc})") from None
    _within(len(data), max_bytes)  # grown since
    return data


def _within(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise TextError(f"{size} bytes or more, over the limit of {max_bytes} bytes")


def text_lines(data: bytes, max_line_chars: int) -> Iterator[tuple[int, str]]:
    """``(number, line)`` of UTF-8 ``data`` (a byte-order mark dropped), split at line feeds
    only: a JSON string may hold U+2028, which ``splitlines`` would split at. A carriage return
    ending a line is dropped. TextError for bytes that are not UTF-8 or a line over
    ``max_line_chars``, naming the line."""
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TextError("not UTF-8 text", data.count(b"\n", 0, exc.start) + 1) from None
    for number, line in enumerate(text.split("\n"), 1):
        if len(line) > max_line_chars:
            raise TextError(f"{len(line)} characters, over the limit of {max_line_chars} for a line", number)
        yield number, line.removesuffix("\r")


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
