"""A static HTML page that shows what a soundtrack run produced: ``OUT/report.html``.

Built from the output store alone (manifest + sidecars), so it can be rebuilt at any time,
and it opens from the local folder or from a bucket served over HTTP (links are relative).
"""

from cotvtm.report.write import REPORT, render_report, write_report

__all__ = ["REPORT", "render_report", "write_report"]
