"""A retrieval bank: captions of scenes and the music descriptions a teacher wrote for them.

The retrieval prior (``retrieval.py``) finds, for each window, the captions nearest to its
frames and conditions the music on their descriptions, so music can follow the picture before
any prior is distilled. A bank is a JSON Lines file, one entry per line:
``{"id": ..., "caption": ..., "description": ..., "feeling": ...}`` (``feeling``, one word
for the feeling the caption states, is optional and left out where unknown); it holds texts
only, and the run's own CLIP and T5 turn them into vectors.

The package ships one (``SHIPPED``). Banks are written by the teacher side
(``teacher/bank.py``: from the paper's scene templates, or from a labels folder); the prior
only reads them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from cotvtm.errors import CotvtmError
from cotvtm.jsonl import TextError, loads, read_bounded, text_lines

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "scene_bank.jsonl"
MAX_BANK_BYTES = 64 << 20  # read whole on the driver and sent to every actor, whose CLIP embeds each caption:
# 100,000 entries of 600 bytes, some 200 times the shipped bank
MAX_BANK_LINE_CHARS = 16384  # captions are cut to 77 CLIP tokens and descriptions to 64 T5 tokens where used:
# an entry far longer than any use, even JSON-escaped


class BankError(CotvtmError):
    """A bank file that cannot be used, with the file and line to blame."""

    def __init__(self, path, reason: str):
        super().__init__(f"bank {path}: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class BankEntry:
    id: str
    caption: str  # what is seen: matched against a window's frames through CLIP's text tower
    description: str  # the music for it: its T5 states condition MusicGen
    feeling: str | None = None  # the feeling the caption states (one word, e.g. "tense"): the retrieval prior
    # scores the bank's feelings against a window's frames and retrieves within the one it sees


def read_bank(path: str | Path) -> list[BankEntry]:
    """The entries of the bank at ``path``; a clear error, naming the line, for a missing,
    empty, damaged or oversized one."""
    try:
        lines = text_lines(read_bounded(path, None, MAX_BANK_BYTES), MAX_BANK_LINE_CHARS)
        entries = [_entry(number, line) for number, line in lines if line.strip()]
    except TextError as exc:
        raise BankError(path, str(exc)) from None
    if not entries:
        raise BankError(path, "no entries (one JSON object per line: id, caption, description)")
    return entries


def _entry(number: int, line: str) -> BankEntry:
    data = loads(line, number)
    try:
        entry = BankEntry(str(data["id"]), data["caption"], data["description"], data.get("feeling"))
    except (KeyError, TypeError) as exc:
        raise TextError(f"not an entry with id, caption and description ({type(exc).__name__}: {exc})",
                        number) from None
    if not (isinstance(entry.caption, str) and entry.caption.strip() and isinstance(entry.description, str)
            and entry.description.strip()):
        raise TextError("caption and description must be non-empty texts", number)
    if entry.feeling is not None and not (isinstance(entry.feeling, str) and entry.feeling.strip()):
        raise TextError("feeling, where given, must be a non-empty text", number)
    return entry


def _fields(entry: BankEntry) -> dict:
    """The entry as written: a feeling that is not known is left out, not written as null."""
    return {k: v for k, v in asdict(entry).items() if v is not None}


def write_bank(entries: list[BankEntry], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(_fields(e), ensure_ascii=False) + "\n" for e in entries), encoding="utf-8")
    return path


def bank_digest(entries: list[BankEntry]) -> str:
    """A short hash of the texts: the same texts, the same bank, whatever the file is called."""
    text = json.dumps([_fields(e) for e in entries], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
