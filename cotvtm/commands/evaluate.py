"""``cotvtm evaluate`` (also ``python -m jobs.evaluate``): the evaluation's settings as flags.

Every flag comes from a field of ``cotvtm.eval.settings`` (the teacher endpoint's from
``cotvtm.teacher.settings.EndpointConfig``), the same names ``cotvtm.evaluate`` takes. Exit
status: 0 the table and plots were written, 2 a usage or set-up error (bad manifest, missing
file, unknown model), reported in one line.
"""

import argparse

from cotvtm.eval.settings import SECTIONS
from cotvtm.options import command, given

HELP = ("score CoT-VTM, its ablations, retrieval, the caption/LLM baselines and other systems' audio on a paired test "
        "set (FD, FAD, KL, IB, EMS, P@10)")


def _evaluate(a: argparse.Namespace) -> int:
    from cotvtm.api import evaluate
    from cotvtm.eval.run import summary_lines

    outcome = evaluate(**given(a, *(section[1] for section in SECTIONS)))
    print(outcome.paths["results.md"].read_text(encoding="utf-8"))
    for line in summary_lines(outcome):
        print(line)
    return 0


def register(subparsers) -> None:
    command(subparsers, "evaluate", HELP, SECTIONS, _evaluate)
