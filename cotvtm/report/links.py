"""Keys and links: turning full URIs from the manifest into keys, and keys into relative URLs.

The page must work from a local folder and from a bucket served over HTTP, so every link is
relative to the page and each path segment is percent-encoded: a key may hold spaces, quotes,
'#', '?', '%', ':' or newlines, and none of them may change what the link points at.
"""

import posixpath
from pathlib import Path
from urllib.parse import quote


def key_of(root_uri: str, uri: str) -> str | None:
    """The key of ``uri`` under a store whose root is ``root_uri``; None when it lies elsewhere.

    Local roots are also compared as resolved paths, since a run may have named the same
    folder differently (relative vs absolute, a symlink).
    """
    if not uri:
        return None
    base = root_uri.rstrip("/") + "/"
    if uri.startswith(base):
        return uri[len(base):] or None
    if "://" in root_uri or "://" in uri:
        return None
    try:
        return Path(uri).resolve().relative_to(Path(root_uri).resolve()).as_posix()
    except (ValueError, OSError, RuntimeError):  # elsewhere, a NUL in the name, a symlink loop
        return None


def sibling(key: str, name: str) -> str:
    """The key of file ``name`` in the same folder as ``key`` (a sidecar names its video so)."""
    folder = posixpath.dirname(key)
    return f"{folder}/{name}" if folder else name


def relative_url(page_key: str, target_key: str) -> str:
    """A URL for ``target_key`` relative to the page at ``page_key``, each segment encoded.

    ``quote(..., safe="")`` also encodes ':' so that a first segment like 'a:b.mp4' cannot be
    read as a URL scheme, and '/' inside nothing: keys use '/' only as the separator. A local
    name that is not UTF-8 is encoded as its bytes, so the link still opens that file.
    """
    start = posixpath.dirname(page_key) or "."
    rel = posixpath.relpath(target_key, start)
    return "/".join(quote(part, safe="", errors="surrogateescape") for part in rel.split("/"))
