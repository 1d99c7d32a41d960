"""Storage errors: one line that names the location and says what is wrong."""

from cotvtm.errors import CotvtmError


class StorageError(CotvtmError):
    """A location cannot be read or written (bad URI, missing bucket, access denied, ...)."""

    def __init__(self, uri: str, reason: str):
        reason = " ".join(str(reason).split())  # one line, whatever the server sent
        super().__init__(f"{uri}: {reason}")
        self.uri = str(uri)
        self.reason = reason


class ObjectNotFound(StorageError):
    """No object (or file) at this key."""


class ObjectTooLarge(StorageError):
    """The object is over the size limit the caller set."""


class ObjectChanged(StorageError):
    """The object's content is no longer the one it was listed (or prepared) with."""


class DeadlineExceeded(StorageError):
    """An S3 call did not finish within its deadline: the server or the network stalled."""


class TooSlow(DeadlineExceeded):
    """An S3 transfer moved its data slower than the least rate it is allowed: a server or a
    network that trickles, whatever size it declared."""
