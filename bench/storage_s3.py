"""Benchmark S3 transfers: uploads, downloads, and downloads over connections that keep dying.

Run: .venv/bin/python bench/storage_s3.py [--endpoint-url URL --bucket NAME]
Without an endpoint it starts SeaweedFS on loopback (as the tests do). Prints, for a 64 MiB
file, the median of REPEATS runs in MB/s: uploads through boto3's transfer manager (default
settings and one part), downloads through cotvtm's resumable ranged reads and, as the baseline
in the same run, through the transfer manager. Then, on loopback only, a 40 MiB download
through a proxy whose connections die every ~1 MiB, by both: whether it finished, the bytes
sent over the wire relative to the file, and the time. It asserts nothing: numbers depend on
the machine (and on loopback, on its CPUs).
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
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from boto3.s3.transfer import TransferConfig  # noqa: E402

from cotvtm.storage import open_store  # noqa: E402
from cotvtm.storage.s3 import default_transfer  # noqa: E402

MiB = 1 << 20
SIZE = 64 * MiB
FLAKY_SIZE = 40 * MiB
REPEATS = 3
UPLOADS = {
    "default (16 MiB parts, 8 threads)": default_transfer(),
    "single part": TransferConfig(multipart_threshold=SIZE + 1, max_concurrency=1, use_threads=False,
                                  preferred_transfer_client="classic"),
}


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def transfer_manager_download(store, key: str, path: Path) -> None:
    """The baseline: boto3's own download (a broken part restarts from the part's first byte)."""
    store.client.download_file(store.location.bucket, store.location.key(key), str(path), Config=default_transfer())


def ranged_download(store, key: str, path: Path) -> None:
    store.download(key, path)


DOWNLOADS = {"resumable ranged reads (16 MiB parts, 4 at a time)": ranged_download,
             "transfer manager (16 MiB parts, 8 threads)": transfer_manager_download}
rate = lambda size, seconds: size / 1e6 / statistics.median(seconds)  # noqa: E731


def measure(uri: str, endpoint: str | None, src: Path, scratch: Path) -> None:
    print(f"{SIZE >> 20} MiB file, median of {REPEATS} runs, MB/s (1 MB = 10^6 bytes)")
    store = open_store(uri, endpoint_url=endpoint)
    keys = []
    for name, transfer in UPLOADS.items():
        upload = open_store(uri, endpoint_url=endpoint, transfer=transfer)
        seconds = []
        for _ in range(REPEATS):
            keys.append(f"bench-{uuid.uuid4().hex[:8]}.bin")
            seconds.append(timed(lambda: upload.upload(src, keys[-1])))
        print(f"  upload   {name:>52} {rate(SIZE, seconds):6.0f}")
    for name, download in DOWNLOADS.items():
        seconds = []
        for key in keys[:REPEATS]:
            seconds.append(timed(lambda: download(store, key, scratch / "back.bin")))
            assert (scratch / "back.bin").stat().st_size == SIZE
        print(f"  download {name:>52} {rate(SIZE, seconds):6.0f}")


def flaky(server, src: Path, scratch: Path) -> None:
    from faulty_proxy import FaultyProxy, dying

    uri = f"s3://{server.make_bucket()}/flaky"
    open_store(uri).upload(src, "master.mov")
    print(f"{FLAKY_SIZE >> 20} MiB file through connections that die every ~1 MiB")
    for name, download in DOWNLOADS.items():
        proxy = FaultyProxy(urlparse(server.endpoint).port, fault=dying, life_bytes=MiB).start()
        store = open_store(uri, endpoint_url=proxy.url)
        start = time.perf_counter()
        try:
            download(store, "master.mov", scratch / "back.mov")
            ok = (scratch / "back.mov").read_bytes() == src.read_bytes()
            outcome = "complete, byte-identical" if ok else "complete, DIFFERENT BYTES"
        except Exception as exc:  # noqa: BLE001 - the baseline's failure is the figure
            outcome = f"failed: {type(exc).__name__}: {str(exc)[:70]}"
        seconds = time.perf_counter() - start
        proxy.stop()
        print(f"  {name:>52}: {outcome}; {proxy.bytes_down / FLAKY_SIZE:.2f}x the file sent, "
              f"{proxy.counts['dies']} connections, {seconds:.1f} s")


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
            small = Path(tmp) / "master.bin"
            small.write_bytes(src.read_bytes()[:FLAKY_SIZE])
            flaky(server, small, Path(tmp))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
