"""What the page shows, read from the output store alone: the manifest and the sidecars.

The manifest is append-only, so an input's latest row is its current state; it is read as a
stream, holding one row per input. Sidecars are fetched only for inputs that have an output, in
parallel (a bucket answers slowly per object). A line that is not a row, or a sidecar that
cannot be read, is counted or shown as a problem: the page is made whatever the folder holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cotvtm.jsonl import seconds_of
from cotvtm.report.links import key_of, sibling
from cotvtm.storage import StorageError, Store

MANIFEST = "manifest.jsonl"
OUTCOME_FIELDS = ("key", "status", "reason", "output", "sidecar", "windows", "duration", "variant")
FETCH_THREADS = 16


@dataclass
class ReportEntry:
    """One input as the page shows it: its latest row, its sidecar and where its video is."""

    row: dict
    sidecar: dict | None = None
    video_key: str | None = None
    sidecar_key: str | None = None
    problem: str | None = None  # why an output cannot be shown although the row says it exists
    still_key: str | None = None  # an image's still-image video (``--image-video``), when it is there

    @property
    def key(self) -> str:
        return self.row["key"]

    @property
    def variant(self) -> int:
        """Which of the input's ``--variants`` tracks (1 when the row does not say)."""
        value = self.row.get("variant")
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 1 else 1

    @property
    def id(self) -> str:
        return row_id(self.row)

    @property
    def status(self) -> str:
        return str(self.row.get("status", "unknown"))

    @property
    def duration(self) -> float:
        """Seconds of video; skipped rows carry none, so the sidecar's probe fills in."""
        value = seconds_of(self.row.get("duration"))
        if not value:
            value = seconds_of(self.video.get("duration"))
        return value or 0.0

    @property
    def video(self) -> dict:
        """What the sidecar says of the input video ({} when it says nothing usable)."""
        video = (self.sidecar or {}).get("video")
        return video if isinstance(video, dict) else {}


def row_id(row: dict) -> str:
    """A row's track: its input key, with its variant when it is not the first (``--variants``),
    so that the variants of an input sort together, the first first."""
    variant = row.get("variant")
    if isinstance(variant, int) and not isinstance(variant, bool) and variant > 1:
        return f"{row['key']}\x00{variant:04d}"
    return row["key"]


@dataclass
class Collected:
    entries: list[ReportEntry]  # sorted by input key, then variant
    run_keys: set[str]  # tracks (``row_id``) the latest run touched
    bad_lines: int  # manifest lines that are not JSON rows (a cut-off last line, a damaged file)
    first_bad: int | None = None  # the number of the first of them (1 = the first line)


def collect(out: Store, summary_rows: list[dict] | None = None) -> Collected:
    """Latest row per input, sidecars loaded, video keys checked against one listing."""
    rows, bad, first_bad = latest_rows(out.read_lines(MANIFEST))
    run_keys = _merge(rows, summary_rows) if summary_rows is not None else _last_run(rows)
    existing = {info.key for info in out.list()}
    entries = [ReportEntry(rows[key]) for key in sorted(rows)]
    with ThreadPoolExecutor(FETCH_THREADS) as pool:
        list(pool.map(lambda entry: _attach(out, entry, existing), entries))
    return Collected(entries, run_keys, bad, first_bad)


def latest_rows(lines: Iterable[str]) -> tuple[dict[str, dict], int, int | None]:
    """track (``row_id``) -> its last row, how many lines could not be read as rows, and the number of the
    first of them. Lines are taken one at a time; blank ones are passed over. Rows of entries
    the job ignored (``status: ignored``, not inputs) are left out."""
    rows, bad, first_bad = {}, 0, None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        row = _row(line)
        if row is None:
            bad += 1
            first_bad = first_bad or number
        elif row.get("status") != "ignored":
            rows[row_id(row)] = row
    return rows, bad, first_bad


def _row(line: str) -> dict | None:
    """A manifest row: a UTF-8 JSON object with a text key; None for anything else."""
    try:
        line.encode("utf-8")
        row = json.loads(line)
    except (ValueError, RecursionError):  # not UTF-8 (surrogate-escaped bytes), not JSON, nested too deep
        return None
    return row if isinstance(row, dict) and isinstance(row.get("key"), str) else None


def _merge(rows: dict[str, dict], summary_rows: list[dict]) -> set[str]:
    """The run's own rows win unless the manifest already holds the same row (with its time)."""
    for row in summary_rows:
        current = rows.get(row_id(row), {})
        if any(current.get(f) != row.get(f) for f in OUTCOME_FIELDS if f in row):
            rows[row_id(row)] = dict(row)
    return {row_id(row) for row in summary_rows}


def _last_run(rows: dict[str, dict]) -> set[str]:
    """Without the run's rows, the latest run is the run_id of the newest row."""
    newest = max(rows.values(), key=lambda row: str(row.get("time", "")), default={})
    run_id = newest.get("run_id")
    return {key for key, row in rows.items() if run_id and row.get("run_id") == run_id}


def _attach(out: Store, entry: ReportEntry, existing: set[str]) -> None:
    """Fill in the sidecar and the video key of an input that has an output."""
    if entry.status not in ("ok", "skipped"):
        return
    root = out.uri()
    entry.sidecar_key = key_of(root, _text(entry.row.get("sidecar")))
    if entry.sidecar_key not in existing:
        entry.problem = "the sidecar is missing from the output"
        return
    try:
        data = out.get_bytes(entry.sidecar_key)
    except (StorageError, OSError, RuntimeError) as exc:  # gone, unreadable, a symlink loop
        entry.problem = f"the sidecar cannot be read: {exc}"
        return
    try:
        sidecar = json.loads(data)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep
        entry.problem = "the sidecar is not JSON"
        return
    if not isinstance(sidecar, dict):
        entry.problem = "the sidecar is not a JSON object"
        return
    entry.sidecar = sidecar
    entry.video_key = key_of(root, _text(entry.row.get("output"))) or _from_sidecar(entry)
    if entry.video_key not in existing:
        entry.problem, entry.video_key = "the output video is missing", None
    still = _from_sidecar(entry, "still_video")
    entry.still_key = still if still in existing else None


def _from_sidecar(entry: ReportEntry, field: str = "output") -> str | None:
    """The key of the output the sidecar names in ``field``, beside the sidecar."""
    name = entry.sidecar.get(field)
    return sibling(entry.sidecar_key, name) if isinstance(name, str) and name else None


def _text(value) -> str:
    return value if isinstance(value, str) else ""
