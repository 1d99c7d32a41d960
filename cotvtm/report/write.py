"""Build ``report.html`` from an output store and publish it atomically beside the outputs."""

from __future__ import annotations

from cotvtm.report.collect import collect
from cotvtm.report.page import render
from cotvtm.report.totals import totals
from cotvtm.storage import Store

REPORT = "report.html"


def render_report(out: Store, summary_rows: list[dict] | None = None, title: str = "cotvtm soundtrack report",
                  wall_seconds: float | None = None) -> str:
    """The page as text. ``summary_rows`` are the finished run's rows (``asdict(Outcome)``):
    they mark what "this run" did; without them the newest run in the manifest is used.
    ``wall_seconds``, the run's wall time, turns throughput into what a user waited for."""
    collected = collect(out, summary_rows)
    return render(collected, totals(collected, wall_seconds), title, out.uri(), REPORT)


def write_report(out: Store, summary_rows: list[dict] | None = None, title: str = "cotvtm soundtrack report",
                 wall_seconds: float | None = None) -> str:
    """Write ``OUT/report.html`` (whole or not at all, through ``put_bytes``); return its URI.
    A folder that cannot take it (read-only, a folder in its place) is a StorageError."""
    out.put_bytes(REPORT, render_report(out, summary_rows, title, wall_seconds).encode("utf-8"))
    return out.uri(REPORT)
