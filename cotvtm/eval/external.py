"""Music another system made for the test set, scored beside the project's own methods.

The paper compares CoT-VTM with systems this project does not run (M2UGen, CoDi, VidMuse). Their
audio for the test items is read from a folder (local or ``s3://``): exactly one file per item,
at ``DIR/<name><ext>`` in the folder itself (subfolders are not searched, so a stray copy deeper
down can never stand in for the item's file). ``<name>`` is the item's id as the project names
its own saved audio (``audio/<method>/<id>.wav``: characters outside ``A-Za-z0-9._#-`` become
``_``) and ``<ext>`` one of ``AUDIO``, in any case. No file for an item is an error naming the
path expected; two (``noise.wav`` and ``noise.mp3``) an error naming both. Only the item's length
is decoded (ffmpeg ``-t``), to mono at the references' rate, then padded to the item's length
where shorter, as the project's own methods are: a 30-minute file costs what a 10 s one does.
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


def load_external(name: str, folder: str, items: list[Item], endpoint_url: str | None = None) -> list[np.ndarray]:
    """Each item's clip from ``folder``: mono float32 at the references' rate, the item's length.
    Every item's file is found before any is decoded, so a missing one fails at once."""
    from cotvtm.storage import StorageError, open_store

    where = f"--external {name}={folder}"
    try:
        store = open_store(folder, endpoint_url)
        found = _top_level(store)
    except StorageError as exc:
        raise CotvtmError(f"{where}: {exc.reason}") from None
    keys = [_item_key(where, store, found, item) for item in items]
    return [fit(_decode(store, key, name, item.seconds), int(round(item.seconds * REFERENCE_RATE)))
            for item, key in zip(items, keys)]


def _top_level(store) -> dict[str, list[str]]:
    """The audio files in the folder itself (no subfolder), by name without extension."""
    found: dict[str, list[str]] = {}
    for info in store.list(extensions=AUDIO):
        if "/" not in info.key:
            found.setdefault(PurePosixPath(info.key).stem, []).append(info.key)
    return found


def _item_key(where: str, store, found: dict[str, list[str]], item: Item) -> str:
    """The one file for ``item``, or an error naming the path expected or the files that compete."""
    stem = file_name(item.id)
    keys = found.get(stem, [])
    if len(keys) > 1:
        raise CotvtmError(f"{where}: {len(keys)} files for test item {item.id!r} "
                          f"({', '.join(store.uri(key) for key in sorted(keys))}): keep one")
    if not keys:
        raise CotvtmError(f"{where}: no audio for test item {item.id!r}: expected {store.uri(stem)}"
                          f"{', '.join(AUDIO[:-1])} or {AUDIO[-1]} (subfolders are not searched)")
    return keys[0]


def _decode(store, key: str, name: str, seconds: float) -> np.ndarray:
    """The first ``seconds`` of ``key``, downloaded first when the store is remote."""
    local = store.local_path(key)
    try:
        if local is not None:
            return decode_audio(str(local), seconds=seconds)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / PurePosixPath(key).name
            store.download(key, path)
            return decode_audio(str(path), seconds=seconds)
    except MediaError as exc:
        raise CotvtmError(f"--external {name}: {store.uri(key)}: {exc.reason}") from None
