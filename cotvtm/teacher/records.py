"""Labelled records on disk: sharded, append-only JSONL, resumable.

Layout: ``OUT/labels-<prompt_version>-<model-slug>/part-00000.jsonl``, ``part-00001.jsonl``, ...
One line per ``LabelRecord``. Files are never rewritten: each run claims new part numbers
(exclusive create) and rolls to the next part every ``shard_size`` records, so a crash
loses at most the line being written, and reruns only add. When an id appears more than
once (a failure later retried, say), the record in the highest part, latest line, wins.

Consumers read with ``read_labels(dir)``; the builder skips ``skip_ids`` of what is there.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cotvtm.errors import CotvtmError

TEACHERS = ("offline-rules", "openai")
STATUSES = ("ok", "failed")
_PART = re.compile(r"^part-(\d{5,})\.jsonl$")


@dataclass
class LabelRecord:
    """One caption and what the teacher made of it (or why it could not)."""

    id: str
    caption: str
    media: str | None  # image or video path, when the manifest had one
    source: str  # the manifest file or generator the caption came from
    teacher: str  # "offline-rules" | "openai"
    model: str
    prompt_version: str
    status: str  # "ok" | "failed"
    reason: str = ""  # empty when ok
    raw: str = ""  # the model's raw response text (the last one, after repairs)
    parsed: dict | None = None  # the validated answer (schema.CotAnswer / DirectAnswer as a dict)
    x_rt: str = ""  # rationale text (schema.x_rt)
    x_mt: str = ""  # music description (schema.x_mt)
    caption_source: str = "manifest"  # manifest | scene:<writer> | vision:<model> | local:<BLIP ref>
    answer_format: str = ""  # which answer format the teacher used: paper | cot-v1 | direct (schema.FORMATS)
    usage: dict = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0})

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict) -> "LabelRecord":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def model_slug(model: str) -> str:
    """A file-name-safe form of a model name: 'meta-llama/Llama-3.1-8B' -> 'meta-llama-llama-3.1-8b'."""
    slug = re.sub(r"[^a-z0-9._]+", "-", model.lower()).strip("-.")
    return slug or "model"


def labels_dir(out: str | Path, prompt_version: str, model: str) -> Path:
    return Path(out) / f"labels-{prompt_version}-{model_slug(model)}"


def shards(path: str | Path) -> list[Path]:
    """The part files under a labels directory, in write order."""
    path = Path(path)
    if not path.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in path.iterdir() if (m := _PART.match(p.name))]
    return [p for _, p in sorted(found)]


def _latest(path: str | Path) -> dict[str, LabelRecord]:
    latest: dict[str, LabelRecord] = {}
    for shard in shards(path):
        lines = shard.read_text(encoding="utf-8").split("\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = LabelRecord.from_dict(json.loads(line))
            except (json.JSONDecodeError, TypeError) as exc:
                if number == len(lines):
                    continue  # the last line has no newline: cut off by a crash mid-write
                raise CotvtmError(f"{shard} line {number}: not a label record ({exc})") from None
            latest.pop(record.id, None)
            latest[record.id] = record
    return latest


def read_labels(path: str | Path, status: str | None = "ok") -> Iterator[LabelRecord]:
    """Every id's latest record under a labels directory, filtered by status (None: all)."""
    if status is not None and status not in STATUSES:
        raise CotvtmError(f"status must be one of {', '.join(STATUSES)} or None, not {status!r}")
    for record in _latest(path).values():
        if status is None or record.status == status:
            yield record


def statuses(path: str | Path) -> dict[str, str]:
    """Each id's latest status ("ok" or "failed")."""
    return {ident: record.status for ident, record in _latest(path).items()}


def skip_ids(known: dict[str, str], retry_failed: bool = False) -> set[str]:
    """Of ids with a status, those a run must not send again: labelled ones, and failed ones
    unless retrying failures."""
    return {ident for ident, status in known.items() if status == "ok" or not retry_failed}


def done_ids(path: str | Path, retry_failed: bool = False) -> set[str]:
    """``skip_ids`` of the records under ``path``."""
    return skip_ids(statuses(path), retry_failed)


class ShardWriter:
    """Appends records to new part files, rolling every ``shard_size`` records."""

    def __init__(self, path: str | Path, shard_size: int = 1000):
        if shard_size < 1:
            raise CotvtmError("shard size must be at least 1")
        self.path, self.shard_size = Path(path), shard_size
        self.path.mkdir(parents=True, exist_ok=True)
        self._handle = None
        self._count = 0
        self.written = 0
        self.files: list[Path] = []

    def _open_next(self) -> None:
        self.close()
        existing = shards(self.path)
        number = int(_PART.match(existing[-1].name).group(1)) + 1 if existing else 0
        while True:  # exclusive create: two writers never share a part
            candidate = self.path / f"part-{number:05d}.jsonl"
            try:
                self._handle = open(candidate, "x", encoding="utf-8")
                break
            except FileExistsError:
                number += 1
        self.files.append(candidate)
        self._count = 0

    def write(self, line: str) -> None:
        """Append one record (its JSON line); flushed so finished work survives a crash."""
        self.write_many([line])

    def write_many(self, lines: list[str]) -> None:
        for line in lines:
            if self._handle is None or self._count >= self.shard_size:
                self._open_next()
            self._handle.write(line.rstrip("\n") + "\n")
            self._count += 1
            self.written += 1
        if self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
