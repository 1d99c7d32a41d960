"""Parsing locations: ``s3://bucket/prefix`` or a local path, and keys relative to them."""

import re
from dataclasses import dataclass

from cotvtm.storage.errors import StorageError

S3_SCHEME = "s3://"
# Today's S3 rules for bucket names (3-63 characters; lowercase letters, digits, '.', '-').
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def is_s3_uri(uri) -> bool:
    return str(uri).startswith(S3_SCHEME)


def check_key(key: str, where: str = "") -> str:
    """A key is a relative '/'-separated path with no empty, '.' or '..' parts.

    The same rule on both backends keeps every write inside the store's root, and makes a
    key mean the same object locally and on S3 (where 'a//b' and 'a/b' would differ).
    """
    if not isinstance(key, str) or not key or "\0" in key or any(
            part in ("", ".", "..") for part in key.split("/")):
        raise StorageError(f"{where}{key}", f"bad key {key!r}: expected a relative path like 'a/b.mp4'")
    return key


def check_prefix(prefix: str, where: str = "") -> str:
    """A listing prefix: '' or the start of a key ('a/', 'a/b')."""
    if prefix:
        check_key(prefix[:-1] if prefix.endswith("/") else prefix, where)
    return prefix


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix ('' or ending in '/')."""

    bucket: str
    prefix: str = ""

    def key(self, key: str) -> str:
        return self.prefix + key

    def uri(self, key: str = "") -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.prefix}{key}"


def parse_s3_uri(uri: str) -> S3Location:
    """``s3://bucket/some/prefix`` -> S3Location('bucket', 'some/prefix/')."""
    if not is_s3_uri(uri):
        raise StorageError(uri, "bad S3 URI: expected s3://bucket/prefix")
    bucket, _, prefix = uri[len(S3_SCHEME):].partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise StorageError(uri, f"bad S3 URI: {bucket!r} is not a valid bucket name "
                                "(3-63 lowercase letters, digits, '.' or '-')")
    prefix = prefix.strip("/")
    if prefix:
        check_key(prefix, f"{S3_SCHEME}{bucket}/")
    return S3Location(bucket, prefix + "/" if prefix else "")


def local_root(uri: str) -> str:
    """The path of a local location (``file://`` accepted); other schemes are refused."""
    text = str(uri)
    if text.startswith("file://"):
        text = text[len("file://"):]
    elif "://" in text:
        raise StorageError(text, "unsupported location: use a local path or s3://bucket/prefix")
    if not text:
        raise StorageError(repr(uri), "empty location")
    return text
