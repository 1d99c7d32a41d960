"""Per-input styles (``--styles FILE``): which style text steers which input's music.

The file maps input keys (as the manifest names them: the path under the input folder or
prefix) to style texts, as CSV with a ``key,style`` header or as JSON Lines of
``{"key": ..., "style": ...}``; the format is told by the extension (``.csv``, ``.jsonl``). It
is read once on the driver, before anything else is done: a line that cannot be used stops the
run (exit 2) with the file and the line number. An input the file does not name gets ``--style``
(or no style).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json

from cotvtm.errors import CotvtmError, printable

MAX_STYLE_CHARS = 1000  # a style is a short description, not a document


def read_styles(uri: str, endpoint_url: str | None = None) -> dict[str, str]:
    """key -> style from a CSV or JSONL file, a local path or ``s3://`` URI."""
    from cotvtm.storage import StorageError, read_file

    name = printable(str(uri))
    kind = str(uri).lower().rpartition(".")[2]
    if kind not in ("csv", "jsonl"):
        raise CotvtmError(f"--styles {name}: name a .csv (key,style) or .jsonl ({{\"key\", \"style\"}}) file")
    try:
        text = read_file(uri, endpoint_url).decode("utf-8-sig")
    except StorageError as exc:
        raise CotvtmError(f"--styles {name}: {exc.reason}") from None
    except UnicodeDecodeError:
        raise CotvtmError(f"--styles {name}: not UTF-8 text") from None
    pairs = _csv(text, name) if kind == "csv" else _jsonl(text, name)
    styles: dict[str, str] = {}
    for line, key, style in pairs:
        where = f"--styles {name}, line {line}"
        if not key or not style.strip():
            raise CotvtmError(f"{where}: the key and the style must both be given")
        if len(style) > MAX_STYLE_CHARS:
            raise CotvtmError(f"{where}: the style is longer than {MAX_STYLE_CHARS} characters")
        if key in styles:
            raise CotvtmError(f"{where}: {printable(key)} has a style already, on an earlier line")
        styles[key] = style.strip()
    if not styles:
        raise CotvtmError(f"--styles {name}: no styles in the file")
    return styles


def _csv(text: str, name: str):
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if [cell.strip().lower() for cell in header or []] != ["key", "style"]:
        raise CotvtmError(f"--styles {name}, line 1: the header must be key,style")
    for row in rows:
        line = rows.line_num
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise CotvtmError(f"--styles {name}, line {line}: {len(row)} fields, expected 2 (key,style; quote a "
                              "style that holds a comma)")
        yield line, row[0].strip(), row[1]


def _jsonl(text: str, name: str):
    for line, raw in enumerate(text.split("\n"), 1):  # not splitlines: U+2028 may sit inside a JSON string
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except ValueError as exc:
            raise CotvtmError(f"--styles {name}, line {line}: not JSON ({exc.msg})") from None
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("key", "style")):
            raise CotvtmError(f"--styles {name}, line {line}: expected an object with string \"key\" and \"style\"")
        yield line, item["key"], item["style"]


def styles_digest(styles: dict[str, str]) -> str:
    """What the styles file adds to the settings' digest: its content, not its path."""
    return hashlib.sha256(json.dumps(styles, sort_keys=True).encode()).hexdigest()[:16]
