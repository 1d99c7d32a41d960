"""Errors that carry a user-facing reason instead of a traceback, and how a command ends on one."""

import sys

EXIT_USAGE = 2  # a usage or set-up error (bad option, unknown model)
EXIT_INTERRUPTED = 130


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


def guarded(call, prog: str = "cotvtm") -> int:
    """Run a command: a CotvtmError is one line on stderr and exit 2, never a traceback."""
    try:
        return call()
    except CotvtmError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished work is kept, rerun to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
