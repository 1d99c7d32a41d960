"""``cotvtm label`` (also ``python -m jobs.build_dataset``): the labelling run's settings as flags.

Every flag comes from a field of ``cotvtm.teacher.settings`` (``BuildConfig``, and the teacher
endpoint's ``EndpointConfig`` with this command's earlier flags, ``LabelEndpoint``), the same
names ``cotvtm.label`` takes.
"""

import argparse
from dataclasses import dataclass

from cotvtm.options import Checked, command, given, setting
from cotvtm.teacher.settings import BuildConfig, LabelEndpoint

HELP = "label captions with the chain-of-thought teacher (an LLM endpoint, or offline rules)"
EXIT = ("Exit status: 0 every caption has a label, 1 the build finished but some captions failed\n"
        "(their reasons are in the labels), 2 a usage or set-up error.")


@dataclass(frozen=True)
class Recipe(Checked):
    """What the command does instead of labelling."""

    recipe: bool = setting(False, help="only report, per part of the paper's training mix, how many records the "
                                       "manifests give and how many are labelled (against the paper's "
                                       "10k/10k/11k/10k); labels nothing")


SECTIONS = ((None, BuildConfig), ("teacher endpoint (none given: the offline rule-based teacher)", LabelEndpoint, True),
            (None, Recipe))


def _label(a: argparse.Namespace) -> int:
    from cotvtm.api import label

    settings = given(a, BuildConfig, LabelEndpoint)
    if a.recipe:
        from cotvtm.teacher.build import recipe
        from cotvtm.teacher.settings import build_config

        recipe(build_config(settings.pop("out", None), **settings))
        return 0
    return label(settings.pop("out", None), **settings).exit_code


def register(subparsers) -> None:
    command(subparsers, "label", HELP, SECTIONS, _label, description=f"{HELP}\n\n{EXIT}")
