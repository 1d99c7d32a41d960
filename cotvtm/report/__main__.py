"""``python -m cotvtm.report OUT [--png FILE]``: rebuild OUT/report.html from what OUT holds.

A report can be remade at any time (after an interrupted run, or for an older output folder),
since it needs only the manifest and the sidecars.
"""

import argparse
import sys
from pathlib import Path

from cotvtm.errors import CotvtmError
from cotvtm.report.screenshot import screenshot
from cotvtm.report.write import write_report
from cotvtm.storage import open_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cotvtm.report", description="Rebuild OUT/report.html from the manifest and sidecars in OUT.")
    parser.add_argument("output", help="output folder or s3://bucket/prefix of a soundtrack run")
    parser.add_argument("--title", default="cotvtm soundtrack report")
    parser.add_argument("--endpoint-url", default=None, help="S3-compatible endpoint")
    parser.add_argument("--png", type=Path, help="also render the page with headless Chromium (local output only)")
    args = parser.parse_args(argv)
    try:
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
