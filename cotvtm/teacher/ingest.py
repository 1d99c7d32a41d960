"""Caption manifests (JSONL, CSV, Parquet) -> caption items for the teacher.

A manifest row has an ``id``, a ``caption`` and optionally a media path in an ``image``,
``video`` or ``media`` column (the first non-empty one is kept). Relative media paths are
resolved against the manifest's folder; URIs (``s3://...``) are kept as written. A row with
media may leave its caption empty (or have no caption column): it is captioned first
(``teacher/captioner.py``), its optional ``emotion`` column (an EmoSet-style label) given to
the captioner as a hint. Bad input raises ``CotvtmError`` naming the file and the line (or
row) and the column at fault.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

from cotvtm.errors import CotvtmError
from cotvtm.jsonl import json_objects

MEDIA_COLUMNS = ("image", "video", "media")
OPTIONAL_COLUMNS = (*MEDIA_COLUMNS, "caption", "emotion")
FORMATS = (".jsonl", ".csv", ".parquet")


@dataclass(frozen=True)
class CaptionItem:
    """A caption waiting for a label. ``scene`` is set (and ``caption`` empty) for a generated
    scene whose visual description an LLM still has to write; ``caption`` is empty too for
    media still to be captioned (``needs_caption``). A caption that could not be written fails
    the item's ``LabelTask`` (``teacher/stage.py``), as every failure does."""

    id: str
    caption: str
    media: str | None = None
    source: str = ""
    scene: str = ""
    emotion: str = ""  # an emotion label of the media (EmoSet style): the captioner's hint
    caption_source: str = "manifest"  # manifest | scene:<writer> | vision:<model> | local:<BLIP ref>
    usage: tuple[int, int, int] = (0, 0, 0)  # requests, prompt and completion tokens spent on the caption

    @property
    def needs_caption(self) -> bool:
        return not self.caption and not self.scene and self.media is not None


def _media(row: dict, base: Path) -> str | None:
    for column in MEDIA_COLUMNS:
        value = row.get(column)
        if value is None or (isinstance(value, float) and value != value):  # None or NaN
            continue
        value = str(value).strip()
        if value:
            if "://" in value or Path(value).is_absolute():
                return value
            return str((base / value).resolve())
    return None


def _text(row: dict, column: str, where: str) -> str:
    """An optional text column: '' when absent, null or NaN."""
    value = row.get(column)
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if not isinstance(value, str):
        raise CotvtmError(f"{where}: column '{column}' must be text, not {type(value).__name__}")
    return value.strip()


def _item(row: dict, where: str, path: Path) -> CaptionItem:
    if "id" not in row or row["id"] is None:
        raise CotvtmError(f"{where}: missing 'id'")
    ident = row["id"]
    if isinstance(ident, bool) or not isinstance(ident, (str, int)):
        raise CotvtmError(f"{where}: column 'id' must be a string or an integer, not {type(ident).__name__}")
    ident = str(ident).strip()
    if not ident:
        raise CotvtmError(f"{where}: empty 'id'")
    caption, media = _text(row, "caption", where), _media(row, path.parent)
    if not caption and media is None:
        raise CotvtmError(f"{where}: no 'caption', and no image or video to caption")
    return CaptionItem(ident, caption, media, source=path.name, emotion=_text(row, "emotion", where))


def _jsonl(path: Path) -> list[CaptionItem]:
    return [_item(row, where, path) for where, row in json_objects(path, lambda number: f"{path} line {number}")]


def _csv(path: Path) -> list[CaptionItem]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        _require_columns(path, header)
        items = []
        for row in reader:
            where = f"{path} line {reader.line_num}"
            if None in row:
                raise CotvtmError(f"{where}: more fields than the header has ({len(header)})")
            items.append(_item(row, where, path))
    return items


def _parquet(path: Path) -> list[CaptionItem]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CotvtmError(f"{path}: not a readable Parquet file ({exc})") from None
    _require_columns(path, table.column_names)
    columns = [c for c in ("id", *OPTIONAL_COLUMNS) if c in table.column_names]
    rows = table.select(columns).to_pylist()
    return [_item(row, f"{path} row {index}", path) for index, row in enumerate(rows)]


def _require_columns(path: Path, header: list[str]) -> None:
    """An id, and a caption or media to caption."""
    missing = [c for c in ("id",) if c not in header]
    if not {"caption", *MEDIA_COLUMNS} & set(header):
        missing.append("caption")
    if missing:
        found = ", ".join(header) if header else "none"
        raise CotvtmError(f"{path}: missing column {', '.join(repr(c) for c in missing)} (found: {found})")


def read_caption_manifest(path: str | Path) -> list[CaptionItem]:
    """The caption items of one manifest, in file order."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise CotvtmError(f"{path}: unsupported manifest type '{suffix or path.name}' (use .jsonl, .csv or .parquet)")
    if not path.is_file():
        raise CotvtmError(f"{path}: manifest not found")
    try:
        reader = {".jsonl": _jsonl, ".csv": _csv, ".parquet": _parquet}[suffix]
        return reader(path)
    except UnicodeDecodeError as exc:
        raise CotvtmError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def read_caption_manifests(paths: list[str | Path]) -> list[CaptionItem]:
    """All items of several manifests; an id may appear only once across them."""
    items, seen = [], {}
    for path in paths:
        for item in read_caption_manifest(path):
            if item.id in seen:
                raise CotvtmError(f"duplicate caption id {item.id!r} (in {seen[item.id]} and {path})")
            seen[item.id] = str(path)
            items.append(item)
    return items
