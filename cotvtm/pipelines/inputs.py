"""What the soundtrack job takes from its input, and what it leaves, each with its reason.

Every entry under the input is accounted for: a media file is an input; anything else is
ignored for one reason, counted in the summary and written to the manifest as a row of status
``ignored``:

    hidden               a name starting with '.' (a hidden folder counts once; its contents are
                         not looked at); ``--include-hidden`` processes hidden media, except the
                         job's own progress folder
    no media extension   a file whose name has no video, image or audio extension
    directory            a folder named like media ('clip.mp4/'), or an S3 folder marker
    refused symlink      a symbolic link that leads out of the input folder (a broken link is an
                         input, so that its error, "file not found", names it)

Ordinary folders are containers, not entries: their contents are.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cotvtm.errors import CotvtmError
from cotvtm.pipelines.progress import PROGRESS_DIR
from cotvtm.storage import StorageError, Store, is_s3_uri, open_store
from cotvtm.video.media import is_listed

HIDDEN, NO_EXTENSION, DIRECTORY, SYMLINK = "hidden", "no media extension", "directory", "refused symlink"


@dataclass
class Inputs:
    store: Store
    keys: dict[str, str]  # input key -> content identity, sorted by key
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (entry, reason)

    def counts(self) -> Counter:
        return Counter(reason for _, reason in self.ignored)


def survey(source: str, endpoint_url: str | None = None, include_hidden: bool = False) -> Inputs:
    """The input store, its media keys, and every other entry with why it is not an input."""
    if not is_s3_uri(source) and Path(source).is_file():
        store = open_store(Path(source).parent)
        return Inputs(store, {Path(source).name: store.info(Path(source).name).identity})
    if not is_s3_uri(source) and not Path(source).is_dir():
        raise CotvtmError(f"input {source} does not exist or is not a folder")
    store = open_store(source, endpoint_url)
    entries = _walk(Path(source), include_hidden, store) if not is_s3_uri(source) else _objects(store)
    keys, ignored = {}, []
    for entry, kind, identity in entries:
        reason = _reason(entry, kind, include_hidden)
        if reason:
            ignored.append((entry, reason))
        else:
            keys[entry] = identity()
    return Inputs(store, dict(sorted(keys.items())), sorted(ignored))


def _reason(entry: str, kind: str, include_hidden: bool) -> str | None:
    parts = entry.rstrip("/").split("/")
    if any(part.startswith(".") for part in parts) and (not include_hidden or PROGRESS_DIR in parts):
        return HIDDEN
    if kind != "file":
        return kind
    return None if is_listed(entry) else NO_EXTENSION


def _walk(root: Path, include_hidden: bool, store: Store):
    """(key, "file" | DIRECTORY | SYMLINK | HIDDEN, its content identity when asked) for every
    entry of a local folder tree; a hidden folder is looked into only with ``include_hidden``
    (never the progress folder). Only inputs are asked for their identity: one stat each."""
    real_root = root.resolve()
    stack = [""]
    while stack:
        base = stack.pop()
        with os.scandir(root / base if base else root) as found:
            for item in sorted(found, key=lambda e: e.name):
                key = f"{base}/{item.name}" if base else item.name
                if item.is_symlink():
                    target = Path(item.path).resolve()
                    if target.exists() and not target.is_relative_to(real_root):
                        yield key, SYMLINK, None
                        continue
                if item.is_dir():
                    if item.name.startswith(".") and (not include_hidden or item.name == PROGRESS_DIR):
                        yield key + "/", HIDDEN, None  # counted once, not looked into
                    elif is_listed(item.name) or item.is_symlink():
                        yield key + "/", DIRECTORY, None
                    else:
                        stack.append(key)
                else:
                    yield key, "file", lambda key=key: _identity(store, key)


def _identity(store: Store, key: str) -> str:
    """A broken link has none: reading it fails later with its own reason."""
    try:
        return store.info(key).identity
    except StorageError:
        return ""


def _objects(store: Store):
    """Every object of a bucket prefix from one listing, its identity with it."""
    for info in store.list(hidden=True):
        yield info.key, (DIRECTORY if info.key.endswith("/") else "file"), lambda info=info: info.identity
