"""Keep libraries' own console output to what matters: a leaf module that every loader may import."""

import os


def quiet_transformers() -> None:
    """No progress bars or warnings from transformers (they would drown the job's own lines)."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def quiet_diffusers() -> None:
    """The same for diffusers, and torch's warning that the Oobleck autoencoder's ``weight_norm``
    is deprecated, printed on every load."""
    import warnings

    from diffusers.utils import logging

    quiet_transformers()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*weight_norm.*is deprecated", category=FutureWarning)


def quiet_sampler() -> None:
    """No warning from torchsde's Brownian tree when Stable Audio's sampler asks it for noise at
    times it rounds (every call); inside ``warnings.catch_warnings()``."""
    import warnings

    warnings.filterwarnings("ignore", message="Should have (ta|tb|t)", module="torchsde")


# Lines of Ray's own C++ core that are known to be false alarms for this project, never shown.
# Ray Data hands every actor pool its function by object reference (``ray.put`` of its map
# transformer) and restarts lost actors (the job relies on that: a killed Music actor is
# replaced), so the driver's core worker logs this at error level at a run's first actor pool,
# whatever the actors' arguments (ray-project/ray#53727). Ray Data keeps those references for
# the dataset's life, so the restart it warns about works. It stays in the driver's log file.
RAY_FALSE_ALARMS = (b"has constructor arguments in the object store and max_restarts > 0",)

# The filter process: copies its input to its output as it comes, without the lines above. A
# partial line is passed on at once (a progress bar redraws its line without ending it) unless
# it starts like one of Ray's log lines ("[2026-..."), which waits for its end to be judged. It
# ignores Ctrl-C (the job's own message about it must get through) and ends at end of input.
_FILTER = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
noise = [arg.encode() for arg in sys.argv[1:]]
held = b""
while True:
    chunk = os.read(0, 65536)
    if not chunk:
        break
    *lines, held = (held + chunk).split(b"\\n")
    out = b"".join(line + b"\\n" for line in lines if not any(n in line for n in noise))
    if held and not held.startswith(b"["):
        out, held = out + held, b""
    if out:
        os.write(1, out)
if held:
    os.write(1, held)
"""
EXIT_WAIT_S = 5.0  # at exit, how long the filter may take to pass on the last lines (it needs milliseconds)


def quiet_native_stderr() -> None:
    """Pass this process's standard error (file descriptor 2, where Ray's C++ core writes too)
    through a small filter process that drops ``RAY_FALSE_ALARMS``; everything else, errors
    included, goes through as it was. A process, not a thread: what a crashing job writes last
    still arrives; at a normal exit the filter is given its last lines and waited for, so they
    come before the shell's prompt. Once per process; with no standard error, or if the filter
    cannot start, nothing changes."""
    import atexit
    import subprocess
    import sys

    global _filter
    if _filter is not None or sys.stderr is None:
        return
    try:
        if os.isatty(2):  # a progress bar asks the terminal for its width: it will ask a pipe
            os.environ.setdefault("COLUMNS", str(os.get_terminal_size(2).columns))
        sys.stderr.flush()
    except (OSError, ValueError):  # no usable standard error: leave it as it is
        return
    read, write = os.pipe()
    shown = os.dup(2)
    try:
        _filter = subprocess.Popen([sys.executable, "-S", "-c", _FILTER, *(n.decode() for n in RAY_FALSE_ALARMS)],
                                   stdin=read, stdout=shown, stderr=subprocess.DEVNULL)
        os.dup2(write, 2)
        atexit.register(_restore, shown)
    except OSError:
        os.close(shown)
    finally:
        os.close(read)
        os.close(write)


def _restore(shown: int) -> None:
    """At exit: standard error back to what it was, and the filter's last lines out first."""
    import subprocess
    import sys

    try:
        if sys.stderr is not None:
            sys.stderr.flush()
        os.dup2(shown, 2)
        _filter.wait(timeout=EXIT_WAIT_S)  # ends once no process holds the pipe (Ray's have stopped by now)
    except (OSError, ValueError, subprocess.TimeoutExpired):  # a closed stream, or a holder of the pipe left
        pass


_filter = None  # the filter process, once started
