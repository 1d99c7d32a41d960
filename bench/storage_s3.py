"""Benchmark S3 transfers: upload and download of a 64 MiB file through boto3's transfer manager.

Run: .venv/bin/python bench/storage_s3.py [--endpoint-url URL --bucket NAME]
Without an endpoint it starts SeaweedFS on loopback (as the tests do). Prints the median of
REPEATS runs in MB/s for the default transfer settings and for single-part transfers. It does
not assert anything: numbers depend on the machine (and on loopback, on its CPUs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from boto3.s3.transfer import TransferConfig  # noqa: E402

from cotvtm.storage import open_store  # noqa: E402
from cotvtm.storage.s3 import default_transfer  # noqa: E402

SIZE = 64 << 20
REPEATS = 3
SETTINGS = {
    "default (16 MiB parts, 8 threads)": default_transfer(),
    "single part": TransferConfig(multipart_threshold=SIZE + 1, max_concurrency=1, use_threads=False,
                                  preferred_transfer_client="classic"),
}


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure(uri: str, endpoint: str | None, src: Path, scratch: Path) -> None:
    print(f"{SIZE >> 20} MiB file, median of {REPEATS} runs, MB/s (1 MB = 10^6 bytes)")
    print(f"{'transfer settings':>36} {'upload':>8} {'download':>9}")
    for name, transfer in SETTINGS.items():
        store = open_store(uri, endpoint_url=endpoint, transfer=transfer)
        up, down = [], []
        for i in range(REPEATS):
            key = f"bench-{uuid.uuid4().hex[:8]}.bin"
            up.append(timed(lambda: store.upload(src, key)))
            down.append(timed(lambda: store.download(key, scratch / f"{i}.bin")))
            assert (scratch / f"{i}.bin").stat().st_size == SIZE
            (scratch / f"{i}.bin").unlink()
        rate = lambda seconds: SIZE / 1e6 / statistics.median(seconds)  # noqa: E731
        print(f"{name:>36} {rate(up):8.0f} {rate(down):9.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint-url", help="an S3 endpoint; default: start SeaweedFS on loopback")
    parser.add_argument("--bucket", help="an existing bucket (with --endpoint-url)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "payload.bin"
        src.write_bytes(os.urandom(SIZE))
        if args.endpoint_url:
            measure(f"s3://{args.bucket}/bench", args.endpoint_url, src, Path(tmp))
            return
        from s3server import start_s3_server

        server = start_s3_server()
        try:
            os.environ.update(server.env())
            print(f"SeaweedFS at {server.endpoint}")
            measure(f"s3://{server.make_bucket()}/bench", None, src, Path(tmp))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
