"""Which store a location names: a local folder or an ``s3://bucket/prefix``."""

from pathlib import Path

from cotvtm.storage.store import Store
from cotvtm.storage.uri import is_s3_uri, local_root, parse_s3_uri


def open_store(uri: str | Path, endpoint_url: str | None = None, transfer=None) -> Store:
    """A store for a local path or an ``s3://bucket/prefix`` URI.

    ``endpoint_url`` (else ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``) selects an
    S3-compatible server; ``transfer`` is a boto3 ``TransferConfig`` for uploads.
    """
    if is_s3_uri(uri):
        from cotvtm.storage.s3 import S3Store  # boto3 is imported only when S3 is used

        return S3Store(parse_s3_uri(str(uri)), endpoint_url=endpoint_url, transfer=transfer)
    from cotvtm.storage.local import LocalStore

    return LocalStore(local_root(uri))


def read_file(uri: str | Path, endpoint_url: str | None = None) -> bytes:
    """One file's bytes, a local path or an ``s3://`` URI, through the store of its folder."""
    text = str(uri)
    if is_s3_uri(text):
        parent, _, name = text.rpartition("/")
        return open_store(parent, endpoint_url).get_bytes(name)
    path = Path(text).absolute()
    return open_store(path.parent).get_bytes(path.name)
