"""Local-folder storage: listing inputs and writing outputs atomically."""

import os
import tempfile
from pathlib import Path

from cotvtm.errors import CotvtmError


def list_files(root: str | Path, extensions: tuple[str, ...]) -> tuple[list[tuple[str, Path]], int]:
    """(key, path) for files under ``root`` with a wanted extension, sorted; plus how many were ignored.

    The key is the path relative to ``root`` with '/' separators: outputs mirror it.
    A single file given as ``root`` is listed on its own.
    """
    root = Path(root)
    if root.is_file():
        return [(root.name, root)], 0
    if not root.is_dir():
        raise CotvtmError(f"input {root} does not exist or is not a folder")
    found, ignored = [], 0
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if path.suffix.lower() in extensions:
            found.append((path.relative_to(root).as_posix(), path))
        else:
            ignored += 1
    return found, ignored


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary name in the same folder, then rename: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_line(path: str | Path, line: str) -> None:
    """Append one line (a manifest row); appends of one short line are not interleaved."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line.rstrip("\n") + "\n")
