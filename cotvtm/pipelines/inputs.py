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
    symlink loop         a symbolic link that leads back to itself, directly or through others
    unreadable folder    a folder that cannot be listed (permission denied, I/O error): what it
                         holds is unknown, so it counts once
    vanished             a folder removed while the input was being surveyed
    name too long        a path longer than the system can open
    undecodable name     a name that is not valid UTF-8 (a folder counts once)
    special file         a FIFO, socket or device named like media: reading it could block forever

A file that cannot be read (permission denied) stays an input: its error names it.

Keys are always valid Unicode: an output and an S3 key are named after the input's key, and a
manifest row is UTF-8 JSON. So a name that is not valid UTF-8 is never an input, and its row
shows the name with each byte that is not UTF-8 written as ``\\xNN`` (never a lone surrogate).

Ordinary folders are containers, not entries: their contents are.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cotvtm.errors import CotvtmError
from cotvtm.pipelines.progress import PROGRESS_DIR
from cotvtm.storage import ObjectInfo, Store, is_s3_uri, open_store
from cotvtm.video.media import is_listed

HIDDEN, NO_EXTENSION, DIRECTORY, SYMLINK = "hidden", "no media extension", "directory", "refused symlink"
LOOP, UNREADABLE, VANISHED, TOO_LONG = "symlink loop", "unreadable folder", "vanished", "name too long"
UNDECODABLE, SPECIAL = "undecodable name", "special file"
FILE, FOLDER = "file", "folder"

_NEVER_READABLE = {errno.ELOOP: LOOP, errno.ENAMETOOLONG: TOO_LONG}  # a path no later read can open
_CAUSES = {**_NEVER_READABLE, errno.ENOENT: VANISHED, errno.ENOTDIR: VANISHED}


@dataclass
class Inputs:
    store: Store
    keys: dict[str, str]  # input key -> content identity, sorted by key
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (entry, reason)

    def counts(self) -> Counter:
        return Counter(reason for _, reason in self.ignored)


class _Refused(Exception):
    """An entry that cannot be an input, with the reason its manifest row gives."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def survey(source: str, endpoint_url: str | None = None, include_hidden: bool = False) -> Inputs:
    """The input store, its media keys, and every other entry with why it is not an input."""
    if is_s3_uri(source):
        store = open_store(source, endpoint_url)
        entries = _objects(store)
    elif not stat.S_ISDIR(_source_mode(source)):
        return _single(Path(source))
    else:
        store = open_store(source, endpoint_url)
        entries = _walk(source, include_hidden)
    keys, ignored = {}, []
    for entry, kind, identity in entries:
        reason = _reason(entry, kind, include_hidden)
        if reason is None:
            try:
                keys[entry] = identity()
            except _Refused as refused:
                reason = refused.reason
        if reason:
            ignored.append((entry, reason))
    return Inputs(store, dict(sorted(keys.items())), sorted(ignored))


def _source_mode(source: str) -> int:
    """The input's file type; a clear error when it cannot be looked at."""
    try:
        return os.stat(source).st_mode
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise CotvtmError(f"input {source}: no such file or folder") from None
        raise CotvtmError(f"input {source} cannot be read: {_CAUSES.get(exc.errno, exc.strerror)}") from None


def _single(path: Path) -> Inputs:
    """One file given as the input: an input unless it can never be read."""
    store = open_store(path.parent)
    shown = _shown(path.name)
    try:
        if shown != path.name:
            raise _Refused(UNDECODABLE)
        return Inputs(store, {path.name: _identity(str(path), path.name)})
    except _Refused as refused:
        return Inputs(store, {}, [(shown, refused.reason)])


def _reason(entry: str, kind: str, include_hidden: bool) -> str | None:
    parts = entry.rstrip("/").split("/")
    if any(part.startswith(".") for part in parts) and (not include_hidden or PROGRESS_DIR in parts):
        return HIDDEN
    if kind != FILE:
        return kind
    return None if is_listed(entry) else NO_EXTENSION


def _walk(source: str, include_hidden: bool):
    """(key, FILE or a reason, its content identity when asked) for every entry of a local
    folder tree; a hidden folder is looked into only with ``include_hidden`` (never the
    progress folder). Only inputs are asked for their identity: one stat each."""
    real_root = Path(os.path.realpath(source))
    stack = [""]
    while stack:
        base = stack.pop()
        try:
            listed = _listing(os.path.join(source, base))
        except _Refused as refused:
            if not base:
                raise CotvtmError(f"input {source} cannot be read: {refused.detail}") from None
            yield base + "/", refused.reason, None
            continue
        for item in listed:
            name, kind = _shown(item.name), _kind(item, real_root)
            key = f"{base}/{name}" if base else name
            if kind == FOLDER:
                if item.name.startswith(".") and (not include_hidden or item.name == PROGRESS_DIR):
                    yield key + "/", HIDDEN, None  # counted once, not looked into
                elif name != item.name:
                    yield key + "/", UNDECODABLE, None
                elif is_listed(item.name) or item.is_symlink():
                    yield key + "/", DIRECTORY, None
                else:
                    stack.append(key)
            elif kind == FILE and name != item.name:
                yield key, UNDECODABLE, None
            elif kind == FILE:
                yield key, FILE, lambda path=item.path, key=key: _identity(path, key)
            else:
                yield key, kind, None


def _listing(folder: str) -> list[os.DirEntry]:
    """A folder's entries in name order; _Refused when it cannot be listed (to the end)."""
    try:
        with os.scandir(folder) as found:
            return sorted(found, key=lambda item: item.name)
    except OSError as exc:
        raise _Refused(_CAUSES.get(exc.errno, UNREADABLE), exc.strerror or str(exc)) from None


def _kind(item: os.DirEntry, real_root: Path) -> str:
    """FOLDER, FILE, or why the entry is not followed. A link is looked through once: a broken
    or unreachable one is a FILE, so that reading it gives the reason."""
    try:
        if not item.is_symlink():
            return FOLDER if item.is_dir(follow_symlinks=False) else FILE
        target = os.stat(item.path)
    except OSError as exc:
        return _NEVER_READABLE.get(exc.errno, FILE)
    if not Path(os.path.realpath(item.path)).is_relative_to(real_root):
        return SYMLINK
    return FOLDER if stat.S_ISDIR(target.st_mode) else FILE


def _identity(path: str, key: str) -> str:
    """A file's content identity, as the store gives it. A file that cannot be looked at has
    none: reading it fails later with its own reason, unless it can never be read at all."""
    try:
        found = os.stat(path)
    except OSError as exc:
        if exc.errno in _NEVER_READABLE:
            raise _Refused(_NEVER_READABLE[exc.errno]) from None
        return ""
    if not stat.S_ISREG(found.st_mode):
        raise _Refused(SPECIAL)
    return ObjectInfo.of_stat(key, found).identity


def _shown(name: str) -> str:
    """``name`` as valid Unicode: each byte that is not UTF-8 (surrogate-escaped by the OS
    layer) as ``\\xNN``; a valid name comes back unchanged."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _objects(store: Store):
    """Every object of a bucket prefix from one listing, its identity with it."""
    for info in store.list(hidden=True):
        yield info.key, (DIRECTORY if info.key.endswith("/") else FILE), lambda info=info: info.identity
