"""Models and checkpoints stored under ``s3://`` prefixes, cached as local directories.

``from_pretrained`` needs a directory, so an S3 prefix is downloaded once into a cache folder
named by the URI and the objects' ETags: a changed checkpoint gets a new folder, an unchanged
one is never fetched again. The folder appears whole or not at all (download into a temporary
folder beside it, then rename), so concurrent workers on one machine cannot see half a model.
Once there it is a local model folder like any other: checked entry by entry, and named by
its content, on every run (``cotvtm.model_folders``), so a cached copy changed on disk is seen.
"""

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from cotvtm.storage.errors import StorageError
from cotvtm.storage.open import open_store
from cotvtm.storage.uri import is_s3_uri


def resolve_model_dir(ref: str, cache_dir: str | Path, endpoint_url: str | None = None) -> str:
    """A local directory for ``ref``: s3:// prefixes are fetched; paths and hub ids pass through."""
    if not is_s3_uri(ref):
        return ref
    store = open_store(ref, endpoint_url)
    objects = list(store.list())
    if not objects:
        raise StorageError(store.uri(), "no model files under this prefix")
    identity = [store.uri(), [(o.key, o.etag, o.size) for o in objects]]
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", store.uri().rstrip("/").rsplit("/", 1)[-1])
    target = Path(cache_dir) / f"{name}-{digest}"
    if target.is_dir():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for obj in objects:
            store.download(obj.key, scratch.joinpath(*obj.key.split("/")))
        os.rename(scratch, target)
    except OSError:
        if not target.is_dir():  # another process renamed its copy first: use that one
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return str(target)
