"""S3 (and S3-compatible) storage through boto3.

Credentials come from the standard chain (environment, profile, instance role, IRSA) of the
machine the store is used on: a store pickled to another node carries none. Requests are
retried in botocore's adaptive mode; reads are ranged GETs that resume from the last byte
received (``ranged.py``), pinned to one content by ``If-Match``; uploads go through the
transfer manager (multipart above a threshold). A PUT or a completed multipart upload is
atomic: nobody sees half an object. Every call is bounded by its progress and by a deadline,
never by a size (which would be the server's word), enforced from outside the socket, and no
request asks for a 100 Continue (``deadline.py``).
"""

from __future__ import annotations  # a method named `list` shadows the builtin in annotations

import copy
import os
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from threading import Lock

import boto3
from boto3.exceptions import RetriesExceededError, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)
from s3transfer.futures import NonThreadedExecutor
from s3transfer.manager import TransferManager

from cotvtm.storage.deadline import ContextExecutor, Pace, bounded, watch
from cotvtm.storage.errors import DeadlineExceeded, ObjectNotFound, ObjectTooLarge, StorageError
from cotvtm.storage.local import fsync_dir
from cotvtm.storage.ranged import TRANSFER_S, RangedReader, ReadPolicy, changed, download, read_all
from cotvtm.storage.store import ObjectInfo, wanted
from cotvtm.storage.uri import S3Location, check_key, check_prefix

MiB = 1 << 20
CHECKSUM = "CRC32"
ROWS_SUFFIX = ".rows/"  # append_line(key) writes one object per row under key + ROWS_SUFFIX
READ_THREADS = 16

REQUEST_S = 120.0
"""Any call but a download or an upload (a HEAD, a listing page, an object read whole or
written from memory), its retries included, whatever size it moves or is told of. A healthy
store answers these in well under a second, and moves the largest (READ_ALL_MAX_BYTES) in
seconds; past this it has stalled."""
IDLE_S = 30.0
"""One HTTP attempt that moves no byte, either way, for this long is cut and botocore retries
on a fresh connection: a dead connection, or a server that never answers. TCP's own
retransmissions of a lossy path stay well inside it."""
MIN_BYTES_PER_S = 64 * 1024
"""While a call moves data (a read; a request body, until its answer's headers are in) it must
move at least this much a second over every WINDOW_S, or it is abandoned: half a megabit a
second is far below any link that could finish the job, and far above a server that trickles
a byte at a time to hold a worker."""
WINDOW_S = 60.0
"""The window the rate is measured over: long enough that a pause (a retry's backoff, a server's
hiccup, an attempt cut after IDLE_S and retried) is made up for, short enough that a trickle
ends within 70 s (a window, and at most a sixth of one until it is next looked at)."""

_DENIED = {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
           "AllAccessDisabled", "InvalidToken", "ExpiredToken", "AccountProblem"}
_MISSING = {"NoSuchKey", "404", "NotFound"}
_CHANGED = {"PreconditionFailed", "412", "NoSuchVersion"}


def endpoint_from_env() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def make_client(endpoint_url: str | None = None):
    """An S3 client: standard credential chain, adaptive retries, bounded timeouts.

    With an explicit endpoint (an S3-compatible server such as SeaweedFS or MinIO) requests use
    path-style addressing, since such servers rarely resolve bucket subdomains.
    """
    options = dict(retries={"mode": "adaptive", "max_attempts": 10}, connect_timeout=10,
                   read_timeout=60, max_pool_connections=32)
    if endpoint_url:
        options["s3"] = {"addressing_style": "path"}
    return watch(boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=Config(**options)))


def _bounded(uri: str, seconds: float):
    """A call bounded by ``seconds`` overall, IDLE_S an attempt, and the pace of its data."""
    return bounded(uri, seconds, IDLE_S, Pace(MIN_BYTES_PER_S, WINDOW_S))


