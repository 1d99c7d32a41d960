"""Local scratch space for stages that need a real file: ffmpeg and decoders read paths.

Keys can hold anything (newlines, quotes, 200+ characters), so scratch names are a hash of
the key plus a cleaned-up extension; the key itself never becomes a local file name.

Every folder is named for the process that owns it (pid and start time), under one folder per
user in the temporary folder. A worker killed outright (SIGKILL, out of memory) cannot clean
up, so the next scratch folder made on that machine removes those whose owner is gone.
"""

import hashlib
import os
import re
import shutil
import tempfile
import weakref
from pathlib import Path, PurePosixPath

from cotvtm.storage import pin
from cotvtm.storage.store import Store

_swept = False  # once per process


def _started(pid: int) -> str:
    """When ``pid`` started (Linux: /proc), so that a reused pid does not pass for the owner."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "0"  # unknown here: the pid alone decides


def _alive(owner: str) -> bool:
    """Whether the process named by a folder's ``<pid>-<start>`` prefix still runs."""
    try:
        pid, start = owner.split("-")[:2]
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError):
        return True  # not a name of ours, or another user's process: leave it
    return start == "0" or _started(int(pid)) in (start, "0")


def scratch_root() -> Path:
    return Path(tempfile.gettempdir()) / f"cotvtm-scratch-{os.getuid() if hasattr(os, 'getuid') else 0}"


def sweep(root: Path) -> list[Path]:
    """Remove the scratch folders under ``root`` whose owning process is gone."""
    removed = []
    for folder in root.iterdir() if root.is_dir() else ():
        if folder.is_dir() and not _alive(folder.name):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


class Scratch:
    """A private temporary folder (one per actor) for copies of remote objects."""

    def __init__(self):
        self._dir: Path | None = None  # made on first use: local-only runs leave nothing behind

    @property
    def dir(self) -> Path:
        global _swept
        if self._dir is None:
            root = scratch_root()
            root.mkdir(mode=0o700, exist_ok=True)
            if not _swept:
                sweep(root)
                _swept = True
            pid = os.getpid()
            self._dir = Path(tempfile.mkdtemp(prefix=f"{pid}-{_started(pid)}-", dir=root))
            weakref.finalize(self, shutil.rmtree, self._dir, True)  # gone with the actor
        return self._dir

    def path_for(self, key: str) -> Path:
        suffix = re.sub(r"[^A-Za-z0-9.]", "", PurePosixPath(key).suffix)[:12].lower()
        return self.dir / (hashlib.sha256(key.encode()).hexdigest()[:24] + suffix)

    def pinned(self, store: Store, key: str, identity: str = "", max_bytes: int | None = None):
        """``key`` read as the content ``identity`` names (``storage/pin.py``), for the length of a
        ``with`` block: the local file itself, or a copy downloaded here and removed after."""
        return pin.pinned(store, key, identity, self.path_for(key), max_bytes)
