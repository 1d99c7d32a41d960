"""The README's option tables, written from the commands' declarations so that they cannot drift.

    python -m cotvtm.commands.reference README.md        rewrite every table in place
    python -m cotvtm.commands.reference --check README.md  exit 1 when one is out of date

A table sits between ``<!-- options: NAME -->`` and ``<!-- /options -->``; it lists every flag
of command ``NAME`` as ``--help`` shows it: its values, its default, what it does.
"""

import argparse
import re
import sys
from pathlib import Path

START = re.compile(r"<!-- options: ([\w-]+) -->\n.*?<!-- /options -->", re.S)


def commands() -> dict[str, argparse.ArgumentParser]:
    """Each command's parser, by name."""
    from cotvtm.commands import parser

    [sub] = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def table(command: argparse.ArgumentParser) -> str:
    """The markdown table of ``command``'s flags (hidden ones, such as renamed flags, left out)."""
    rows = ["| option | default | meaning |", "|---|---|---|"]
    for action in command._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS or action.dest == "help":
            continue
        text = (action.help or "").replace("|", "\\|").replace("\n", " ")
        found = re.search(r"\s*\(default: (.*)\)$", text)
        default = found.group(1) if found else ""
        text = text[: found.start()] if found else text
        rows.append(f"| `{_usage(action)}` | {default} | {text} |")
    return "\n".join(rows)


def _usage(action: argparse.Action) -> str:
    """How a flag is written: with its choices or value name, when it takes a value."""
    flag = next(s for s in action.option_strings if s.startswith("--"))  # not its short spelling
    if action.nargs == 0:
        return flag
    if action.choices:
        return f"{flag} {{{','.join(map(str, action.choices))}}}"
    return f"{flag} {action.metavar or action.dest.upper()}"


def rewritten(text: str) -> str:
    """``text`` with every options table as the declarations make it now."""
    found = commands()
    return START.sub(lambda m: f"<!-- options: {m.group(1)} -->\n{table(found[m.group(1)])}\n<!-- /options -->", text)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    check = "--check" in args
    path = Path([a for a in args if a != "--check"][0])
    text = path.read_text(encoding="utf-8")
    new = rewritten(text)
    if check:
        return 0 if new == text else 1
    path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
