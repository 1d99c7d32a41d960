"""The ``cotvtm`` command: soundtrack, demo, label, embed, distill, evaluate, build-tiny, convert-stable-audio-3.

Exit status: 0 when every input succeeded or was already done, 1 when the batch
finished but some inputs failed (see the manifest), 2 for a usage or set-up error.
"""

import argparse
import os
import sys
from pathlib import Path

from cotvtm.settings import Access, ModelChoice, Resources, SoundtrackConfig, configure
from cotvtm.errors import guarded
from cotvtm.options import add_options, given

_SETTINGS = (ModelChoice, SoundtrackConfig, Resources, Access)


def _add_soundtrack_options(p: argparse.ArgumentParser) -> None:
    """The soundtrack job's settings as flags, from their definitions in ``cotvtm.settings``;
    resources default to unset, so that ``Resources.detect`` sizes what the user left out."""
    models = p.add_argument_group("models (a preset, and per-component hub ids or local dirs)")
    add_options(models, ModelChoice)
    add_options(models, Access)
    add_options(p.add_argument_group("music"), SoundtrackConfig)
    add_options(p.add_argument_group("resources"), Resources, unset=True)


def _settings(a: argparse.Namespace) -> dict:
    """The soundtrack settings the command line gave (or defaulted), by field name."""
    return given(a, *_SETTINGS)


def _config(a: argparse.Namespace) -> tuple[SoundtrackConfig, Resources]:
    """The configurations the command line asks for, checked (as the API would make them)."""
    cfg, res, _ = configure(**_settings(a))
    return cfg, res


def _starting(command: str) -> None:
    """The first line, before anything slow is imported or started: what the first minute goes to."""
    address = os.environ.get("RAY_ADDRESS")
    ray = (f"joining the Ray cluster at {address}" if address else
           "starting a local Ray (a standing cluster, `ray job submit`, skips this)")
    print(f"cotvtm {command}: checking the settings and models, then, if there is work, {ray}; each stage then "
          "loads its models in its actors, so the first input moves after tens of seconds (README, \"What a small "
          "job costs\")", flush=True)


def _soundtrack(a: argparse.Namespace) -> int:
    _starting("soundtrack")
    from cotvtm.api import soundtrack

    return soundtrack(a.input, a.output, **_settings(a)).exit_code


def _demo(a: argparse.Namespace) -> int:
    _starting("demo")
    from cotvtm.demo import DemoPlan, run_demo

    cfg, res, access = configure(**_settings(a))
    plan = DemoPlan(Path(a.workdir), scenes=a.scenes, epochs=a.epochs)
    return run_demo(plan, cfg, res, cache_dir=access.cache_dir).exit_code


def _build_tiny(a: argparse.Namespace) -> int:
    from cotvtm import models

    refs = models.resolve("tiny", cache_dir=a.cache_dir, seed=a.seed)
    for name, ref in vars(refs).items():
        print(f"{name:10s} {ref}")
    return 0


def _bank(a: argparse.Namespace) -> int:
    from cotvtm.prior.bank import from_labels, from_scenes, write_bank

    entries = from_scenes(a.scenes) if a.labels is None else from_labels(a.labels)
    print(f"cotvtm bank: {len(entries)} entries in {write_bank(entries, a.output)}; use it with "
          f"`cotvtm soundtrack IN OUT --bank {a.output}`")
    return 0


def _convert_stable_audio_3(a: argparse.Namespace) -> int:
    from cotvtm.music.sa3_convert import convert

    done = convert(a.src, a.dst)
    for component, count in done.tensors.items():
        print(f"{component:18s} {count} tensors")
    print(f"cotvtm convert-stable-audio-3: wrote {done.dst} ({done.steps} steps by default); use it with "
          f"`--decoder stable-audio-3 --stable-audio-3 {done.dst}`")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cotvtm", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 2)[2])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("soundtrack", help="add music to every video under INPUT, writing to OUTPUT")
    s.add_argument("input", help="a folder or s3://bucket/prefix (searched recursively), or one video file")
    s.add_argument("output", help="the output folder or s3://bucket/prefix")
    _add_soundtrack_options(s)
    s.set_defaults(func=_soundtrack)
    d = sub.add_parser("demo", help="train a tiny prior offline, then soundtrack sample videos with it")
    d.add_argument("--workdir", default="demo_out")
    d.add_argument("--scenes", type=int, default=240, help="generated scenes to label and train on")
    d.add_argument("--epochs", type=int, default=30, help="epochs per distillation stage")
    _add_soundtrack_options(d)
    d.set_defaults(func=_demo)
    b = sub.add_parser("build-tiny", help="build the tiny preset's models and print where they are")
    b.add_argument("--cache-dir", type=Path, default=None)
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(func=_build_tiny)
    k = sub.add_parser("bank", help="build a retrieval bank (captions and music descriptions) from a labels folder")
    k.add_argument("output", help="the bank file to write (JSON Lines)")
    source = k.add_mutually_exclusive_group(required=True)
    source.add_argument("--labels", help="a labels folder from `cotvtm label` (its labelled records)")
    source.add_argument("--scenes", type=int, help="instead: this many scenes of the paper's templates, labelled by "
                                                   "the offline teacher (how the shipped bank is made)")
    k.set_defaults(func=_bank)
    c = sub.add_parser("convert-stable-audio-3", help="convert an official Stable Audio 3 checkpoint folder "
                                                      "(model_config.json, model.safetensors) into a diffusers folder")
    c.add_argument("src", help="the official folder, as downloaded (with its t5gemma-b-b-ul2/ text encoder)")
    c.add_argument("dst", help="the diffusers folder to write (new, or empty)")
    c.set_defaults(func=_convert_stable_audio_3)
    from cotvtm.eval.cli import add_subcommand as add_evaluate
    from cotvtm.teacher.cli import add_subcommand as add_label
    from cotvtm.training.cli import add_distill, add_embed

    add_label(sub)
    add_embed(sub)
    add_distill(sub)
    add_evaluate(sub)
    return p


def main(argv: list[str] | None = None, console: bool | None = None) -> int:
    """Run one command. ``console``: this process is the command's own, its output the user's
    (lines as they happen, Ray's known false alarm filtered out); by default when ``argv`` is
    None, as the ``cotvtm`` script runs it, not when a program calls it with arguments."""
    from cotvtm.quiet import quiet_native_stderr

    args = parser().parse_args(argv)
    if argv is None if console is None else console:
        if hasattr(sys.stdout, "reconfigure"):  # each line as it happens, in a pipe or a log file too
            sys.stdout.reconfigure(line_buffering=True)
        quiet_native_stderr()
    return guarded(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
