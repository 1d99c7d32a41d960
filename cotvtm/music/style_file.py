"""Per-input styles (``--styles FILE``): which style text steers which input's music.

The file maps input keys (as the manifest names them: the path under the input folder or
prefix) to style texts, as CSV with a ``key,style`` header or as JSON Lines of
``{"key": ..., "style": ...}``; the format is told by the extension (``.csv``, ``.jsonl``). It
is read once on the driver, before anything else is done: a line that cannot be used stops the
run (exit 2) with the file and the line number. Each line is parsed on its own, so a quote that
never closes is an error on its line, not a style swallowing the lines after it. An input the
file does not name gets ``--style`` (or no style).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator

from cotvtm.errors import CotvtmError, printable
from cotvtm.jsonl import TextError, loads, read_bounded, text_lines
from cotvtm.music.style import style_fault

MAX_STYLES_BYTES = 32 << 20  # read whole on the driver: a style for each of 200,000 inputs at 160 bytes a line
MAX_LINE_CHARS = 8192  # a key (an input's path: at most 4096 bytes on Linux, 1024 on S3) and a style, JSON-escaped


def read_styles(uri: str, endpoint_url: str | None = None) -> dict[str, str]:
    """key -> style from a CSV or JSONL file, a local path or ``s3://`` URI; CotvtmError
    naming the file (and the line) for one that cannot be used."""
    name = printable(str(uri))
    kind = str(uri).lower().rpartition(".")[2]
    if kind not in ("csv", "jsonl"):
        raise CotvtmError(f"--styles {name}: name a .csv (key,style) or .jsonl ({{\"key\", \"style\"}}) file")
    try:
        lines = text_lines(read_bounded(uri, endpoint_url, MAX_STYLES_BYTES), MAX_LINE_CHARS)
        return _collect(_csv(lines) if kind == "csv" else _jsonl(lines))
    except TextError as exc:
        raise CotvtmError(f"--styles {name}: {exc}") from None


def _collect(pairs: Iterator[tuple[int, str, str]]) -> dict[str, str]:
    styles: dict[str, str] = {}
    for line, key, style in pairs:
        style = style.strip()
        fault = "the key and the style must both be given" if not key or not style else style_fault(style)
        if fault:
            raise TextError(fault, line)
        if key in styles:
            raise TextError(f"{printable(key)} has a style already, on an earlier line", line)
        styles[key] = style
    if not styles:
        raise TextError("no styles in the file")
    return styles


def _csv(lines: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str, str]]:
    for line, text in lines:
        row = _csv_row(line, text)
        if line == 1:
            if [cell.strip().lower() for cell in row] != ["key", "style"]:
                raise TextError("the header must be key,style", line)
        elif any(cell.strip() for cell in row):
            if len(row) != 2:
                raise TextError(f"{len(row)} fields, expected 2 (key,style; quote a style that holds a comma)", line)
            yield line, row[0].strip(), row[1]


def _csv_row(line: int, text: str) -> list[str]:
    """One line's fields; strict, so that a stray quote is an error rather than a guess."""
    if "\r" in text:  # csv would take it for the end of the line
        raise TextError("a carriage return inside the line (a style is one line)", line)
    try:
        return next(csv.reader([text], strict=True), [])
    except csv.Error as exc:
        if str(exc) == "unexpected end of data":
            raise TextError("a quote opens and never closes (a style is one line)", line) from None
        raise TextError(f"not CSV ({exc})", line) from None


def _jsonl(lines: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str, str]]:
    for line, raw in lines:
        if not raw.strip():
            continue
        item = loads(raw, line)
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("key", "style")):
            raise TextError("expected an object with string \"key\" and \"style\"", line)
        yield line, item["key"], item["style"]


def styles_digest(styles: dict[str, str]) -> str:
    """What the styles file adds to the settings' digest: its content, not its path."""
    return hashlib.sha256(json.dumps(styles, sort_keys=True).encode()).hexdigest()[:16]
