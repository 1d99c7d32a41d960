"""An input read as exactly the content it was listed with, however often it is read.

The soundtrack job reads an input in both passes (pass 1 plans and decodes it, pass 2 muxes its
picture), minutes or hours apart. Anyone who can write to the input folder or bucket could
replace it in between, so each read is pinned to the content identity recorded when the input
was listed (``ObjectInfo.identity``):

- a local file is opened once and its descriptor checked against the identity (size, times,
  inode); readers get ``/dev/fd/N``, which names that open file, not whatever the path points at
  by then. ``verify`` checks it again before anything made from it is published, so a file
  rewritten in place while it was read is caught too;
- an S3 object is downloaded with ``If-Match`` on its ETag (and by version when it has one) into
  a private scratch copy.

A changed input raises ``ObjectChanged``: it fails with that reason, and a rerun lists it anew.
"""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path

from cotvtm.storage.errors import ObjectChanged, ObjectTooLarge, StorageError
from cotvtm.storage.store import ObjectInfo, Store


class Pinned:
    """A local path whose content is the pinned one; ``verify`` before publishing what was made."""

    def __init__(self, path: Path, fd: int | None = None, identity: str = "", key: str = ""):
        self.path, self._fd, self._identity, self._key = path, fd, identity, key

    def verify(self) -> None:
        """Raise ObjectChanged if a pinned local file changed since it was opened."""
        if self._fd is not None and self._identity and _identity(self._key, os.fstat(self._fd)) != self._identity:
            raise ObjectChanged(self._key, "the input changed while it was being read; run again to redo it")


def _identity(key: str, found: os.stat_result) -> str:
    return ObjectInfo.of_stat(key, found).identity


@contextmanager
def pinned(store: Store, key: str, identity: str, scratch_path: Path, max_bytes: int | None = None):
    """A ``Pinned`` copy of ``key`` whose content has ``identity`` (unchecked when empty), for the
    length of the block: the open file when the store is local, else a download to
    ``scratch_path`` that is removed afterwards."""
    local = store.local_path(key)
    if local is None:
        path = store.download(key, scratch_path, max_bytes=max_bytes, identity=identity or None)
        try:
            yield Pinned(Path(path))
        finally:
            Path(path).unlink(missing_ok=True)
        return
    fd = _open(local)
    try:
        found = os.fstat(fd)
        if max_bytes is not None and found.st_size > max_bytes:
            raise ObjectTooLarge(str(local), f"{found.st_size} bytes is over the limit of {max_bytes} bytes")
        if identity and _identity(key, found) != identity:
            raise ObjectChanged(str(local), "the input changed since it was listed; run again to redo it")
        yield Pinned(Path(f"/dev/fd/{fd}"), fd, identity, key)
    finally:
        os.close(fd)


def _open(path: Path) -> int:
    """A read-only descriptor of a regular file; the reason in one line otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO planted under a media name must not block
    except FileNotFoundError:
        raise StorageError(str(path), "file not found") from None
    except PermissionError:
        raise StorageError(str(path), "permission denied") from None
    except OSError as exc:
        raise StorageError(str(path), f"cannot open ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StorageError(str(path), "not a regular file")
    return fd
