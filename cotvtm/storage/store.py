"""One small interface over a local folder or an ``s3://bucket/prefix``.

Keys are '/'-separated paths relative to the store's root. Both backends skip hidden keys (a
path part starting with '.', like the temporary names of local writes) and never show a
half-written object. Local folders and AWS S3 list in key order; some S3-compatible servers
(SeaweedFS) list folder by folder, so callers that need an order sort.
"""

from __future__ import annotations  # a method named `list` shadows the builtin in annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol



@dataclass(frozen=True)
class ObjectInfo:
    key: str  # relative to the store's root
    size: int  # bytes
    mtime: float  # seconds since the epoch
    etag: str | None = None  # S3 ETag without quotes; None locally
    checksum: str | None = None  # e.g. "crc32:NhCmhg==" when S3 stored one (``info`` only)
    version_id: str | None = None  # S3 version of a versioned bucket (``info`` only)
    mtime_ns: int | None = None  # local files: the exact modification time
    inode: int | None = None  # local files: which file (a file renamed into place is another)
    ctime_ns: int | None = None  # local files: the last change of content or metadata, which nobody can set

    @classmethod
    def of_stat(cls, key: str, stat) -> "ObjectInfo":
        """A local file's info from its ``os.stat_result``."""
        return cls(key=key, size=stat.st_size, mtime=stat.st_mtime, mtime_ns=stat.st_mtime_ns, inode=stat.st_ino,
                   ctime_ns=stat.st_ctime_ns)

    @property
    def identity(self) -> str:
        """What this content is known by: a replaced object gets another identity even when it
        has the same size. ETag (and version) on S3; locally size and modification time, and the
        file's inode and change time, so that a file rewritten with its old size and time forged
        back, or another file renamed over it, is not taken for the one listed."""
        if self.etag:
            return f"etag:{self.etag}" + (f";version:{self.version_id}" if self.version_id else "")
        identity = f"size:{self.size};mtime_ns:{self.mtime_ns if self.mtime_ns is not None else repr(self.mtime)}"
        return identity + (f";inode:{self.inode};ctime_ns:{self.ctime_ns}" if self.inode is not None else "")


class Store(Protocol):
    def list(self, prefix: str = "", extensions: Iterable[str] | None = None,
             hidden: bool = False) -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``; ``extensions`` like ('.mp4',), any case."""

    def info(self, key: str) -> ObjectInfo:
        """Size, time and checksum of one object; raises ObjectNotFound."""

    def exists(self, key: str) -> bool: ...

    def download(self, key: str, local_path: str | Path, max_bytes: int | None = None,
                 identity: str | None = None) -> Path:
        """Copy to a local file (appears complete or not at all); raises ObjectTooLarge. With
        ``identity`` (``ObjectInfo.identity``), only of that content: ObjectChanged otherwise."""

    def upload(self, local_path: str | Path, key: str) -> None:
        """Publish a local file under ``key`` atomically."""

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def append_line(self, key: str, line: str) -> None:
        """Add one row to the log at ``key`` (a manifest); rows are never rewritten."""

    def read_lines(self, key: str) -> Iterator[str]:
        """Every row appended at ``key``, oldest first, one at a time (none held); bytes that
        are not UTF-8 come surrogate-escaped."""

    def uri(self, key: str = "") -> str:
        """Where ``key`` lives, for messages."""

    def local_path(self, key: str) -> Path | None:
        """The file behind ``key`` when the store is local, else None."""

    def child(self, prefix: str) -> Store:
        """The store rooted at ``prefix`` inside this one (a hidden prefix is fine)."""

    def delete_prefix(self, prefix: str) -> None:
        """Remove every object under ``prefix`` (a folder-like key ending in '/')."""


def wanted(key: str, extensions: Iterable[str] | None, hidden: bool = False) -> bool:
    """Not hidden (unless ``hidden``), and with a wanted extension (case-insensitive) when
    extensions are given."""
    if not hidden and any(part.startswith(".") for part in key.split("/")):
        return False
    if extensions is None:
        return True
    name = key.rsplit("/", 1)[-1].lower()
    return any(name.endswith(ext.lower()) for ext in extensions)
