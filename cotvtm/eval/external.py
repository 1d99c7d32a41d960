"""Music another system made for the test set, scored beside the project's own methods.

The paper compares CoT-VTM with systems this project does not run (M2UGen, CoDi, VidMuse). Their
audio for the test items is read from a folder (local or ``s3://``): one file per item, named by
the item's id as the project names its own saved audio (``audio/<method>/<id>.wav``: characters
outside ``A-Za-z0-9._#-`` become ``_``), in any common audio format. Each clip is decoded to mono
at the references' rate and cut or padded to the item's length, as the project's own methods are.
A folder without a file for an item is an error that names the item and the file looked for.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path, PurePosixPath

import numpy as np

from cotvtm.errors import CotvtmError, MediaError
from cotvtm.eval.testset import REFERENCE_RATE, Item, decode_audio, fit

AUDIO = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac")


def file_name(item_id: str) -> str:
    """An item's file name stem, as the project saves its own audio."""
    return re.sub(r"[^A-Za-z0-9._#-]+", "_", item_id)


def parse(values: list[str]) -> dict[str, str]:
    """``NAME=DIR`` options -> {name: folder}; a clear error for a malformed or repeated one."""
    found = {}
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise CotvtmError(f"--external {value!r}: expected NAME=DIR (a name for the table, the folder of its "
                              "audio)")
        if name in found:
            raise CotvtmError(f"--external {name}: given twice")
        found[name.strip()] = folder.strip()
    return found


def load_external(name: str, folder: str, items: list[Item], endpoint_url: str | None = None) -> list[np.ndarray]:
    """Each item's clip from ``folder``: mono float32 at the references' rate, the item's length."""
    from cotvtm.storage import StorageError, open_store

    try:
        store = open_store(folder, endpoint_url)
        present = {PurePosixPath(info.key).stem: info.key for info in store.list(extensions=AUDIO)}
    except StorageError as exc:
        raise CotvtmError(f"--external {name}={folder}: {exc.reason}") from None
    clips = []
    for item in items:
        key = present.get(file_name(item.id))
        if key is None:
            raise CotvtmError(f"--external {name}={folder}: no audio for test item {item.id!r} (looked for "
                              f"{file_name(item.id)} with one of {', '.join(AUDIO)})")
        clips.append(fit(_decode(store, key, name), int(round(item.seconds * REFERENCE_RATE))))
    return clips


def _decode(store, key: str, name: str) -> np.ndarray:
    local = store.local_path(key)
    try:
        if local is not None:
            return decode_audio(str(local))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / PurePosixPath(key).name
            store.download(key, path)
            return decode_audio(str(path))
    except MediaError as exc:
        raise CotvtmError(f"--external {name}: {store.uri(key)}: {exc.reason}") from None

