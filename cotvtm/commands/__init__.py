"""The commands of ``cotvtm``, each declared by its settings classes (``cotvtm.options``)."""

DESCRIPTION = """Soundtrack video libraries: soundtrack, demo, label, bank, embed, distill, evaluate, build-tiny, convert-stable-audio-3.

Exit status: 0 when every input succeeded or was already done, 1 when the batch
finished but some inputs failed (see the manifest), 2 for a usage or set-up error.
"""


def parser():
    """Every command, each registered by its module here from its settings."""
    from cotvtm.commands import evaluate, label, soundtrack, tools, train
    from cotvtm.options import parser as make_parser

    p = make_parser("cotvtm", DESCRIPTION.split("\n")[0], DESCRIPTION.split("\n", 2)[2])
    sub = p.add_subparsers(dest="command", required=True)
    soundtrack.register(sub)
    label.register(sub)
    tools.register_bank(sub)
    train.register_embed(sub)
    train.register_distill(sub)
    evaluate.register(sub)
    tools.register_build_tiny(sub)
    tools.register_convert(sub)
    return p
