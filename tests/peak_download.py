"""Download one object through a store in a fresh process and print its peak memory.

    python peak_download.py S3_URI KEY DEST ENDPOINT

Prints one JSON line: {"bytes": ..., "peak_rss_mib": ...}. A process of its own, so that the
peak is the download's and not the test session's.
"""

import json
import resource
import sys

from cotvtm.storage import open_store


def main(uri: str, key: str, dest: str, endpoint: str) -> None:
    path = open_store(uri, endpoint_url=endpoint).download(key, dest)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"bytes": path.stat().st_size, "peak_rss_mib": round(peak_kib / 1024, 1)}))


if __name__ == "__main__":
    main(*sys.argv[1:])
