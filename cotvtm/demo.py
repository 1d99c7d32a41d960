"""The offline demo: the whole chain on the tiny models, no LLM, no downloads.

    generated scenes -> offline CoT teacher -> labels -> embeddings -> distilled prior
    sample videos -> soundtrack job with that prior -> outputs

Every step is idempotent: a rerun reuses labels, the trained prior and finished videos.
"""

from dataclasses import dataclass, replace
from pathlib import Path

from cotvtm import models
from cotvtm.options import Checked, at_least, setting
from cotvtm.settings import Access, Resources, SoundtrackConfig
from cotvtm.training.hyperparameters import TINY_MUSIC_LEN
from cotvtm.training.hyperparameters import DistillConfig, StageConfig


@dataclass(frozen=True)
class DemoPlan(Checked):
    """Where the demo works, and how much it labels and trains (the ``demo`` command's own flags)."""

    workdir: Path = setting(Path("demo_out"), metavar="DIR", help="where the labels, shards, prior, sample "
                                                                  "videos and outputs go")
    scenes: int = setting(240, check=at_least(1), help="generated scenes to label and train on")
    epochs: int = setting(30, check=at_least(1), help="epochs per distillation stage")
    music_len: int = TINY_MUSIC_LEN

    def __post_init__(self):
        object.__setattr__(self, "workdir", Path(self.workdir))  # a str from the command line or the API
        super().__post_init__()

    def distill_config(self) -> DistillConfig:
        stage = StageConfig(lr=2e-3, batch_size=32, epochs=self.epochs, lr_schedule="cosine")
        return DistillConfig(arch="tiny", stage1=stage, stage2=stage, checkpoint_every=self.epochs)


def train_prior(plan: DemoPlan, refs: models.ModelRefs, echo=print) -> Path:
    """Label generated scenes offline, embed them and distill a tiny prior; returns its folder."""
    from cotvtm.training.embed import run_embed
    from cotvtm.teacher.build import build_labels as label
    from cotvtm.teacher.settings import BuildConfig
    from cotvtm.training.distill import distill
    from cotvtm.training.shards import INDEX

    echo(f"cotvtm demo: 1/3 labelling {plan.scenes} generated scenes with the offline teacher")
    labels = label(BuildConfig(out=str(plan.workdir / "labels"), scenes=plan.scenes), echo=echo)
    shards = plan.workdir / "shards"
    echo("cotvtm demo: 2/3 embedding the labels (CLIP, rationale encoder, MusicGen's T5)")
    if not (shards / INDEX).exists():
        run_embed(labels.labels_dir, str(shards), refs, plan.music_len)
    echo("cotvtm demo: 3/3 distilling the prior (Ray Train)")
    return distill(str(shards), str(plan.workdir / "distill"), plan.distill_config()).prior_dir


def run_demo(plan: DemoPlan, cfg: SoundtrackConfig, res: Resources, cache_dir: Path | None = None, echo=print):
    from cotvtm.pipelines.runner import run
    from cotvtm.raycluster import init_ray
    from cotvtm.video.samples import make_sample_videos

    init_ray()
    refs = models.resolve("tiny", cache_dir=cache_dir, seed=cfg.models.tiny_seed)
    prior = train_prior(plan, refs, echo) if cfg.models.prior is None else cfg.models.prior
    inputs = plan.workdir / "inputs"
    videos = make_sample_videos(inputs)
    echo(f"cotvtm demo: soundtracking {len(videos)} sample videos from {inputs} with the prior in {prior}")
    cfg = replace(cfg, models=replace(cfg.models, preset="tiny", prior=str(prior)))
    summary = run(Access(source=str(inputs), dest=str(plan.workdir / "outputs"), cache_dir=cache_dir), cfg, res, echo=echo)
    echo(f"cotvtm demo: soundtracked videos and sidecars are in {summary.output}")
    return summary
