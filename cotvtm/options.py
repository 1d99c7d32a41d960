"""One definition per setting: a dataclass field carries its flag, help, choices and check.

Every command's options (``cotvtm soundtrack``, ``label``, ``embed``, ``distill``, ``evaluate``,
``bank``, ``demo``, ...), the Python API's keyword settings and validation are all derived from
these fields, so a setting is added, documented and checked in one place, and a concept that
several commands share (the teacher endpoint, the model preset) is declared by one class that
each of them uses, or borrowed field by field with :func:`same`.

    window_s: float = setting(10.0, flag="--window-seconds", check=positive())

``--help`` says each default from the declaration (``(default: 10)``), or, for a default the
machine decides, from ``shown_default``. A ``tuple[str, ...]`` field is a repeatable flag
(``--timeline otio --timeline fcp-xml``), each value checked against its choices. A setting
renamed keeps its old flag for one release (``renamed=``): it still works, and says it was
renamed. This module is the one place that makes an ``argparse`` parser (:func:`parser`).
"""

import argparse
import types
import typing
import warnings
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
    positional: bool = False  # an argument without a flag (a path, say); a tuple takes any number
    renamed: tuple = ()  # earlier flags of this setting, kept one release: they warn
    short: str | None = None  # a one-letter spelling beside the flag (``-o``)


def setting(default=MISSING, *, factory=MISSING, flag: str | None = None, help: str | None = None,
            choices=None, metavar: str | None = None, check: tuple | None = None, shown_default: str | None = None,
            positional: bool = False, renamed: tuple = (), short: str | None = None):
    """A dataclass field that is also a setting: ``flag`` (default ``--`` and the field's name
    with dashes), ``help``, ``choices`` (checked unless ``check`` is given), ``metavar`` and
    ``check``, a ``(predicate, message)`` pair whose message may name ``{flag}``, ``{value}``
    and ``{choices}``; ``shown_default``, what ``--help`` says of a default decided at run time;
    ``positional``, an argument without a flag; ``short``, a one-letter spelling beside the
    flag; ``renamed``, the setting's earlier flags (each
    also an earlier API keyword, dashes as underscores). A ``None`` value is never checked: it
    means "not set". A ``bool`` whose default is True is turned off by its flag (``--no-...``)."""
    meta = {_KEY: Setting(flag, help, tuple(choices) if choices else None, metavar, check, shown_default,
                          positional, tuple(renamed), short)}
    return field(default=default, default_factory=factory, metadata=meta)


def same(cls, name: str, **changes):
    """Field ``name`` of settings class ``cls`` declared again in another class, with the same
    flag, help, choices and check (and default, unless ``changes`` say otherwise: ``default``,
    ``help``, ``shown_default``...): one concept, one declaration, in every command that has it."""
    f = _field_of(cls, name)
    s = f.metadata[_KEY]
    given = {"flag": flag(f), "help": s.help, "choices": s.choices, "metavar": s.metavar, "check": s.check,
             "shown_default": s.shown_default, "positional": s.positional, "renamed": s.renamed, "short": s.short}
    factory = MISSING if "default" in changes or f.default_factory is MISSING else f.default_factory
    default = changes.pop("default", f.default)
    return setting(default if factory is MISSING else MISSING, factory=factory, **{**given, **changes})


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
    chooses the values the user did not give. Positional settings come first, in field order."""
    hints = typing.get_type_hints(cls)
    ordered = sorted(settings(cls), key=lambda f: not f.metadata[_KEY].positional)
    for f in ordered:
        s, kind = f.metadata[_KEY], _scalar(hints[f.name])
        if s.positional:
            group.add_argument(f.name, nargs="*" if _repeated(kind) else None, type=typing.get_args(kind)[0]
                               if _repeated(kind) else kind, metavar=s.metavar, help=s.help)
            continue
        default = None if unset else _default(f)
        group.add_argument(*filter(None, (s.short, flag(f))), dest=f.name, **_kind_options(f, s, kind, default))
        if s.renamed:  # earlier spellings: they still work, say they were renamed, and are not listed
            group.add_argument(*s.renamed, dest=f.name, action=_Renamed, renamed=flag(f), help=argparse.SUPPRESS,
                               **_renamed_options(f, kind))
    for old, new in getattr(cls, "RENAMED", {}).items():  # an earlier flag of one setting, or of several
        group.add_argument(old, dest=_key(old), action=_Renamed,
                           renamed=", ".join(flag(_field_of(cls, name)) for name in new), default=None,
                           help=argparse.SUPPRESS, **_renamed_options(_field_of(cls, new[0]), _scalar(hints[new[0]])))


def _kind_options(f, s: Setting, kind, default) -> dict:
    """``add_argument``'s options for setting ``f`` of type ``kind``."""
    if kind is bool:  # a flag that turns on a default-off setting, or off a default-on one
        return {"action": "store_false" if _default(f) else "store_true", "default": default, "help": s.help}
    if _repeated(kind):  # given as often as wanted; None when never, so the declared default stays
        return {"action": "append", "choices": s.choices, "default": None, "metavar": s.metavar,
                "help": _help(s, None)}
    metavar = s.metavar or (None if s.choices else _key(flag(f)).upper())
    return {"type": kind, "default": default, "choices": s.choices, "metavar": metavar,
            "help": _help(s, _default(f))}


