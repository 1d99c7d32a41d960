"""Local scratch space for stages that need a real file: ffmpeg and decoders read paths.

Keys can hold anything (newlines, quotes, 200+ characters), so scratch names are a hash of
the key plus a cleaned-up extension; the key itself never becomes a local file name.
"""

import hashlib
import re
import shutil
import tempfile
import weakref
from pathlib import Path, PurePosixPath

from cotvtm.storage.store import Store


class Scratch:
    """A private temporary folder (one per actor) for copies of remote objects."""

    def __init__(self, prefix: str = "cotvtm-"):
        self.prefix = prefix
        self._dir: Path | None = None  # made on first use: local-only runs leave nothing behind

    @property
    def dir(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix=self.prefix))
            weakref.finalize(self, shutil.rmtree, self._dir, True)  # gone with the actor
        return self._dir

    def path_for(self, key: str) -> Path:
        suffix = re.sub(r"[^A-Za-z0-9.]", "", PurePosixPath(key).suffix)[:12].lower()
        return self.dir / (hashlib.sha256(key.encode()).hexdigest()[:24] + suffix)

    def fetch(self, store: Store, key: str, max_bytes: int | None = None) -> tuple[Path, bool]:
        """A local path for ``key``: the file itself when the store is local (False), else a
        downloaded copy that the caller removes (True)."""
        local = store.local_path(key)
        if local is not None:
            return local, False
        return store.download(key, self.path_for(key), max_bytes=max_bytes), True
