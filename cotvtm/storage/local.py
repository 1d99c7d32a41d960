"""Local-folder storage: listing inputs and writing outputs atomically."""

from __future__ import annotations  # a method named `list` shadows the builtin in annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cotvtm.storage.errors import ObjectChanged, ObjectNotFound, ObjectTooLarge, StorageError
from cotvtm.storage.store import ObjectInfo, wanted
from cotvtm.storage.uri import check_key, check_prefix


def fsync_dir(folder: str | Path) -> None:
    """Make a rename or a new name in ``folder`` survive a power loss (POSIX: fsync the folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # a platform whose folders cannot be opened (Windows) has nothing to sync
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(handle, tmp: str, path: Path) -> None:
    """The file's bytes on disk, then the rename, then the folder: only then does it count."""
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary name in the same folder, then rename: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are as readable as any file
            _publish(handle, tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def append_line(path: str | Path, line: str) -> None:
    """Append one line (a manifest row); appends of one short line are not interleaved."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line.rstrip("\n") + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    if new:
        fsync_dir(path.parent)


def atomic_copy(src: str | Path, dst: str | Path, chunk: int = 1 << 20) -> None:
    """Copy through a temporary name beside ``dst``, then rename: ``dst`` is whole or absent."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as source:
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                shutil.copyfileobj(source, handle, chunk)
                _publish(handle, tmp, dst)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@contextmanager
def _writing(path: Path):
    """A failed write (a folder where the file goes, a full disk, a read-only folder) as a
    StorageError naming the file."""
    try:
        yield
    except OSError as exc:
        raise StorageError(str(path), f"cannot be written ({exc.strerror or exc})") from None


class LocalStore:
    """A folder as a store. Writes go to a temporary name in the same folder, then a rename.

    Listing does not follow directory symlinks; file symlinks are listed (broken ones too), and
    reading one that resolves outside the root is refused, so each gets a clear error.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root).absolute()  # URIs in manifests and reports stay valid from anywhere

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def uri(self, key: str = "") -> str:
        return str(self.root / key) if key else str(self.root)

    def local_path(self, key: str) -> Path:
        path = self.root.joinpath(*check_key(key, f"{self.root}/").split("/"))
        try:
            resolved = path.resolve()
        except (RuntimeError, OSError) as exc:  # a symlink loop (RuntimeError before Python 3.13)
            raise StorageError(str(path), f"cannot be resolved ({exc})") from None
        if not resolved.is_relative_to(self.root.resolve()):
            raise StorageError(str(path), "symlink points outside the store's root; refused")
        return path

    def _existing(self, key: str) -> Path:
        path = self.local_path(key)
        if not path.is_file():
            raise ObjectNotFound(str(path), "is a folder, not a file" if path.is_dir() else "file not found")
        return path

    def list(self, prefix: str = "", extensions: Iterable[str] | None = None,
             hidden: bool = False) -> Iterator[ObjectInfo]:
        """Files under ``prefix``; with ``hidden``, those in or under hidden names too."""
        folder = self.root.joinpath(*check_prefix(prefix, f"{self.root}/").split("/")[:-1])
        keys = []
        for dirpath, dirnames, filenames in os.walk(folder):  # directory symlinks are not followed
            dirnames[:] = [name for name in dirnames if hidden or not name.startswith(".")]
            base = Path(dirpath).relative_to(self.root).as_posix()
            keys += [name if base == "." else f"{base}/{name}" for name in filenames]
        for key in sorted(keys):
            if key.startswith(prefix) and wanted(key, extensions, hidden):
                yield self._info(key)

    def _info(self, key: str) -> ObjectInfo:
        path = self.root / key
        try:
            stat = path.stat()
        except OSError:  # a broken symlink is still listed: reading it gives the reason
            stat = path.lstat()
        return ObjectInfo.of_stat(key, stat)

    def info(self, key: str) -> ObjectInfo:
        self._existing(key)
        return self._info(key)

    def exists(self, key: str) -> bool:
        return self.local_path(key).is_file()

    def download(self, key: str, local_path: str | Path, max_bytes: int | None = None,
                 identity: str | None = None) -> Path:
        """A copy of ``key``; with ``identity``, only of that content (ObjectChanged otherwise)."""
        path = self._existing(key)
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise ObjectTooLarge(str(path), f"{size} bytes is over the limit of {max_bytes} bytes")
        self._check_identity(key, identity)
        atomic_copy(path, local_path)
        try:
            self._check_identity(key, identity)
        except ObjectChanged:
            Path(local_path).unlink(missing_ok=True)
            raise
        return Path(local_path)

    def _check_identity(self, key: str, identity: str | None) -> None:
        if identity and self._info(key).identity != identity:
            raise ObjectChanged(self.uri(key), "the file changed since it was listed")

    def upload(self, local_path: str | Path, key: str) -> None:
        path = self.local_path(key)
        with _writing(path):
            atomic_copy(local_path, path)

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self.local_path(key)
        with _writing(path):
            atomic_write_bytes(path, data)

    def get_bytes(self, key: str) -> bytes:
        return self._existing(key).read_bytes()

    def append_line(self, key: str, line: str) -> None:
        append_line(self.local_path(key), line)

    def read_lines(self, key: str) -> Iterator[str]:
        """The file's lines one at a time (a manifest may outgrow memory); bytes that are not
        UTF-8 come surrogate-escaped, so that a reader can tell such a line apart."""
        path = self.local_path(key)
        if not path.is_file():
            return
        try:
            with open(path, "rb") as handle:
                for chunk in handle:
                    yield from (line.decode("utf-8", "surrogateescape") for line in chunk.splitlines())
        except OSError as exc:
            raise StorageError(str(path), f"cannot be read: {exc.strerror or exc}") from None

    def child(self, prefix: str) -> LocalStore:
        return LocalStore(self.local_path(prefix.rstrip("/")))

    def delete_prefix(self, prefix: str) -> None:
        if not prefix.strip("/"):
            raise StorageError(str(self.root), "refusing to delete a whole store: give a prefix")
        shutil.rmtree(self.local_path(prefix.rstrip("/")), ignore_errors=True)
