"""The per-worker training loop: stage 1 (MLP, MSE), then stage 2 (EmbedDiff, epsilon loss).

Runs inside Ray Train workers. Progress is a list of (stage, epoch) steps; a checkpoint
records the last finished step, so a restarted worker group resumes right after it.
The model math lives in cotvtm/prior and the recipe in cotvtm/training/recipe.py; this
file is the distributed part: data shards, checkpoints, resume, reports.
"""

import pickle
import tempfile
from pathlib import Path

import torch

from cotvtm.errors import ModelError
from cotvtm.prior import PriorConfig, TwoStagePrior
from cotvtm.training.hyperparameters import DistillConfig, StageConfig
from cotvtm.training.recipe import (StageObjective, optimizer_for, set_lr, train_epoch, trainable_params,
                                    validation_loss)

STATE = "train_state.pt"
PRIOR_DIR = "prior"
# Ray Train's console level: its INFO lines (the worker group's start, each report and checkpoint)
# go only to its log files in the session (its system logs keep every level); warnings still show.
TRAIN_CONSOLE_LEVEL = "WARNING"


def _restore(prior: TwoStagePrior):
    """Load the latest checkpoint, if any; return (steps already done, optimizer state)."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return 0, None
    with checkpoint.as_directory() as directory:
        return read_checkpoint(prior, Path(directory))


def read_checkpoint(prior: TwoStagePrior, directory: Path) -> tuple[int, dict | None]:
    """Put a checkpoint's weights into ``prior``; return (steps done, optimizer state).

    Checkpoints live on shared storage or S3, so the state is read weights-only: tensors,
    numbers and plain containers (what ``_save`` writes), never objects that run code.
    """
    state = _read_state(directory / STATE)
    loaded = TwoStagePrior.from_pretrained(directory / PRIOR_DIR)
    prior.load_state_dict(loaded.state_dict())
    return state["done"], state.get("optimizer")


def _read_state(path: Path) -> dict:
    """``train_state.pt`` as written by ``_save``; anything else is a one-line ModelError."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = [line.strip() for line in str(exc).splitlines() if "global" in line.lower()]
        raise ModelError(f"{path}: refused: not a plain training state ({found[0] if found else exc})") from None
    except (OSError, RuntimeError, EOFError) as exc:
        raise ModelError(f"{path}: cannot read the training state ({exc})") from None
    if not isinstance(state, dict) or not isinstance(state.get("done"), int) or state["done"] < 0:
        raise ModelError(f"{path}: refused: not a training state (expected a dict with a step count 'done')")
    return state


def _batches(shard, batch_size: int, device):
    return shard.iter_torch_batches(batch_size=batch_size, device=device, drop_last=False,
                                    dtypes={"e_v": torch.float32, "e_r": torch.float32, "e_m": torch.float32})


def _save(prior: TwoStagePrior, optimizer, done: int, directory: Path) -> None:
    prior.save_pretrained(directory / PRIOR_DIR)
    torch.save({"done": done, "optimizer": optimizer.state_dict()}, directory / STATE)


def train_loop(loop_config: dict) -> None:
    import ray.train
    import ray.train.torch

    _quiet_reports()
    cfg = DistillConfig.from_dict(loop_config["distill"])
    torch.manual_seed(cfg.seed + ray.train.get_context().get_world_rank())
    device = ray.train.torch.get_device()
    prior = TwoStagePrior(PriorConfig.from_dict(loop_config["prior"])).to(device)
    done, optimizer_state = _restore(prior)
    nodes = _gather_nodes()
    train_shard, val_shard = ray.train.get_dataset_shard("train"), ray.train.get_dataset_shard("val")
    steps = cfg.epochs()
    objective, optimizer, current = None, None, None
    for index in range(done, len(steps)):
        stage, epoch = steps[index]
        settings: StageConfig = cfg.stage1 if stage == 1 else cfg.stage2
        if stage != current:
            objective, optimizer = _setup_stage(prior, stage, cfg, settings)
            if optimizer_state is not None and index == done and done > 0 and steps[done - 1][0] == stage:
                optimizer.load_state_dict(optimizer_state)
            current = stage
        set_lr(optimizer, settings, epoch)
        train_loss = train_epoch(objective, optimizer, _batches(train_shard, settings.batch_size, device))
        last_of_stage = index + 1 == len(steps) or steps[index + 1][0] != stage
        if (epoch + 1) % cfg.checkpoint_every == 0 or last_of_stage:
            metrics = {"stage": stage, "epoch": epoch, "step": index + 1, "train_loss": train_loss,
                       "val_loss": validation_loss(objective, _batches(val_shard, settings.batch_size, device)),
                       "resumed_from": done, "nodes": nodes}
            _report(prior, optimizer, metrics, index + 1)


def _quiet_reports() -> None:
    """Ray Train 2.60 logs each report (its metrics and checkpoint) at INFO under a logger named
    by its file's path, which its ``LoggingConfig`` does not reach: the same level, set here."""
    import logging

    from ray.train.v2._internal.execution import context

    logging.getLogger(context.__file__).setLevel(TRAIN_CONSOLE_LEVEL)


def _setup_stage(prior, stage, cfg, settings):
    import ray.train
    import ray.train.torch

    params = trainable_params(prior, stage)
    objective = StageObjective(prior, stage, cfg.stage2_condition)
    if ray.train.get_context().get_world_size() > 1:
        objective = ray.train.torch.prepare_model(objective, move_to_device=False)
    return objective, optimizer_for(params, settings)


def _report(prior, optimizer, metrics: dict, done: int) -> None:
    """Metrics from every worker, the checkpoint from rank 0 (all ranks hold the same weights)."""
    import ray.train

    with tempfile.TemporaryDirectory() as tmp:
        if ray.train.get_context().get_world_rank() == 0:
            _save(prior, optimizer, done, Path(tmp))
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        else:
            ray.train.report(metrics)


def _gather_nodes() -> list[str]:
    """The Ray node ids the workers run on (so a run can show it spanned nodes)."""
    import ray
    import torch.distributed as dist

    mine = ray.get_runtime_context().get_node_id()
    if not (dist.is_available() and dist.is_initialized()):
        return [mine]
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    return sorted(set(everyone))
