"""``python -m cotvtm.report OUT [--png FILE]``: rebuild OUT/report.html from what OUT holds.

A report can be remade at any time (after an interrupted run, or for an older output folder),
since it needs only the manifest and the sidecars.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

from cotvtm.errors import CotvtmError
from cotvtm.options import Checked, add_options, given, parser, same, setting
from cotvtm.report.screenshot import screenshot
from cotvtm.report.write import write_report
from cotvtm.settings import Access
from cotvtm.storage import open_store


@dataclass(frozen=True)
class Remake(Checked):
    """Which output folder's report is made again, and how."""

    output: str = setting(positional=True, help="output folder or s3://bucket/prefix of a soundtrack run")
    title: str = setting("cotvtm soundtrack report", help="the page's title")
    endpoint_url: str | None = same(Access, "endpoint_url")
    png: Path | None = setting(None, metavar="FILE", help="also render the page with headless Chromium (local "
                                                          "output only)")


def main(argv: list[str] | None = None) -> int:
    p = parser("python -m cotvtm.report", "Rebuild OUT/report.html from the manifest and sidecars in OUT.")
    add_options(p, Remake)
    parsed = p.parse_args(argv)
    try:
        args = Remake(**given(parsed, Remake))
        out = open_store(args.output, args.endpoint_url)
        uri = write_report(out, title=args.title)
        print(f"report {uri}")
        if args.png:
            page = out.local_path("report.html")
            if page is None:
                raise CotvtmError("--png needs a local output folder")
            print(f"screenshot {screenshot(page.resolve().as_uri(), args.png)}")
    except CotvtmError as exc:
        print(f"cotvtm report: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
