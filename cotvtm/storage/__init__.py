"""Where inputs come from and outputs go: a local folder or ``s3://bucket/prefix``."""

from cotvtm.storage.errors import DeadlineExceeded, ObjectChanged, ObjectNotFound, ObjectTooLarge, StorageError
from cotvtm.storage.model_cache import resolve_model_dir
from cotvtm.storage.open import open_store, read_file
from cotvtm.storage.store import ObjectInfo, Store
from cotvtm.storage.uri import is_s3_uri

__all__ = ["DeadlineExceeded", "ObjectChanged", "ObjectInfo", "ObjectNotFound", "ObjectTooLarge", "Store",
           "StorageError", "is_s3_uri", "open_store", "read_file", "resolve_model_dir"]
