"""One definition per setting: a dataclass field carries its flag, help, choices and check.

The command line's options, the Python API's keyword settings and validation are all derived
from these fields, so a setting is added, documented and checked in one place.

    window_s: float = setting(10.0, flag="--window-seconds", check=positive())

``--help`` says each default from the declaration (``(default: 10)``), or, for a default the
machine decides, from ``shown_default``. A ``tuple[str, ...]`` field is a repeatable flag
(``--timeline otio --timeline fcp-xml``), each value checked against its choices.
"""

import argparse
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from cotvtm.errors import CotvtmError

_KEY = "cotvtm.setting"
_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "text", Path: "a path"}


@dataclass(frozen=True)
class Setting:
    """What a field says about itself beyond its default: see :func:`setting`."""

    flag: str | None = None
    help: str | None = None
    choices: tuple | None = None
    metavar: str | None = None
    check: tuple | None = None  # (predicate of the value, message)
    shown_default: str | None = None  # what --help says the default is, when the machine decides it


def setting(default=MISSING, *, factory=MISSING, flag: str | None = None, help: str | None = None,
            choices=None, metavar: str | None = None, check: tuple | None = None, shown_default: str | None = None):
    """A dataclass field that is also a setting: ``flag`` (default ``--`` and the field's name
    with dashes), ``help``, ``choices`` (checked unless ``check`` is given), ``metavar`` and
    ``check``, a ``(predicate, message)`` pair whose message may name ``{flag}``, ``{value}``
    and ``{choices}``; ``shown_default``, what ``--help`` says of a default decided at run time.
    A ``None`` value is never checked: it means "not set"."""
    meta = {_KEY: Setting(flag, help, tuple(choices) if choices else None, metavar, check, shown_default)}
    return field(default=default, default_factory=factory, metadata=meta)


def at_least(low):
    """The check of a count: ``low`` or more."""
    return lambda v: v >= low, f"{{flag}} must be at least {low}"


def positive(message: str = "{flag} must be positive"):
    """The check of a length or a rate: above zero."""
    return lambda v: v > 0, message


def flag(f) -> str:
    """The command-line flag of field ``f``."""
    return f.metadata[_KEY].flag or "--" + f.name.replace("_", "-")


def settings(cls) -> list:
    """The fields of dataclass ``cls`` that are settings (not nested configurations)."""
    return [f for f in fields(cls) if _KEY in f.metadata]


class Checked:
    """A dataclass base whose instances are checked when made (``replace`` makes one too), so
    no invalid configuration exists. ``RELATIONS``: ``(predicate of the instance, message)``
    pairs between fields, checked after each field's own check."""

    RELATIONS: typing.ClassVar[tuple] = ()

    def __post_init__(self):
        validate(self)


def validate(obj):
    """``obj`` when every setting has a value of its type that passes its check and every one
    of the class's ``RELATIONS`` holds; else a ``CotvtmError`` with the first failure's message."""
    hints = typing.get_type_hints(type(obj))
    for f in settings(obj):
        value, s = getattr(obj, f.name), f.metadata[_KEY]
        if value is None:
            continue
        kind = _scalar(hints[f.name])
        if not _is(value, kind):
            raise CotvtmError(f"{flag(f)} must be {_KINDS.get(kind, getattr(kind, '__name__', 'a tuple'))}, "
                              f"not {value!r}")
        ok, message = s.check or (_member(s.choices, _repeated(kind)) if s.choices else (None, None))
        if ok is not None and not ok(value):
            raise CotvtmError(message.format(flag=flag(f), value=value, choices=", ".join(s.choices or ())))
    for ok, message in type(obj).RELATIONS:
        if not ok(obj):
            raise CotvtmError(message)
    return obj


def add_options(group, cls, *, unset: bool = False) -> None:
    """A flag per setting of ``cls`` on ``group`` (a parser or an argument group), its value
    under the field's name. ``unset``: every default is None, so that whatever builds ``cls``
    chooses the values the user did not give."""
    hints = typing.get_type_hints(cls)
    for f in settings(cls):
        s, kind = f.metadata[_KEY], _scalar(hints[f.name])
        default = None if unset else _default(f)
        if kind is bool:
            group.add_argument(flag(f), dest=f.name, action="store_true", default=default, help=s.help)
        elif _repeated(kind):  # given as often as wanted; None when never, so the declared default stays
            group.add_argument(flag(f), dest=f.name, action="append", choices=s.choices, default=None,
                               metavar=s.metavar, help=_help(s, None))
        else:
            metavar = s.metavar or (None if s.choices else flag(f).lstrip("-").replace("-", "_").upper())
            group.add_argument(flag(f), dest=f.name, type=kind, default=default, choices=s.choices,
                               metavar=metavar, help=_help(s, _default(f)))


def _help(s: Setting, default) -> str | None:
    """The help of a setting with its default said once: its own words when they say it, else
    ``shown_default`` or the declared value (a setting without one, None, has nothing to say)."""
    said = s.shown_default or (None if default is None else f"{default:g}" if isinstance(default, float) else
                               str(default))
    if said is None or "default" in (s.help or ""):
        return s.help
    return f"{s.help} (default: {said})" if s.help else f"default: {said}"


def given(namespace: argparse.Namespace, *classes) -> dict:
    """The settings of ``classes`` in a parsed ``namespace``, by field name; those left unset
    (None) out, so that defaults stay with the code that builds the configurations."""
    values = {f.name: getattr(namespace, f.name) for cls in classes for f in settings(cls)}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if v is not None}


def split(values: dict, *classes) -> list[dict]:
    """``values`` shared out among the dataclasses' fields; a name that none has is an error."""
    parts, left = [], dict(values)
    for cls in classes:
        names = {f.name for f in fields(cls)}
        parts.append({k: left.pop(k) for k in list(left) if k in names})
    if left:
        raise CotvtmError(f"unknown setting(s): {', '.join(sorted(left))}")
    return parts


def _member(choices: tuple, repeated: bool = False):
    """The check of a field with choices, when it has none of its own (of each value, when the
    field is repeated)."""
    if repeated:
        return lambda v: all(x in choices for x in v), "{flag} must be one of {choices}, not {value!r}"
    return lambda v: v in choices, "{flag} must be one of {choices}, not {value!r}"


def _repeated(kind) -> bool:
    """Whether ``kind`` is a repeatable setting's (``tuple[str, ...]``)."""
    return typing.get_origin(kind) is tuple


def _default(f):
    """A field's default value (made, when it has a factory)."""
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _scalar(hint):
    """``X`` of ``X | None``: the type a value must have when set."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        [hint] = [a for a in typing.get_args(hint) if a is not type(None)]
    return hint


def _is(value, kind) -> bool:
    """Whether ``value`` may stand for a ``kind`` (an int for a float, a str for a path; a bool
    for no number)."""
    if kind in (int, float) and isinstance(value, bool):
        return False
    if _repeated(kind):
        return isinstance(value, tuple) and all(isinstance(x, typing.get_args(kind)[0]) for x in value)
    return isinstance(value, {float: (int, float), Path: (str, Path)}.get(kind, kind))
