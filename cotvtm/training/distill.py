"""Run the distillation on Ray Train and export the prior for the soundtrack job."""

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

from cotvtm import text_space
from cotvtm.prior import PriorConfig, TwoStagePrior
from cotvtm.storage.local import atomic_write_bytes
from cotvtm.training.hyperparameters import DistillConfig
from cotvtm.training.loop import PRIOR_DIR, TRAIN_CONSOLE_LEVEL, train_loop
from cotvtm.training.shards import read_index, load_split


@dataclass
class DistillResult:
    prior_dir: Path
    metrics: dict
    run_dir: str


def prior_config(cfg: DistillConfig, index) -> PriorConfig:
    """The prior's shape follows the encoders that made the shards."""
    base = PriorConfig.tiny if cfg.arch == "tiny" else PriorConfig.paper
    return base(clip_dim=index.dims["clip_dim"], rationale_dim=index.dims["rationale_dim"],
                music_dim=index.dims["music_dim"], music_len=index.dims["music_len"], variant=cfg.variant,
                music_scale=1.0 / max(index.music_std, 1e-6),
                text_space=index.encoders.get("text_space", text_space.EARLIER))


def run_name(shards: str, out: str, cfg: DistillConfig) -> str:
    """Same inputs and settings -> same name, so a rerun resumes the interrupted run."""
    key = json.dumps([str(Path(shards).resolve()), str(Path(out).resolve()), cfg.to_dict()], sort_keys=True)
    return "distill-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def distill(shards: str, out: str, cfg: DistillConfig, storage_path: str | None = None) -> DistillResult:
    """Train both stages (resuming a run of the same name) and write ``out``/prior."""
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig

    index = read_index(shards)
    finished = _finished(Path(out), index, cfg)
    if finished is not None:
        return finished
    train, val = load_split(shards, cfg.val_fraction)
    storage_path = storage_path or str(Path(out).resolve() / "runs")
    trainer = _trainer_class()(
        train_loop,
        train_loop_config={"distill": cfg.to_dict(), "prior": prior_config(cfg, index).to_dict()},
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu,
                                     resources_per_worker={"CPU": 1}, placement_strategy=cfg.placement),
        run_config=RunConfig(name=run_name(shards, out, cfg), storage_path=storage_path,
                             failure_config=FailureConfig(max_failures=3),
                             checkpoint_config=CheckpointConfig(num_to_keep=2),
                             logging_config=LoggingConfig(log_level=TRAIN_CONSOLE_LEVEL)),
        datasets={"train": train, "val": val},
        dataset_config=DataConfig(datasets_to_split=["train"]),
    )
    result = trainer.fit()
    prior_dir = _export(result.checkpoint, Path(out), index, cfg, result.metrics, str(result.path), shards)
    return DistillResult(prior_dir, result.metrics, str(result.path))


def _trainer_class():
    """Ray Train's trainer; on the local Ray that this process started, the one without the
    placement-group cleaner, which has nothing to guard there (``local_trainer.py``)."""
    from ray.train.torch import TorchTrainer

    from cotvtm.raycluster import runs_local_ray

    if not runs_local_ray():
        return TorchTrainer
    from cotvtm.training.local_trainer import LocalTorchTrainer

    return LocalTorchTrainer


def index_explanations(shards: str, prior_dir: Path) -> None:
    """Store the training set's music descriptions with the prior (when the shards have them)."""
    import ray.data

    from cotvtm.prior.explain import MAX_ENTRIES, ExplanationIndex
    from cotvtm.training.shards import DATA

    ds = ray.data.read_parquet(str(Path(shards) / DATA))
    if "x_mt" not in ds.columns():
        return
    batch = ds.select_columns(["x_mt", "e_m", "mask"]).take_batch(MAX_ENTRIES, batch_format="numpy")
    ExplanationIndex.build(list(batch["x_mt"]), batch["e_m"], batch["mask"]).save(prior_dir)


def _shard_record(index) -> dict:
    return {"encoders": index.encoders, "dims": index.dims, "count": index.count}


def _finished(out: Path, index, cfg: DistillConfig) -> DistillResult | None:
    """A prior already exported from the same shards and settings: nothing to do.

    (An interrupted run is different: Ray Train resumes it from its latest checkpoint,
    because the rerun uses the same run name and storage path.)
    """
    record_path = out / PRIOR_DIR / "training.json"
    if not record_path.exists():
        return None
    record = json.loads(record_path.read_text())
    if record.get("distill") != json.loads(json.dumps(cfg.to_dict())) or record.get("shards") != _shard_record(index):
        return None
    return DistillResult(out / PRIOR_DIR, record["final_metrics"], record.get("run_dir", ""))


def _export(checkpoint, out: Path, index, cfg: DistillConfig, metrics: dict, run_dir: str, shards: str) -> Path:
    """The final prior, marked trained, with a record of how it was made."""
    with checkpoint.as_directory() as directory:
        prior = TwoStagePrior.from_pretrained(Path(directory) / PRIOR_DIR)
    prior.config = replace(prior.config, trained=True)
    target = out / PRIOR_DIR
    prior.save_pretrained(target)
    index_explanations(shards, target)
    record = {"distill": cfg.to_dict(), "shards": _shard_record(index), "final_metrics": metrics,
              "run_dir": run_dir}
    atomic_write_bytes(target / "training.json", json.dumps(record, indent=2, default=str).encode())
    return target
