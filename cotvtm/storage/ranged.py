"""S3 reads that resume from the last byte received.

boto3's transfer manager retries a broken part from the part's first byte (s3transfer's
``GetObjectTask``), so on a network whose connections die every few MB a part larger than a
connection's life never completes and a 10 GB master is never read. Here every read is a
ranged GET; when its body breaks, the next GET asks for the rest from the last byte received,
with backoff. Data must keep moving while a range is read (the current S3 call's pace,
``deadline.moving``), a whole download has a deadline, and memory is one chunk per part in
flight. An object read whole into memory (``read_all``) has a size cap, checked against the
size its answer declares and against the bytes that actually come.

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

from cotvtm.storage.deadline import ContextExecutor, moving
from cotvtm.storage.errors import ObjectChanged, ObjectTooLarge, StorageError

MiB = 1 << 20
TRANSFER_S = 6 * 3600.0
"""A whole download or upload, however well it progresses: the pace keeps a slow one honest,
this ends one that a server keeps just above it (a 64 GiB input at 3 MiB/s fits)."""
READ_ALL_MAX_BYTES = 256 * MiB
"""An object read whole into memory. Those are sidecars, manifest rows, styles, keys and banks
(kilobytes) and saved segments of music (21 MB for the default six 10 s windows of 44.1 kHz
stereo float32); anything larger is not one of them, and would only fill a worker's memory."""
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
    deadline_s: float = TRANSFER_S  # a whole download, however much it progresses


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
    ``identity`` is how the caller knew it, for the error when it changed; an object over
    ``max_bytes`` is refused (ObjectTooLarge) as soon as an answer declares its size, and a
    body that runs past it is stopped.
    """

    def __init__(self, client, bucket: str, key: str, uri: str, policy: ReadPolicy, etag: str | None = None,
                 size: int | None = None, version_id: str | None = None, identity: str | None = None,
                 max_bytes: int | None = None):
        self.client, self.bucket, self.key, self.uri, self.policy = client, bucket, key, uri, policy
        self.etag, self.size, self.version_id = etag, size, version_id
        self.identity, self.max_bytes = identity, max_bytes
        self.deadline = time.monotonic() + policy.deadline_s

    def read(self, start: int, end: int | None, sink: Callable[[int, bytes], None]) -> int:
        """Bytes ``[start, end)`` (``end`` None: to the object's end) to ``sink(offset, data)``.

        Returns where the range ended. Raises StorageError when the object changed or is too
        large, the deadline passed, or ``fruitless`` GETs in a row brought nothing; the current
        S3 call is abandoned when the data moves slower than its pace, retries and pauses
        included.
        """
        with moving():
            return self._read(start, end, sink)

    def _read(self, start: int, end: int | None, sink: Callable[[int, bytes], None]) -> int:
        position, fruitless = start, 0
        while end is None or position < end:
            before = position
            try:
                for chunk in self._stream(position, end):
                    self._within(position + len(chunk))
                    sink(position, chunk)
                    position += len(chunk)
                    self._in_time(position, end)
                if end is None:  # an answer that declares no size ends where the object does
                    end = self.size if self.size is not None else position
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
        body = answer["Body"]
        try:
            self._pin(answer)
            yield from body.iter_chunks(self.policy.chunk_bytes)
        finally:
            body.close()

    def _within(self, nbytes: int, declared: bool = False) -> None:
        """Refuse an object larger than ``max_bytes``, by its declared size or by the bytes that came."""
        if self.max_bytes is not None and nbytes > self.max_bytes:
            what = f"its answer declares {nbytes} bytes" if declared else f"its body ran past {self.max_bytes} bytes"
            raise ObjectTooLarge(self.uri, f"{what}, over the limit of {self.max_bytes} bytes for an object read "
                                           "whole into memory")

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
            if self.size is not None:
                self._within(self.size, declared=True)

    def _pause(self, fruitless: int, position: int, end: int | None, exc: Exception) -> None:
        if fruitless >= self.policy.fruitless:
            raise StorageError(self.uri, f"read stopped at byte {position}: {fruitless} attempts in a row "
                                         f"brought nothing ({exc})") from exc
        self._in_time(position, end, exc)
        time.sleep(min(0.05 * 2 ** fruitless, 5.0) * random.uniform(0.5, 1.0))


def read_all(reader: RangedReader, max_bytes: int | None = None) -> bytes:
    """A small object into memory (sidecars, manifests, keys, saved progress): one GET, resumed
    if it breaks. Over ``max_bytes`` (READ_ALL_MAX_BYTES unless given) it is refused by its
    declared size before its body is read, and stopped when its body runs past that anyway."""
    reader.max_bytes = READ_ALL_MAX_BYTES if max_bytes is None else max_bytes
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
