"""What the page shows, read from the output store alone: the manifest and the sidecars.

The manifest is append-only, so an input's latest row is its current state. Sidecars are
fetched only for inputs that have an output, in parallel (a bucket answers slowly per object).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cotvtm.report.links import key_of, sibling
from cotvtm.storage import StorageError, Store

MANIFEST = "manifest.jsonl"
OUTCOME_FIELDS = ("key", "status", "reason", "output", "sidecar", "windows", "duration")
FETCH_THREADS = 16


@dataclass
class Entry:
    """One input as the page shows it: its latest row, its sidecar and where its video is."""

    row: dict
    sidecar: dict | None = None
    video_key: str | None = None
    sidecar_key: str | None = None
    problem: str | None = None  # why an output cannot be shown although the row says it exists

    @property
    def key(self) -> str:
        return self.row["key"]

    @property
    def status(self) -> str:
        return str(self.row.get("status", "unknown"))

    @property
    def duration(self) -> float:
        """Seconds of video; skipped rows carry none, so the sidecar's probe fills in."""
        value = _number(self.row.get("duration"))
        if not value and self.sidecar:
            value = _number((self.sidecar.get("video") or {}).get("duration"))
        return value


@dataclass
class Collected:
    entries: list[Entry]  # sorted by key
    run_keys: set[str]  # inputs the latest run touched
    bad_lines: int  # manifest lines that are not JSON rows (a cut-off last line)


def collect(out: Store, summary_rows: list[dict] | None = None) -> Collected:
    """Latest row per input, sidecars loaded, video keys checked against one listing."""
    rows, bad = latest_rows(out.read_lines(MANIFEST))
    run_keys = _merge(rows, summary_rows) if summary_rows is not None else _last_run(rows)
    existing = {info.key for info in out.list()}
    entries = [Entry(rows[key]) for key in sorted(rows)]
    with ThreadPoolExecutor(FETCH_THREADS) as pool:
        list(pool.map(lambda entry: _attach(out, entry, existing), entries))
    return Collected(entries, run_keys, bad)


def latest_rows(lines: list[str]) -> tuple[dict[str, dict], int]:
    """key -> its last row, and how many lines could not be read as rows. Rows of entries the
    job ignored (``status: ignored``, not inputs) are left out."""
    rows, bad = {}, 0
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(row, dict) and isinstance(row.get("key"), str):
            if row.get("status") != "ignored":
                rows[row["key"]] = row
        else:
            bad += 1
    return rows, bad


def _merge(rows: dict[str, dict], summary_rows: list[dict]) -> set[str]:
    """The run's own rows win unless the manifest already holds the same row (with its time)."""
    for row in summary_rows:
        current = rows.get(row["key"], {})
        if any(current.get(f) != row.get(f) for f in OUTCOME_FIELDS if f in row):
            rows[row["key"]] = dict(row)
    return {row["key"] for row in summary_rows}


def _last_run(rows: dict[str, dict]) -> set[str]:
    """Without the run's rows, the latest run is the run_id of the newest row."""
    newest = max(rows.values(), key=lambda row: str(row.get("time", "")), default={})
    run_id = newest.get("run_id")
    return {key for key, row in rows.items() if run_id and row.get("run_id") == run_id}


def _attach(out: Store, entry: Entry, existing: set[str]) -> None:
    """Fill in the sidecar and the video key of an input that has an output."""
    if entry.status not in ("ok", "skipped"):
        return
    root = out.uri()
    entry.sidecar_key = key_of(root, str(entry.row.get("sidecar", "")))
    if entry.sidecar_key not in existing:
        entry.problem = "the sidecar is missing from the output"
        return
    try:
        sidecar = json.loads(out.get_bytes(entry.sidecar_key))
    except (StorageError, ValueError) as exc:
        entry.problem = f"the sidecar cannot be read: {exc}"
        return
    if not isinstance(sidecar, dict):
        entry.problem = "the sidecar is not a JSON object"
        return
    entry.sidecar = sidecar
    entry.video_key = key_of(root, str(entry.row.get("output", ""))) or _from_sidecar(entry)
    if entry.video_key not in existing:
        entry.problem, entry.video_key = "the output video is missing", None


def _from_sidecar(entry: Entry) -> str | None:
    name = entry.sidecar.get("output")
    return sibling(entry.sidecar_key, name) if isinstance(name, str) and name else None


def _number(value) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0
