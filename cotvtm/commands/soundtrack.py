"""``cotvtm soundtrack`` and ``cotvtm demo``: the soundtrack job's settings as flags.

Every flag comes from a field of the job's settings classes (``cotvtm.settings``; the teacher
endpoint's from ``cotvtm.teacher.settings.EndpointConfig``), the same names the Python API takes.
"""

import argparse
import os
from dataclasses import dataclass

from cotvtm.options import Checked, command, given, setting
from cotvtm.settings import SETTINGS, Access, ModelChoice, Resources, SoundtrackConfig, configure
from cotvtm.teacher.settings import EndpointConfig


@dataclass(frozen=True)
class Locations(Checked):
    """What the job reads and where it writes."""

    input: str = setting(positional=True, help="a folder or s3://bucket/prefix (searched recursively), or one "
                                                "video file")
    output: str = setting(positional=True, help="the output folder or s3://bucket/prefix")


# The job's option groups: resources default to unset, so that Resources.detect sizes what the
# user left out for the machine it runs on.
SECTIONS = (("models (a preset, and per-component hub ids or local dirs)", ModelChoice),
            ("music", SoundtrackConfig),
            ("teacher endpoint (with --conditioning teacher)", EndpointConfig),
            ("inputs, outputs, licences and signing", Access),
            ("resources", Resources, True))


def settings(a: argparse.Namespace) -> dict:
    """The soundtrack settings the command line gave, by name (the API's keywords)."""
    return given(a, *SETTINGS)


def starting(name: str) -> None:
    """The first line, before anything slow is imported or started: what the first minute goes to."""
    address = os.environ.get("RAY_ADDRESS")
    ray = (f"joining the Ray cluster at {address}" if address else
           "starting a local Ray (a standing cluster, `ray job submit`, skips this)")
    print(f"cotvtm {name}: checking the settings and models, then, if there is work, {ray}; each stage then "
          "loads its models in its actors, so the first input moves after tens of seconds (README, \"What a small "
          "job costs\")", flush=True)


def _soundtrack(a: argparse.Namespace) -> int:
    starting("soundtrack")
    from cotvtm.api import soundtrack

    return soundtrack(a.input, a.output, **settings(a)).exit_code


def _demo(a: argparse.Namespace) -> int:
    starting("demo")
    from cotvtm.demo import DemoPlan, run_demo

    cfg, res, access = configure(**settings(a))
    return run_demo(DemoPlan(**given(a, DemoPlan)), cfg, res, cache_dir=access.cache_dir).exit_code


def register(subparsers) -> None:
    command(subparsers, "soundtrack", "add music to every video under INPUT, writing to OUTPUT",
            ((None, Locations), *SECTIONS), _soundtrack)
    from cotvtm.demo import DemoPlan

    command(subparsers, "demo", "train a tiny prior offline, then soundtrack sample videos with it",
            ((None, DemoPlan), *SECTIONS), _demo)
