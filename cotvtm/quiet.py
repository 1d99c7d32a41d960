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

# The filter process: copies its input to its output line by line, without the lines above;
# it ignores Ctrl-C (the job's own message about it must get through) and ends at end of input.
_FILTER = """
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
noise = [arg.encode() for arg in sys.argv[1:]]
for line in sys.stdin.buffer:
    if not any(n in line for n in noise):
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
"""


def quiet_native_stderr() -> None:
    """Pass this process's standard error (file descriptor 2, where Ray's C++ core writes too)
    through a small filter process that drops ``RAY_FALSE_ALARMS``; every other line, errors
    included, goes through as it was. A process, not a thread: what a crashing job writes last
    still arrives. Once per process; if the filter cannot start, nothing changes."""
    import subprocess
    import sys

    global _filter
    if _filter is not None:
        return
    sys.stderr.flush()
    read, write = os.pipe()
    shown = os.dup(2)
    try:
        _filter = subprocess.Popen([sys.executable, "-S", "-c", _FILTER, *(n.decode() for n in RAY_FALSE_ALARMS)],
                                   stdin=read, stdout=shown, stderr=subprocess.DEVNULL)
        os.dup2(write, 2)
    except OSError:
        pass
    finally:
        for fd in (read, write, shown):
            os.close(fd)


_filter = None  # the filter process, once started
