"""The ``cotvtm`` script: parses one command (``cotvtm.commands``) and runs it, its errors as one
line (exit status: 0 every input succeeded or was already done, 1 the batch finished but some
inputs failed, 2 a usage or set-up error)."""

import sys
import warnings

from cotvtm.commands import parser
from cotvtm.errors import guarded
from cotvtm.options import RenamedSetting


def _say_warnings() -> None:
    """A renamed flag's warning as one line the user reads, not a source location (others as
    Python writes them)."""
    python_says = warnings.formatwarning

    def say(message, category, *rest, **more):
        if issubclass(category, RenamedSetting):
            return f"cotvtm: warning: {message}\n"
        return python_says(message, category, *rest, **more)

    if getattr(warnings.formatwarning, "__name__", "") != "say":
        warnings.formatwarning = say


def main(argv: list[str] | None = None, console: bool | None = None) -> int:
    """Run one command. ``console``: this process is the command's own, its output the user's
    (lines as they happen, Ray's known false alarm filtered out); by default when ``argv`` is
    None, as the ``cotvtm`` script runs it, not when a program calls it with arguments."""
    from cotvtm.quiet import quiet_native_stderr

    _say_warnings()
    args = parser().parse_args(argv)
    if argv is None if console is None else console:
        if hasattr(sys.stdout, "reconfigure"):  # each line as it happens, in a pipe or a log file too
            sys.stdout.reconfigure(line_buffering=True)
        quiet_native_stderr()
    return guarded(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