def _renamed_options(f, kind) -> dict:
    """How an earlier flag of setting ``f`` takes its value: as the flag it is now does."""
    if kind is bool:
        return {"nargs": 0, "const": not _default(f)}
    if _repeated(kind):
        return {"const": "append", "type": typing.get_args(kind)[0]}
    return {"type": kind}


class _Renamed(argparse.Action):
    """An earlier flag: stores as its new one does (appends for a repeated setting), and warns."""

    def __init__(self, option_strings, dest, renamed: str, **kwargs):
        self.renamed = renamed
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        warn_renamed(option_string, self.renamed)
        if self.const == "append":
            values = [*(getattr(namespace, self.dest) or []), values]
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


class RenamedSetting(FutureWarning):
    """A setting given by its earlier name: it works for one more release."""


def warn_renamed(old: str, new: str) -> None:
    """Say, once per use, that setting ``old`` is now ``new`` (and that ``old`` goes next release)."""
    warnings.warn(f"{old} is renamed {new}; the old name will be removed in the next release", RenamedSetting,
                  stacklevel=3)


def parser(prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """The one way a command's parser is made (its description and epilog kept as written)."""
    return argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def command(subparsers, name: str, help: str, sections: typing.Iterable, run, description: str | None = None):
    """Subcommand ``name`` whose options are ``sections``: ``(title, settings class)`` pairs (a
    None title: the command's own arguments; a third item True: every default unset, see
    :func:`add_options`); ``run(namespace)`` is what it does."""
    p = subparsers.add_parser(name, help=help, description=description or help,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    for title, cls, *unset in sections:
        add_options(p if title is None else p.add_argument_group(title), cls, unset=bool(unset and unset[0]))
    p.set_defaults(func=run)
    return p


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
    (None) out, so that defaults stay with the code that builds the configurations. A class's
    ``RENAMED`` flag given fills each setting it now stands for that was not given itself."""
    values = {f.name: getattr(namespace, f.name) for cls in classes for f in settings(cls)}
    for cls in classes:
        for old, new in getattr(cls, "RENAMED", {}).items():
            value = getattr(namespace, _key(old), None)
            values.update({name: value for name in new if values.get(name) is None})
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if v is not None}


def split(values: dict, *classes) -> list[dict]:
    """``values`` shared out among the dataclasses' fields; a name that none has is an error.
    An earlier name of a setting (its ``renamed`` flags', or a class's ``RENAMED``) is taken
    for the setting(s) it now is, with a warning."""
    parts, left = [], dict(values)
    for cls in classes:
        for old, new in _earlier_names(cls).items():
            if old in left:
                warn_renamed(old, ", ".join(new))
                value = left.pop(old)
                left.update({name: value for name in new if name not in left})
        names = {f.name for f in fields(cls)}
        parts.append({k: left.pop(k) for k in list(left) if k in names})
    if left:
        raise CotvtmError(f"unknown setting(s): {', '.join(sorted(left))}")
    return parts


def _earlier_names(cls) -> dict[str, tuple]:
    """Earlier API keywords of ``cls``'s settings -> the fields they now fill."""
    names = {_key(old): (f.name,) for f in settings(cls) for old in f.metadata[_KEY].renamed}
    names.update({_key(old): new for old, new in getattr(cls, "RENAMED", {}).items()})
    own = {f.name for f in fields(cls)}  # a switch's ``--no-...`` flag is no keyword: its value is the opposite
    return {old: new for old, new in names.items() if old not in own and not old.startswith("no_")}


def _field_of(cls, name: str):
    [f] = [f for f in fields(cls) if f.name == name]
    return f


def _key(flag_: str) -> str:
    """A flag as a name: the keyword, or the parsed value's attribute (``--no-cot`` -> ``no_cot``)."""
    return flag_.lstrip("-").replace("-", "_")


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
