"""The distillation recipe in plain torch: objectives, parameter groups, one epoch.

Shared by the Ray Train worker loop (cotvtm/training/loop.py) and by ``fit_in_memory``,
which trains on tensors in one process (synthetic studies, benchmarks, small experiments).
"""

import math
from collections.abc import Iterable

import torch
from torch import nn

from cotvtm.prior import TwoStagePrior
from cotvtm.training.hyperparameters import DistillConfig, StageConfig


class StageObjective(nn.Module):
    """One stage's loss as a forward(), so DistributedDataParallel syncs its gradients."""

    def __init__(self, prior: TwoStagePrior, stage: int, condition: str = "teacher"):
        super().__init__()
        self.prior, self.stage, self.condition = prior, stage, condition

    def forward(self, e_v, e_r, e_m, generator: torch.Generator | None = None):
        if self.stage == 1:
            return self.prior.rationale_loss(e_v, e_r)
        if self.condition == "mlp" and self.prior.mlp is not None:
            with torch.no_grad():
                e_r = self.prior.forward_rationale(e_v)
        return self.prior.music_loss(e_v, e_r, e_m, generator=generator)


def trainable_params(prior: TwoStagePrior, stage: int) -> list[nn.Parameter]:
    """Stage 1 trains the MLP; stage 2 everything else (the MLP stays frozen)."""
    for name, param in prior.named_parameters():
        param.requires_grad = name.startswith("mlp.") == (stage == 1)
    return [p for p in prior.parameters() if p.requires_grad]


def optimizer_for(params, settings: StageConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)


def set_lr(optimizer, settings: StageConfig, epoch: int) -> None:
    """Constant, or cosine decay to 1% over the stage's epochs (sharpens diffusion samples)."""
    scale = 1.0
    if settings.lr_schedule == "cosine":
        scale = 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * epoch / max(settings.epochs, 1)))
    for group in optimizer.param_groups:
        group["lr"] = settings.lr * scale


def train_epoch(objective, optimizer, batches: Iterable[dict]) -> float:
    """One pass; returns the mean training loss."""
    objective.train()
    total, count = 0.0, 0
    for batch in batches:
        loss = objective(batch["e_v"], batch["e_r"], batch["e_m"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total, count = total + float(loss.detach()) * len(batch["e_v"]), count + len(batch["e_v"])
    return total / max(count, 1)


def validation_loss(objective, batches: Iterable[dict], seed: int = 1234) -> float:
    """Mean loss with fixed diffusion noise, so epochs compare fairly; training RNG untouched."""
    objective.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            generator = torch.Generator(device=batch["e_v"].device).manual_seed(seed + count)
            loss = objective(batch["e_v"], batch["e_r"], batch["e_m"], generator=generator)
            total, count = total + float(loss.detach()) * len(batch["e_v"]), count + len(batch["e_v"])
    objective.train()
    return total / max(count, 1)


def _tensor_batches(data: dict[str, torch.Tensor], batch_size: int, generator: torch.Generator):
    order = torch.randperm(len(data["e_v"]), generator=generator)
    for start in range(0, len(order), batch_size):
        index = order[start: start + batch_size]
        yield {key: value[index] for key, value in data.items()}


def fit_in_memory(prior: TwoStagePrior, data: dict[str, torch.Tensor], cfg: DistillConfig) -> list[dict]:
    """Both stages on in-memory tensors (e_v, e_r, e_m); returns per-epoch training losses."""
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    history, current = [], None
    for stage, epoch in cfg.epochs():
        settings = cfg.stage1 if stage == 1 else cfg.stage2
        if stage != current:
            objective = StageObjective(prior, stage, cfg.stage2_condition)
            optimizer, current = optimizer_for(trainable_params(prior, stage), settings), stage
        set_lr(optimizer, settings, epoch)
        loss = train_epoch(objective, optimizer, _tensor_batches(data, settings.batch_size, generator))
        history.append({"stage": stage, "epoch": epoch, "train_loss": loss})
    prior.eval()
    return history