def _pinned(identity: str, uri: str) -> tuple[str, str | None]:
    """(ETag, version) from a content identity ``etag:<etag>[;version:<id>]`` (``ObjectInfo.identity``)."""
    fields = dict(part.split(":", 1) for part in identity.split(";") if ":" in part)
    if not fields.get("etag"):
        raise StorageError(uri, f"{identity!r} is not the content identity of an S3 object (etag:...)")
    return fields["etag"], fields.get("version")


def default_transfer() -> TransferConfig:
    """Uploads: parts of 16 MiB above 16 MiB, 8 in flight; the classic (pure Python) transfer client."""
    return TransferConfig(multipart_threshold=16 * MiB, multipart_chunksize=16 * MiB,
                          max_concurrency=8, preferred_transfer_client="classic")


class _RowStamp:
    """Strictly increasing nanosecond stamps within a process, so its rows sort in append order."""

    def __init__(self):
        self._last = 0
        self._lock = Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(time.time_ns(), self._last + 1)
            return self._last


_stamp = _RowStamp()


TRANSFER_SETTINGS = ("multipart_threshold", "multipart_chunksize", "max_concurrency", "num_download_attempts",
                     "max_io_queue", "io_chunksize", "use_threads")


class S3Store:
    """``s3://bucket/prefix`` as a store. Picklable: the client is rebuilt where it lands."""

    def __init__(self, location: S3Location, endpoint_url: str | None = None,
                 transfer: TransferConfig | None = None, page_size: int = 1000, reads: ReadPolicy | None = None):
        self.location = location
        self.endpoint_url = endpoint_url or endpoint_from_env()
        self.transfer = transfer or default_transfer()
        self.reads = reads or ReadPolicy()
        self.page_size = page_size
        self.client = make_client(self.endpoint_url)

    def __repr__(self) -> str:
        return f"S3Store({self.uri()!r})"

    def __getstate__(self) -> dict:
        """No client (not picklable, holds credentials); the transfer config travels as its
        settings, since a TransferConfig does not survive pickling intact."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("client", "transfer")}
        state["transfer_settings"] = {k: getattr(self.transfer, k) for k in TRANSFER_SETTINGS}
        return state

    def __setstate__(self, state: dict) -> None:
        settings = state.pop("transfer_settings")
        self.__dict__.update(state)
        self.transfer = TransferConfig(**settings)
        self.client = make_client(self.endpoint_url)

    def uri(self, key: str = "") -> str:
        return self.location.uri(key)

    def local_path(self, key: str) -> None:
        return None

    def _key(self, key: str) -> str:
        return self.location.key(check_key(key, self.uri()))

    # -- reading -------------------------------------------------------------------------

    def list(self, prefix: str = "", extensions: Iterable[str] | None = None,
             hidden: bool = False) -> Iterator[ObjectInfo]:
        """Objects under ``prefix``; with ``hidden``, hidden keys and folder markers ('a/') too."""
        start = len(self.location.prefix)
        full = self.location.key(check_prefix(prefix, self.uri()))
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.location.bucket, Prefix=full, PaginationConfig={"PageSize": self.page_size})
        with self._errors(prefix):
            for page in self._pages(prefix, pages):
                for obj in page.get("Contents", []):
                    key = obj["Key"][start:]
                    if key and (hidden or (not key.endswith("/") and wanted(key, extensions))):
                        yield ObjectInfo(key=key, size=obj["Size"], mtime=obj["LastModified"].timestamp(),
                                         etag=obj.get("ETag", "").strip('"') or None)

    def _pages(self, prefix: str, pages) -> Iterator[dict]:
        """A paginator's pages, each request bounded (never across a ``yield``)."""
        pages = iter(pages)
        while True:
            with self._small(prefix):
                page = next(pages, None)
            if page is None:
                return
            yield page

    def _small(self, key: str):
        """The bounds of any call but a download or an upload."""
        return _bounded(self.uri(key), REQUEST_S)

    def info(self, key: str) -> ObjectInfo:
        return self._head(key)

    def _head(self, key: str, etag: str | None = None, version_id: str | None = None,
              identity: str | None = None) -> ObjectInfo:
        """A HEAD; with ``etag`` (and ``version_id``) only of that content (ObjectChanged otherwise)."""
        args = dict(Bucket=self.location.bucket, Key=self._key(key), ChecksumMode="ENABLED")
        if etag:
            args["IfMatch"] = f'"{etag}"'
        if version_id:
            args["VersionId"] = version_id
        with self._errors(key, identity), self._small(key):
            head = self.client.head_object(**args)
        return ObjectInfo(key=key, size=head["ContentLength"], mtime=head["LastModified"].timestamp(),
                          etag=head.get("ETag", "").strip('"') or None, checksum=_checksum(head),
                          version_id=head.get("VersionId"))

    def exists(self, key: str) -> bool:
        try:
            self.info(key)
            return True
        except ObjectNotFound:
            return False

    def _reader(self, key: str, info: ObjectInfo, identity: str | None = None) -> RangedReader:
        return RangedReader(self.client, self.location.bucket, self._key(key), self.uri(key), self.reads,
                            etag=info.etag, size=info.size, version_id=info.version_id, identity=identity)

    def download(self, key: str, local_path: str | Path, max_bytes: int | None = None,
                 identity: str | None = None) -> Path:
        """Parallel ranged parts, each resumed from its last byte (``ranged.py``), into a
        temporary name beside ``local_path``; synced and renamed once whole. Every GET is of the
        content the HEAD found, or with ``identity`` (``ObjectInfo.identity``) of that content:
        ObjectChanged when the object is no longer it."""
        pin = _pinned(identity, self.uri(key)) if identity else (None, None)
        info = self._head(key, *pin, identity=identity)
        if max_bytes is not None and info.size > max_bytes:
            raise ObjectTooLarge(self.uri(key), f"{info.size} bytes is over the limit of {max_bytes} bytes")
        path = Path(local_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.close(fd)
        try:
            with self._errors(key, identity), _bounded(self.uri(key), self.reads.deadline_s):
                download(self._reader(key, info, identity), info.size, Path(tmp))
            os.replace(tmp, path)
            fsync_dir(path.parent)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return path

    def get_bytes(self, key: str, identity: str | None = None) -> bytes:
        """One GET; a body that breaks is resumed from its last byte. With ``identity``, only of
        that content (ObjectChanged otherwise). An object over READ_ALL_MAX_BYTES is refused
        (ObjectTooLarge) by the size its answer declares, or stopped once its body runs past it."""
        etag, version_id = _pinned(identity, self.uri(key)) if identity else (None, None)
        with self._errors(key, identity), self._small(key):
            return read_all(RangedReader(self.client, self.location.bucket, self._key(key), self.uri(key),
                                         self.reads, etag=etag, version_id=version_id, identity=identity))

    # -- writing -------------------------------------------------------------------------

    def upload(self, local_path: str | Path, key: str) -> None:
        """Transfer manager: one PUT, or a multipart upload above the threshold; CRC32 checksums.

        Bounded by progress (each body sent at the least rate, each attempt cut when idle) and
        by TRANSFER_S overall, not by the file's size."""
        config = self.transfer
        with self._errors(key), _bounded(self.uri(key), TRANSFER_S):
            executor = ContextExecutor if config.use_threads else NonThreadedExecutor
            with TransferManager(self.client, config, executor_cls=executor) as manager:
                manager.upload(str(local_path), self.location.bucket, self._key(key),
                               extra_args={"ChecksumAlgorithm": CHECKSUM}).result()

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._errors(key), self._small(key):
            self.client.put_object(Bucket=self.location.bucket, Key=self._key(key), Body=data,
                                   ChecksumAlgorithm=CHECKSUM)

    def append_line(self, key: str, line: str) -> None:
        """S3 cannot append: each row is its own object, ``<key>.rows/<ns stamp>-<random>.jsonl``.

        Every row is durable and whole as soon as this returns, writers never coordinate, and
        the zero-padded stamps make the listing order the append order (ties across processes
        are broken by the random part).
        """
        row = f"{check_key(key, self.uri())}{ROWS_SUFFIX}{_stamp.next():020d}-{uuid.uuid4().hex[:8]}.jsonl"
        self.put_bytes(row, (line.rstrip("\n") + "\n").encode("utf-8"))

    def read_lines(self, key: str) -> Iterator[str]:
        """The lines of the row objects one at a time, fetched READ_THREADS objects ahead, so
        that memory does not grow with the manifest. The rows folder is flat, so every server
        lists it in key order, which is the append order. Bytes that are not UTF-8 come
        surrogate-escaped, so that a reader can tell such a line apart."""
        def lines(fetched):
            return (line.decode("utf-8", "surrogateescape") for line in fetched.result().splitlines())

        ahead = []
        with ThreadPoolExecutor(READ_THREADS) as pool:
            for info in self.list(check_key(key, self.uri()) + ROWS_SUFFIX):
                ahead.append(pool.submit(self.get_bytes, info.key))
                if len(ahead) > READ_THREADS:
                    yield from lines(ahead.pop(0))
            for fetched in ahead:
                yield from lines(fetched)

    def child(self, prefix: str) -> S3Store:
        child = copy.copy(self)  # shares the client
        child.location = S3Location(self.location.bucket, self._key(prefix.rstrip("/")) + "/")
        return child

    def delete_prefix(self, prefix: str) -> None:
        """Batched DeleteObjects (1,000 keys a request) over the listing, hidden keys included."""
        if not prefix:
            raise StorageError(self.uri(), "refusing to delete a whole store: give a prefix")
        full = self.location.key(check_prefix(prefix, self.uri()))
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.location.bucket, Prefix=full)
        with self._errors(prefix):
            for page in self._pages(prefix, pages):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if keys:
                    with self._small(prefix):
                        answer = self.client.delete_objects(Bucket=self.location.bucket,
                                                            Delete={"Objects": keys, "Quiet": True})
                    if answer.get("Errors"):
                        error = answer["Errors"][0]
                        raise StorageError(self.uri(prefix), f"{len(answer['Errors'])} objects not deleted, e.g. "
                                                             f"{error.get('Key')}: {error.get('Code')}")

    # -- errors --------------------------------------------------------------------------

    @contextmanager
    def _errors(self, key: str = "", identity: str | None = None):
        """Turn botocore's exceptions into one-line StorageErrors that name the URI (``identity``:
        the content the call was pinned to, for the error when it changed)."""
        uri = self.uri(key)
        try:
            yield
        except (S3UploadFailedError, RetriesExceededError) as exc:
            cause = getattr(exc, "last_exception", None) or exc.__context__
            raise self._translate(cause if isinstance(cause, Exception) else exc, uri, identity) from exc
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, uri, identity) from exc

    def _translate(self, exc: Exception, uri: str, identity: str | None = None) -> StorageError:
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return StorageError(uri, "no AWS credentials found (set AWS_ACCESS_KEY_ID and "
                                     "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or use an instance role)")
        if isinstance(exc, EndpointConnectionError):
            return StorageError(uri, f"cannot reach the S3 endpoint {exc.kwargs.get('endpoint_url', '')}")
        if not isinstance(exc, ClientError):
            return StorageError(uri, f"S3 request failed: {exc}")
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _CHANGED:
            return changed(uri, identity)
        if code == "NoSuchBucket" or (code in _MISSING and not self._bucket_exists()):
            return StorageError(uri, f"bucket {self.location.bucket!r} does not exist")
        if code in _MISSING:
            return ObjectNotFound(uri, "no such object")
        if code in _DENIED:
            return StorageError(uri, f"access denied ({code}): check the credentials and the bucket policy")
        return StorageError(uri, f"S3 error {code}: {error.get('Message') or exc}")

    def _bucket_exists(self) -> bool:
        """HEAD answers carry no error body, so a 404 there may mean the bucket is missing."""
        try:
            with self._small(""):
                self.client.head_bucket(Bucket=self.location.bucket)
            return True
        except ClientError as exc:
            return str(exc.response.get("Error", {}).get("Code")) not in ("404", "NoSuchBucket", "NotFound")
        except (BotoCoreError, DeadlineExceeded):
            return True


def _checksum(head: dict) -> str | None:
    for name in ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"):
        if head.get(f"Checksum{name}"):
            return f"{name.lower()}:{head[f'Checksum{name}']}"
    return None
