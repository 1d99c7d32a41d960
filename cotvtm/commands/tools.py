"""``cotvtm bank``, ``cotvtm build-tiny`` and ``cotvtm convert-stable-audio-3``: what the jobs read,
made ahead of them."""

import argparse
from dataclasses import dataclass
from pathlib import Path

from cotvtm.models import TinyBuild
from cotvtm.options import Checked, at_least, command, given, same, setting
from cotvtm.settings import Access


@dataclass(frozen=True)
class BankSources(Checked):
    """The bank to write, and what it is made from: labelled records, or generated scenes."""

    output: str = setting(positional=True, help="the bank file to write (JSON Lines)")
    labels: str | None = setting(None, help="a labels folder from `cotvtm label` (its labelled records)")
    scenes: int | None = setting(None, check=at_least(1), help="instead: this many scenes of the paper's templates, "
                                                                "labelled by the offline teacher (how the shipped "
                                                                "bank is made)")

    RELATIONS = ((lambda b: (b.labels is None) != (b.scenes is None), "give one of --labels and --scenes"),)


@dataclass(frozen=True)
class TinyModels(Checked):
    """Where the tiny preset is built, and from which seed."""

    cache_dir: Path | None = same(Access, "cache_dir")
    tiny_seed: int = same(TinyBuild, "tiny_seed", renamed=("--seed",))


@dataclass(frozen=True)
class Conversion(Checked):
    """An official Stable Audio 3 folder, and the diffusers folder made from it."""

    src: str = setting(positional=True, help="the official folder, as downloaded (with its t5gemma-b-b-ul2/ text "
                                             "encoder)")
    dst: str = setting(positional=True, help="the diffusers folder to write (new, or empty)")


def _bank(a: argparse.Namespace) -> int:
    from cotvtm.prior.bank import write_bank
    from cotvtm.teacher.bank import from_labels, from_scenes

    sources = BankSources(**given(a, BankSources))
    entries = from_scenes(sources.scenes) if sources.labels is None else from_labels(sources.labels)
    print(f"cotvtm bank: {len(entries)} entries in {write_bank(entries, sources.output)}; use it with "
          f"`cotvtm soundtrack IN OUT --bank {sources.output}`")
    return 0


def _build_tiny(a: argparse.Namespace) -> int:
    from cotvtm import models

    build = TinyModels(**given(a, TinyModels))
    refs = models.resolve("tiny", cache_dir=build.cache_dir, seed=build.tiny_seed)
    for name, ref in vars(refs).items():
        print(f"{name:10s} {ref}")
    return 0


def _convert_stable_audio_3(a: argparse.Namespace) -> int:
    from cotvtm.sa3_convert import convert

    done = convert(a.src, a.dst)
    for component, count in done.tensors.items():
        print(f"{component:18s} {count} tensors")
    print(f"cotvtm convert-stable-audio-3: wrote {done.dst} ({done.steps} steps by default); use it with "
          f"`--decoder stable-audio-3 --stable-audio-3 {done.dst}`")
    return 0


def register_bank(subparsers) -> None:
    command(subparsers, "bank", "build a retrieval bank (captions and music descriptions) from a labels folder",
            ((None, BankSources),), _bank)


def register_build_tiny(subparsers) -> None:
    command(subparsers, "build-tiny", "build the tiny preset's models and print where they are",
            ((None, TinyModels),), _build_tiny)


def register_convert(subparsers) -> None:
    command(subparsers, "convert-stable-audio-3", "convert an official Stable Audio 3 checkpoint folder "
            "(model_config.json, model.safetensors) into a diffusers folder", ((None, Conversion),),
            _convert_stable_audio_3)
