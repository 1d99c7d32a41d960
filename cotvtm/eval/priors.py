"""Prior checkpoints for the CoT-VTM rows: given directories, or small ones distilled on the spot.

With the tiny preset and no checkpoint named, each variant is distilled in this process with
the same recipe as ``cotvtm distill`` (``fit_in_memory``) on generated scene descriptions
labelled by the offline teacher, so the table compares trained priors. The result is kept
under ``OUT/priors/<variant>`` and reused by the next run. ``--untrained-priors`` skips this
and evaluates randomly initialised priors instead; the table marks them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from cotvtm.errors import CotvtmError
from cotvtm.prior import PriorConfig, TwoStagePrior

SCENES = 120
EPOCHS = 20
MUSIC_LEN = 16
FLAGS = {"full": "--prior-full", "mlp_mlp": "--prior-mlp-mlp", "no_rationale": "--prior-no-rationale"}


def _training_data(refs, seed: int) -> dict[str, torch.Tensor]:
    """E_v (CLIP text tower on the caption), E_r and E_m for offline-teacher labels of generated scenes."""
    from cotvtm.encoders.clip import ClipEncoder
    from cotvtm.encoders.music_text import MusicTextEncoder
    from cotvtm.encoders.rationale import RationaleEncoder
    from cotvtm.teacher.ingest import CaptionItem
    from cotvtm.teacher.offline import OfflineTeacher
    from cotvtm.teacher.scenes import sample_scenes, write_description

    teacher = OfflineTeacher()
    labels = [teacher.label(CaptionItem(s.id, write_description(s))) for s in sample_scenes(SCENES, seed)]
    e_v = ClipEncoder(refs.clip).embed_texts([r.caption for r in labels])
    e_r = RationaleEncoder(refs.rationale).encode([r.x_rt for r in labels])
    e_m, mask = MusicTextEncoder(refs.t5, MUSIC_LEN).encode([r.x_mt for r in labels])
    std = float(e_m[mask.astype(bool)].std()) or 1.0
    return {"e_v": torch.from_numpy(e_v), "e_r": torch.from_numpy(e_r), "e_m": torch.from_numpy(e_m),
            "std": torch.tensor(std)}


def _distill(data: dict, variant: str, out: Path, seed: int) -> None:
    from cotvtm.training.hyperparameters import DistillConfig, StageConfig
    from cotvtm.training.recipe import fit_in_memory

    config = PriorConfig.tiny(clip_dim=data["e_v"].shape[1], rationale_dim=data["e_r"].shape[1],
                              music_len=data["e_m"].shape[1], music_dim=data["e_m"].shape[2], variant=variant,
                              music_scale=1.0 / float(data["std"]))
    torch.manual_seed(seed)
    prior = TwoStagePrior(config)
    stage = StageConfig(lr=2e-3, batch_size=32, epochs=EPOCHS, lr_schedule="cosine")
    train = {k: data[k] for k in ("e_v", "e_r", "e_m")}
    history = fit_in_memory(prior, train, DistillConfig(variant=variant, arch="tiny", stage1=stage, stage2=stage,
                                                        seed=seed))
    prior.config = replace(prior.config, trained=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        prior.save_pretrained(staging)
        (staging / "training.json").write_text(json.dumps(
            {"recipe": "fit_in_memory on offline-teacher labels of generated scenes", "scenes": SCENES,
             "epochs_per_stage": EPOCHS, "final_loss": history[-1]["train_loss"]}, indent=2) + "\n")
        os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def prepare_priors(cfg, refs, variants: list[str], echo=print) -> dict[str, str | None]:
    """variant -> checkpoint dir (None: an untrained tiny prior). Raises when a real preset lacks one."""
    dirs: dict[str, str | None] = {}
    missing = [v for v in variants if not cfg.priors.get(v)]
    if missing and cfg.preset != "tiny":
        flags = ", ".join(FLAGS[v] for v in missing)
        raise CotvtmError(f"the {cfg.preset} preset needs a trained prior for each prior method: pass {flags} "
                          "(from `cotvtm distill --variant ...`), or leave those methods out with --method")
    for variant in variants:
        given = cfg.priors.get(variant)
        if given:
            if not (Path(given) / "config.json").is_file():
                raise CotvtmError(f"{given}: not a prior checkpoint (no config.json); passed with {FLAGS[variant]}")
            dirs[variant] = str(given)
    todo = [v for v in missing if cfg.train_tiny_priors and not (Path(cfg.out) / "priors" / v / "config.json").exists()]
    data = None
    for variant in missing:
        out = Path(cfg.out) / "priors" / variant
        if not cfg.train_tiny_priors:
            dirs[variant] = None
            continue
        if variant in todo:
            if data is None:
                echo(f"evaluate: distilling tiny priors ({', '.join(todo)}) on {SCENES} offline-teacher labels")
                data = _training_data(refs, cfg.seed)
            _distill(data, variant, out, cfg.seed)
        dirs[variant] = str(out)
    return dirs


def load_method_prior(directory: str | None, variant: str, clip_dim: int, music_dim: int, seed: int) -> TwoStagePrior:
    """The checkpoint, or an untrained tiny prior of ``variant`` (seeded); checked against the encoders."""
    if directory is None:
        torch.manual_seed(seed)
        return TwoStagePrior(PriorConfig.tiny(clip_dim=clip_dim, music_dim=music_dim, variant=variant)).eval()
    prior = TwoStagePrior.from_pretrained(directory)
    c = prior.config
    if c.variant != variant:
        raise CotvtmError(f"{directory}: a {c.variant!r} prior, passed as {FLAGS[variant]}")
    if (c.clip_dim, c.music_dim) != (clip_dim, music_dim):
        raise CotvtmError(f"{directory}: prior expects CLIP {c.clip_dim}-d and T5 {c.music_dim}-d embeddings, "
                          f"the models give {clip_dim}-d and {music_dim}-d")
    return prior


def parameters(module) -> int:
    return int(sum(np.prod(p.shape) for p in module.parameters()))
