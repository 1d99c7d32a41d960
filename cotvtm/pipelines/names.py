"""Where each input's outputs go: names that no two inputs share.

An input ``a/b.mp4`` gets ``a/b.mp4.<digest>.mp4`` and the sidecar ``a/b.mp4.<digest>.json``;
an image ``a/c.jpg`` gets ``a/c.jpg.<digest>.m4a`` (and ``a/c.jpg.<digest>.mp4`` with
``--image-video``). ``<digest>`` hashes the settings and the models. With ``--variants N`` the
second and later tracks go to ``a/b.mp4.<digest>.v2.mp4`` (and ``.v2.json``) and so on. The input's whole name,
extension and its case included, is in the output's name, so ``a.jpg`` and ``a.png``, or
``b.mpg`` and ``b.flv`` (both written as ``.mkv``), or ``b.MP4`` and ``b.mp4`` can never share
an output: each output name ends in ``.<digest><suffix>`` with a suffix from a fixed set, so
the input's name can be read back from it.

Two cases can still meet: a name too long for a file system, cut and completed with a hash of
the whole key (a hash clash), and two keys that differ only in case on an output store that
ignores case (``ignores_case``). ``clashes`` finds both before any work, and each such input
gets an error row instead of an output that another one would overwrite.

Output folders written before the input's extension was part of the name (``a/b.<digest>.mp4``)
stay valid: ``legacy_output_keys`` names such an output, and the job skips it when its sidecar
says it was made from this input.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections import defaultdict
from pathlib import Path, PurePosixPath

from cotvtm.video.media import MUSIC_SUFFIX, output_suffix

MAX_NAME_BYTES = 200  # + ".<digest>.<suffix>" stays under the 255 bytes file systems allow
_HASH_CHARS = 16


def output_keys(key: str, digest: str, variant: int = 1) -> tuple[str, str]:
    """(output, sidecar) keys: a pure function of the input key, the config digest and the
    variant (``--variants``: variant 1 is named as without it, variant k gets ``.v<k>`` after
    the digest, so that a video's variants sort together)."""
    return _keys(key, f"{digest}.v{variant}" if variant > 1 else digest, PurePosixPath(key).name)


def still_key(output: str) -> str:
    """An image's still-image video, beside its music."""
    return output[: -len(MUSIC_SUFFIX)] + ".mp4"


def legacy_output_keys(key: str, digest: str) -> tuple[str, str]:
    """Where earlier versions put the outputs of ``key``: the name without its extension."""
    return _keys(key, digest, PurePosixPath(key).stem)


def clashes(keys, digest: str, ignore_case: bool = False) -> dict[str, list[str]]:
    """Input key -> the other inputs whose outputs would have the same name (compared without
    case when the output store ignores it); empty for nearly every input folder."""
    fold = str.casefold if ignore_case else str
    by_name: dict[str, set[str]] = defaultdict(set)
    for key in keys:
        for name in output_keys(key, digest):
            by_name[fold(name)].add(key)
    found: dict[str, set[str]] = defaultdict(set)
    for sharing in by_name.values():
        for key in sharing:
            found[key] |= sharing - {key}
    return {key: sorted(others) for key, others in found.items() if others}


def ignores_case(folder: Path | None) -> bool:
    """Whether a local output folder's file system takes ``A`` and ``a`` for one name (macOS and
    Windows defaults, some network shares); object stores never do (``folder`` None)."""
    if folder is None:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(prefix=".cotvtm-Case-", dir=folder) as probe:
        name = Path(probe.name).name
        return (folder / name.swapcase()).exists()


def _keys(key: str, digest: str, name: str) -> tuple[str, str]:
    """The outputs of ``key`` named after ``name`` (fitted), in the input's folder."""
    parent, name = PurePosixPath(key).parent, _fit(name, key)
    stem = name if str(parent) == "." else str(parent / name)
    return f"{stem}.{digest}{output_suffix(key)}", f"{stem}.{digest}.json"


def _fit(name: str, key: str) -> str:
    """``name`` if short enough, else cut on a character boundary and completed with a hash of
    the whole key."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= MAX_NAME_BYTES:
        return name
    cut = raw[:MAX_NAME_BYTES - _HASH_CHARS - 1].decode(errors="ignore")
    whole = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{cut}-{whole[:_HASH_CHARS]}"

