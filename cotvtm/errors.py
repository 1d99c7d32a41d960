"""Errors that carry a user-facing reason instead of a traceback, how a command ends on one, and
how text from outside (file names, a worker's exception) is made safe for one console line."""

import re
import sys
import unicodedata

EXIT_USAGE = 2  # a usage or set-up error (bad option, unknown model, a model that does not load)
EXIT_INTERRUPTED = 130

# CSI (colours, cursor moves), OSC (window titles, links) and two-character escapes
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
# characters that reorder what follows on screen: a name could make a line read differently
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_LAST_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)): ?(.*)$")


class CotvtmError(Exception):
    """Base class: the message is meant to be shown to the user as is."""

    def __reduce__(self):
        """Pickled as its message and attributes, whatever its ``__init__`` takes: an error raised
        in a Ray actor reaches the driver as itself (an ``__init__(path, reason)`` would otherwise
        fail to unpickle there, and the driver would see only that the actor died)."""
        return _rebuilt, (type(self), self.args, self.__dict__)


def _rebuilt(cls, args: tuple, state: dict) -> CotvtmError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class MediaError(CotvtmError):
    """An input file cannot be used; ``reason`` says why in one line."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class ModelError(CotvtmError):
    """A model reference cannot be resolved or loaded."""


class ModelRefError(ModelError):
    """A model option (``--prior``, ``--musicgen``, ...) names something that is not a usable model:
    found on the driver before any input is touched."""

    def __init__(self, option: str, ref: str, reason: str):
        super().__init__(f"{option} {printable(ref)}: {reason}")
        self.option, self.ref, self.reason = option, str(ref), reason


class SetupError(CotvtmError):
    """A stage's actors could not start (typically a model that does not load): no input is to
    blame, so the run stops once instead of failing every input."""


def without_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (Ray colours the names in its messages)."""
    return _ANSI.sub("", str(text))


def one_line(text: str, limit: int = 300) -> str:
    """``text`` as one console line: escape sequences dropped, line breaks and runs of blanks
    made one space, cut at ``limit`` characters."""
    flat = " ".join(without_ansi(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def printable(text: str) -> str:
    """``text`` with control characters escaped as ``repr`` writes them (``\\n``, ``\\x1b``, ...).

    A file name is the user's data: printed raw, a newline in it would forge a line of output
    and an escape sequence would recolour or rewrite the terminal. Only control, line-separator,
    bidirectional-override and undecodable (surrogate) characters are escaped: other Unicode
    stays readable, and the manifest keeps the real name.
    """
    text = str(text)
    if text.isprintable() and not _BIDI.intersection(text):
        return text
    return "".join(_escape(ch) for ch in text)


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch not in _BIDI and unicodedata.category(ch) not in ("Cc", "Cs", "Zl", "Zp"):
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def root_message(exc: BaseException) -> str:
    """The original error's type and message, in one line.

    Ray wraps an exception raised in a worker (``RayTaskError``, ``ActorDiedError``) in its own,
    whose text carries the remote traceback; what says why is the first exception in the chain
    that is not Ray's (the worker's own), or failing that the traceback's last
    ``SomeError: message`` line.
    """
    for inner in _chain(exc):
        if not type(inner).__module__.startswith("ray"):
            text = str(inner) if isinstance(inner, CotvtmError) else f"{type(inner).__name__}: {inner}"
            return one_line(text)
    lines = without_ansi(str(exc)).splitlines()
    found = [line for line in lines if _LAST_ERROR_LINE.match(line)]
    if found:
        name, message = _LAST_ERROR_LINE.match(found[-1]).groups()
        return one_line(f"{name.rsplit('.', 1)[-1]}: {message}")
    return one_line(f"{type(exc).__name__}: {lines[0] if lines else ''}")


def failed_actor(exc: BaseException) -> str | None:
    """The class of the Ray Data stage whose actor died in its constructor (``"Prior"``), ``""``
    when that class cannot be told, or None when ``exc`` is not such a failure."""
    for inner in _chain(exc):
        title = without_ansi(getattr(inner, "proctitle", "") or "")
        if (getattr(inner, "actor_init_failed", False) or getattr(inner, "function_name", None) == "__init__"
                or "error raised in its creation task" in without_ansi(str(inner))):
            named = re.search(r"MapBatches\((\w+)\)", title or without_ansi(str(inner)))
            return named.group(1) if named else ""
    return None


def _chain(exc: BaseException):
    """``exc`` and every exception it wraps, outermost first: causes, contexts, Ray's ``cause``
    attribute and exceptions passed as arguments (``ActorDiedError(RayTaskError(...))``)."""
    seen, todo = set(), [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = (getattr(current, "cause", None), current.__cause__, current.__context__, *current.args)
        todo += [item for item in nested if isinstance(item, BaseException)]


def guarded(call, prog: str = "cotvtm") -> int:
    """Run a command: a CotvtmError is one line on stderr and exit 2, never a traceback."""
    try:
        return call()
    except CotvtmError as exc:
        print(f"{prog}: error: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished work is kept, rerun to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
