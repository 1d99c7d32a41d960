"""S3 reads that resume from the last byte received.

boto3's transfer manager retries a broken part from the part's first byte (s3transfer's
``GetObjectTask``), so on a network whose connections die every few MB a part larger than a
connection's life never completes and a 10 GB master is never read. Here every read is a
ranged GET; when its body breaks, the next GET asks for the rest from the last byte received,
with backoff. A whole download has a deadline, and memory is one chunk per part in flight.

Every GET is pinned to one content: once its ETag is known (given, from a HEAD, or from the
first answer) each GET carries ``If-Match`` on it, and ``VersionId`` when the version is known,
so a replaced object fails with ObjectChanged instead of mixing two versions. Uploads stay with
the transfer manager, which has no such gap.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    FlexibleChecksumError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from cotvtm.storage.deadline import ContextExecutor
from cotvtm.storage.errors import ObjectChanged, StorageError

MiB = 1 << 20
# A body that breaks, or a connection that cannot be had even after botocore's own retries.
BROKEN = (ResponseStreamingError, IncompleteReadError, ReadTimeoutError, ConnectionClosedError,
          FlexibleChecksumError, EndpointConnectionError, ConnectTimeoutError)


@dataclass(frozen=True)
class ReadPolicy:
    """How downloads are split and how long they may keep trying."""

    part_bytes: int = 16 * MiB  # one ranged stream per part; parts run in parallel
    parallel: int = 4  # parts in flight per download
    chunk_bytes: int = 256 * 1024  # read and written at a time: memory is parallel x chunk
    fruitless: int = 8  # GETs in a row that bring no new byte before a part gives up
    deadline_s: float = 6 * 3600.0  # a whole download, however much it progresses


def changed(uri: str, identity: str | None = None) -> ObjectChanged:
    """The error for an object that is no longer the content being read (``identity``: the one
    it was listed with)."""
    if identity:
        return ObjectChanged(uri, f"the input changed since it was listed (as {identity}); run again "
                                  "to use its new content")
    return ObjectChanged(uri, "the object was replaced while it was being read; run again")


class RangedReader:
    """Reads one object (or any byte range of it), resuming each broken stream.

    ``etag`` and ``version_id`` name the content to read (else the first answer's is pinned);
    ``identity`` is how the caller knew it, for the error when it changed; ``sized`` is called
    with the object's size once an answer tells it.
    """

    def __init__(self, client, bucket: str, key: str, uri: str, policy: ReadPolicy, etag: str | None = None,
                 size: int | None = None, version_id: str | None = None, identity: str | None = None,
                 sized: Callable[[int], None] | None = None):
        self.client, self.bucket, self.key, self.uri, self.policy = client, bucket, key, uri, policy
        self.etag, self.size, self.version_id = etag, size, version_id
        self.identity, self.sized = identity, sized
        self.deadline = time.monotonic() + policy.deadline_s

    def read(self, start: int, end: int | None, sink: Callable[[int, bytes], None]) -> int:
        """Bytes ``[start, end)`` (``end`` None: to the object's end) to ``sink(offset, data)``.

        Returns where the range ended. Raises StorageError when the object changed, the
        deadline passed, or ``fruitless`` GETs in a row brought nothing.
        """
        position, fruitless = start, 0
        while end is None or position < end:
            before = position
            try:
                for chunk in self._stream(position, end):
                    sink(position, chunk)
                    position += len(chunk)
                    self._in_time(position, end)
                end = self.size if end is None else end
                if position < end:  # the body ended early without an error
                    raise IncompleteReadError(actual_bytes=position - before, expected_bytes=end - before)
            except BROKEN as exc:
                fruitless = 0 if position > before else fruitless + 1
                self._pause(fruitless, position, end, exc)
        return position

    def _stream(self, position: int, end: int | None):
        """The body of one GET from ``position``, in chunks."""
        args = dict(Bucket=self.bucket, Key=self.key)
        if self.etag:
            args["IfMatch"] = f'"{self.etag}"'
        if self.version_id:
            args["VersionId"] = self.version_id
        if position or end is not None:  # a whole object is asked for plainly (an empty one has no range)
            args["Range"] = f"bytes={position}-" + ("" if end is None else str(end - 1))
        answer = self.client.get_object(**args)
        self._pin(answer)
        body = answer["Body"]
        try:
            yield from body.iter_chunks(self.policy.chunk_bytes)
        finally:
            body.close()

    def _in_time(self, position: int, end: int | None, cause: Exception | None = None) -> None:
        if time.monotonic() > self.deadline:
            raise StorageError(self.uri, f"read not finished within {self.policy.deadline_s:.0f} s "
                                         f"(at byte {position} of {end})") from cause

    def _pin(self, answer: dict) -> None:
        """Every answer must be of the content pinned (a server may ignore If-Match)."""
        etag = (answer.get("ETag") or "").strip('"') or None
        if self.etag is None:
            self.etag = etag
        elif etag != self.etag:
            raise changed(self.uri, self.identity)
        if self.size is None:
            size = answer["ContentRange"].rsplit("/", 1)[1] if answer.get("ContentRange") else None
            self.size = int(size) if size is not None else answer.get("ContentLength")
            if self.sized is not None and self.size is not None:
                self.sized(self.size)

    def _pause(self, fruitless: int, position: int, end: int | None, exc: Exception) -> None:
        if fruitless >= self.policy.fruitless:
            raise StorageError(self.uri, f"read stopped at byte {position}: {fruitless} attempts in a row "
                                         f"brought nothing ({exc})") from exc
        self._in_time(position, end, exc)
        time.sleep(min(0.05 * 2 ** fruitless, 5.0) * random.uniform(0.5, 1.0))


def read_all(reader: RangedReader) -> bytes:
    """A small object into memory (progress, sidecars): one GET, resumed if it breaks."""
    data = bytearray()

    def append(offset: int, chunk: bytes) -> None:
        data[offset: offset + len(chunk)] = chunk

    reader.read(0, None, append)
    return bytes(data)


def download(reader: RangedReader, size: int, path: Path) -> None:
    """The object into ``path`` in parallel parts, each resumed where it broke.

    The reader must know the object's ETag (from a HEAD) so that every part reads one version.
    ``path`` is written in place (the caller gives a temporary name), synced before returning.
    Each part runs in a copy of the caller's context (an S3 call's deadline reaches it).
    """
    with open(path, "wb") as handle:
        handle.truncate(size)
    step = reader.policy.part_bytes
    parts = [(start, min(start + step, size)) for start in range(0, size, step)]

    def fetch(part: tuple[int, int]) -> None:
        with open(path, "r+b") as handle:
            def write(offset: int, chunk: bytes) -> None:
                handle.seek(offset)
                handle.write(chunk)

            reader.read(*part, write)
            handle.flush()
            os.fsync(handle.fileno())

    with ContextExecutor(max(1, reader.policy.parallel)) as pool:
        list(pool.map(fetch, parts))
