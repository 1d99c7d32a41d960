"""``cotvtm embed`` and ``cotvtm distill`` (``python -m jobs.embed|distill``): training the prior.

Their flags are the fields of ``Embedding`` (``cotvtm.training.settings``; the models, cache and
device borrowed from the soundtrack job's), ``DistillConfig`` and ``DistillRun``
(``cotvtm.training.hyperparameters``), the names the Python API takes.
"""

import argparse

from cotvtm.options import command, given
from cotvtm.training.hyperparameters import DistillConfig, DistillRun
from cotvtm.training.settings import Embedding


def _embed(a: argparse.Namespace) -> int:
    from cotvtm.api import embed

    index = embed(**given(a, Embedding))
    print(f"cotvtm: embedded {index.count} records into {a.out} (dims {index.dims})")
    return 0


def _distill(a: argparse.Namespace) -> int:
    from cotvtm.api import distill

    result = distill(**given(a, DistillRun, DistillConfig))
    print(f"cotvtm: prior written to {result.prior_dir} (val_loss {result.metrics.get('val_loss', float('nan')):.4f});"
          f" use it with --prior {result.prior_dir}")
    return 0


def register_embed(subparsers) -> None:
    command(subparsers, "embed", "embed labelled records into shards (E_v, E_r, E_m)", ((None, Embedding),), _embed)


def register_distill(subparsers) -> None:
    command(subparsers, "distill", "train the two-stage prior on embedding shards (Ray Train)",
            ((None, DistillRun), (None, DistillConfig)), _distill)
