"""What a local model folder may hold, and its content identity.

Loaders open whatever names a folder's configs list, and opening a FIFO blocks for ever while
reading a device never ends. So before anything in a folder is opened, every entry of its tree
is looked at with ``stat`` alone and must be a regular file or a folder; anything else is refused
by name. A symbolic link is followed: its target must be a regular file (or a folder, walked in
turn), wherever it lies. The hub's own cache is made of such links (a snapshot's files point
into ``../../blobs``), a link grants nothing the user running the job cannot already read, and
the identity below is the target's content, so a link changes nothing that a copy would not.
A link that is broken, or that leads back to a folder above it (a loop), is refused.

The identity (``folder_digest``) hashes every file of the tree by content, whatever its
extension (weights, configs, tokenizers, a pipeline's subfolders, sharded weights), except
``NOT_HASHED``: the model card, which no loader reads (only the licence check does) and whose
edits change no output. ``NOT_WALKED`` is never looked at: what a clone or a hub download keeps
of its own history, which no loader reads and which changes when the model does not. A
safetensors file counts by its parsed header and its tensor bytes, so two saves of the same
tensors whose header lists metadata in another order are the same file.
"""

import hashlib
import json
import os
import stat
from pathlib import Path

from cotvtm.errors import ModelRefError, printable

# A model holds tens of files (a diffusers pipeline about forty, a sharded giant a few hundred):
# a folder with more entries is the wrong folder (a home, a dataset), not worth walking to the end.
MAX_ENTRIES = 10_000
CHUNK = 1 << 20  # files are hashed a MiB at a time: memory stays bounded whatever their size
# A safetensors header takes about a hundred bytes per tensor (a sharded giant's stays under a MiB):
# one longer than this is hashed as raw bytes, not parsed, so parsing never holds much.
MAX_HEADER = 16 << 20
NOT_HASHED = frozenset({"README.md", ".gitattributes"})  # the model card; git's LFS attributes (root only)
NOT_WALKED = frozenset({".git", ".cache"})  # a clone's history; huggingface_hub's download records (root only)
_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def regular_files(option: str, root: str | Path) -> list[tuple[str, Path]]:
    """Every file under ``root`` as (path relative to it, path), sorted, links followed;
    ``ModelRefError`` naming the first entry that is not a regular file or a folder."""
    root = Path(root)
    files, pending, seen = [], [(root, "", frozenset({_identity(os.stat(root))}))], 0
    while pending:
        folder, rel, above = pending.pop()
        for name in _listing(option, root, folder, rel):
            seen += 1
            if seen > MAX_ENTRIES:
                raise ModelRefError(option, str(root), f"more than {MAX_ENTRIES} entries: not a model folder")
            path, inner = folder / name, rel + name
            if inner in NOT_WALKED:
                continue
            found = _stat(option, root, path, inner)
            if stat.S_ISDIR(found.st_mode):
                if _identity(found) in above:
                    raise _refused(option, root, inner, "is a link back to a folder above it (a loop)")
                pending.append((path, inner + "/", above | {_identity(found)}))
            else:
                files.append((inner, path))
    return sorted(files)


def folder_digest(option: str, root: str | Path) -> str:
    """The content identity of a model folder: see the module's docstring."""
    digest = hashlib.sha256()
    for rel, path in regular_files(option, root):
        if rel not in NOT_HASHED:
            digest.update(os.fsencode(rel) + b"\0" + file_digest(option, Path(root), path, rel))
    return digest.hexdigest()


def file_digest(option: str, root: Path, path: Path, rel: str) -> bytes:
    """SHA-256 of one file, read a chunk at a time. Opened without blocking and checked on the
    open descriptor: a file swapped for a FIFO since the walk is refused, not read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _refused(option, root, rel, f"cannot be read ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as handle:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise _refused(option, root, rel, f"is not a regular file ({_kind(found.st_mode)})")
        digest = hashlib.sha256(_safetensors_header(handle, found.st_size) if rel.endswith(".safetensors") else b"")
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.digest()


def _safetensors_header(handle, size: int) -> bytes:
    """A safetensors header as canonical JSON (sorted keys), the handle left at the tensors;
    a header that does not parse is hashed with the rest as raw bytes (the loader refuses it)."""
    length = int.from_bytes(handle.read(8), "little")
    if 0 < length <= min(MAX_HEADER, size - 8):
        try:
            return b"safetensors\0" + json.dumps(json.loads(handle.read(length)), sort_keys=True).encode()
        except (ValueError, RecursionError):  # not JSON, or nested past what the parser takes
            pass
    handle.seek(0)
    return b""


def _listing(option: str, root: Path, folder: Path, rel: str) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entry.name for entry in entries)
    except OSError as exc:
        raise _refused(option, root, rel.rstrip("/") or ".", f"cannot be listed ({exc.strerror or exc})") from None


def _stat(option: str, root: Path, path: Path, rel: str) -> os.stat_result:
    """The entry's stat through any link, never opening it; a regular file must be readable."""
    try:
        found = os.stat(path)
    except OSError as exc:
        broken = isinstance(exc, FileNotFoundError) and path.is_symlink()
        why = f"is a broken link (to {printable(os.readlink(path))})" if broken else \
            f"cannot be read ({exc.strerror or exc})"
        raise _refused(option, root, rel, why) from None
    if stat.S_ISREG(found.st_mode):
        if not os.access(path, os.R_OK):
            raise _refused(option, root, rel, "cannot be read (permission denied)")
    elif not stat.S_ISDIR(found.st_mode):
        target = f"a link to {printable(os.readlink(path))}, " if path.is_symlink() else ""
        raise _refused(option, root, rel, f"is not a regular file ({target}{_kind(found.st_mode)})")
    return found


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a file")


def _identity(found: os.stat_result) -> tuple[int, int]:
    return found.st_dev, found.st_ino


def _refused(option: str, root: Path, rel: str, why: str) -> ModelRefError:
    """The error naming one entry of the folder, by its path inside it."""
    return ModelRefError(option, str(root), f"{printable(rel)} {why}")
