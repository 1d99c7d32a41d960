"""Errors that carry a user-facing reason instead of a traceback."""


class CotvtmError(Exception):
    """Base class: the message is meant to be shown to the user as is."""


class MediaError(CotvtmError):
    """An input file cannot be used; ``reason`` says why in one line."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class ModelError(CotvtmError):
    """A model reference cannot be resolved or loaded."""
