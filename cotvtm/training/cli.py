"""The ``embed`` and ``distill`` commands (``cotvtm embed|distill``, ``python -m jobs.embed|distill``)."""

import argparse
from pathlib import Path

from cotvtm.models import PRESET_NAMES
from cotvtm.settings import DECODERS
from cotvtm.training.hyperparameters import DistillConfig, StageConfig
from cotvtm.training.hyperparameters import PAPER_MUSIC_LEN, TINY_MUSIC_LEN



def add_embed(subparsers) -> None:
    p = subparsers.add_parser("embed", help="embed labelled records into shards (E_v, E_r, E_m)")
    p.add_argument("labels", help="a labels folder written by `cotvtm label` (OUT/labels-<prompt>-<model>)")
    p.add_argument("out", help="shards folder (data/*.parquet + index.json); rewritten")
    p.add_argument("--preset", default="tiny", choices=PRESET_NAMES)
    for name in ("clip", "t5", "rationale"):
        p.add_argument(f"--{name}", default=None, metavar="REF")
    p.add_argument("--decoder", default=None, choices=DECODERS,
                   help="the decoder the prior will drive: E_m in its text encoder's space (MusicGen and Stable "
                        "Audio Open read T5's, Stable Audio 3 T5Gemma's; default: T5's)")
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--music-len", type=int, default=None,
                   help=f"E_m tokens (default {TINY_MUSIC_LEN} for tiny, {PAPER_MUSIC_LEN} otherwise)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.set_defaults(func=_embed)


def _embed(a: argparse.Namespace) -> int:
    from cotvtm.api import embed

    index = embed(a.labels, a.out, preset=a.preset, music_len=a.music_len, device=a.device, cache_dir=a.cache_dir,
                  batch_size=a.batch_size, decoder=a.decoder, clip=a.clip, t5=a.t5, rationale=a.rationale)
    print(f"cotvtm: embedded {index.count} records into {a.out} (dims {index.dims})")
    return 0


def add_distill(subparsers) -> None:
    d = DistillConfig()
    p = subparsers.add_parser("distill", help="train the two-stage prior on embedding shards (Ray Train)")
    p.add_argument("shards", help="a shards folder written by `cotvtm embed`")
    p.add_argument("out", help="output folder: OUT/prior is the checkpoint the soundtrack job loads (--prior)")
    p.add_argument("--variant", default=d.variant, choices=["full", "mlp_mlp", "no_rationale"])
    p.add_argument("--arch", default=d.arch, choices=["paper", "tiny"], help="prior widths")
    p.add_argument("--epochs1", type=int, default=d.stage1.epochs, help="stage 1 (MLP) epochs")
    p.add_argument("--epochs2", type=int, default=d.stage2.epochs, help="stage 2 (EmbedDiff) epochs")
    p.add_argument("--lr1", type=float, default=d.stage1.lr)
    p.add_argument("--lr2", type=float, default=d.stage2.lr)
    p.add_argument("--batch-size", type=int, default=d.stage1.batch_size)
    p.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine"])
    p.add_argument("--workers", type=int, default=d.num_workers)
    p.add_argument("--gpu", action="store_true", help="one GPU per worker")
    p.add_argument("--placement", default=d.placement, choices=["PACK", "SPREAD", "STRICT_SPREAD"])
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, help="epochs")
    p.add_argument("--storage-path", default=None, help="Ray Train storage (shared by all nodes); default OUT/runs")
    p.add_argument("--seed", type=int, default=d.seed)
    p.set_defaults(func=_distill)


def distill_config(a: argparse.Namespace) -> DistillConfig:
    def stage(lr, epochs):
        return StageConfig(lr=lr, batch_size=a.batch_size, epochs=epochs, lr_schedule=a.lr_schedule)

    return DistillConfig(variant=a.variant, arch=a.arch, stage1=stage(a.lr1, a.epochs1),
                         stage2=stage(a.lr2, a.epochs2), num_workers=a.workers, use_gpu=a.gpu,
                         placement=a.placement, checkpoint_every=a.checkpoint_every, seed=a.seed)


def _distill(a: argparse.Namespace) -> int:
    from cotvtm.api import distill

    result = distill(a.shards, a.out, config=distill_config(a), storage_path=a.storage_path)
    print(f"cotvtm: prior written to {result.prior_dir} (val_loss {result.metrics.get('val_loss', float('nan')):.4f});"
          f" use it with --prior {result.prior_dir}")
    return 0
