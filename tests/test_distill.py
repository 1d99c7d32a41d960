"""Distillation on Ray Train: shards in, a trained prior out that the soundtrack job loads."""

import io
import json
import warnings
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cotvtm import models
from cotvtm.cli import main
from cotvtm.settings import Access, ModelChoice, Resources, SoundtrackConfig
from cotvtm.pipelines.runner import run
from cotvtm.prior import TwoStagePrior
from cotvtm.quiet import RAY_FALSE_ALARMS
from cotvtm.training.hyperparameters import DistillConfig, StageConfig
from cotvtm.training.distill import distill
from cotvtm.training.shards import is_validation, load_split, read_index, write_arrays
from cotvtm.video.samples import make_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shards(tmp_path_factory, ray_session):
    rng = np.random.default_rng(0)
    n = 240
    directory = tmp_path_factory.mktemp("shards")
    mask = np.ones((n, 8), np.int64)
    mask[:, 6:] = 0
    e_m = rng.standard_normal((n, 8, 32)).astype(np.float32) * mask[..., None]
    write_arrays(directory, {"id": [f"c{i}" for i in range(n)], "e_v": rng.standard_normal((n, 32)),
                             "e_r": rng.standard_normal((n, 32)), "e_m": e_m, "mask": mask})
    return directory


# What Ray Train and Ray Data print on their own during a run (their INFO lines, the
# placement-group cleaner's, Ray Data's warning about row filters): none of it reaches the console.
RAY_CHATTER = ("SplitCoordinator", "TrainController", "PlacementGroupCleaner", "RayTrainWorker", "DatasetManager",
               "Execution plan", "Progress bars", "instead of 'fn'", "is deprecated")


@pytest.fixture(scope="module")
def trained(shards, tmp_path_factory):
    """The run, and what it printed (the workers' lines reach the driver's standard streams)."""
    stage = StageConfig(lr=1e-3, batch_size=64, epochs=2)
    cfg = DistillConfig(arch="tiny", stage1=stage, stage2=stage, val_fraction=0.1)
    out = tmp_path_factory.mktemp("distilled")
    console = io.StringIO()
    with redirect_stdout(console), redirect_stderr(console), warnings.catch_warnings():
        warnings.simplefilter("always")  # shown, not recorded, as a console shows them; and as
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # Python does outside __main__
        warnings.showwarning = lambda *args, **_: console.write(warnings.formatwarning(*args))
        result = distill(str(shards), str(out), cfg)
    return result, cfg, out, console.getvalue()


def test_index_describes_the_shards(shards):
    index = read_index(shards)
    assert index.count == 240 and index.dims == {"clip_dim": 32, "rationale_dim": 32, "music_dim": 32,
                                                 "music_len": 8}


def test_both_stages_run_and_the_exported_prior_is_marked_trained(trained):
    result, cfg, _, _ = trained
    assert result.metrics["stage"] == 2 and result.metrics["step"] == len(cfg.epochs()) == 4
    assert np.isfinite(result.metrics["val_loss"]) and result.metrics["val_loss"] > 0
    prior = TwoStagePrior.from_pretrained(result.prior_dir)
    assert prior.config.trained and prior.config.variant == "full"
    record = json.loads((result.prior_dir / "training.json").read_text())
    assert record["shards"]["count"] == 240 and record["distill"]["stage1"]["epochs"] == 2


def test_the_run_prints_none_of_ray_s_own_lines(trained):
    """Beside Ray's known false alarm, which the command line's own filter drops (``cotvtm/quiet.py``)."""
    shown = [line for line in trained[3].splitlines() if not any(a.decode() in line for a in RAY_FALSE_ALARMS)]
    assert not [line for line in shown if any(word in line for word in RAY_CHATTER)], "\n".join(shown)


def test_the_split_holds_out_the_ids_that_is_validation_names(shards):
    train, val = load_split(shards, 0.1)
    held_out = sum(is_validation(f"c{i}", 0.1) for i in range(240))
    assert 0 < held_out < 240 and (val.count(), train.count()) == (held_out, 240 - held_out)


def test_rerun_with_the_same_settings_keeps_the_trained_prior(trained, shards):
    result, cfg, out, _ = trained
    before = (result.prior_dir / "model.safetensors").stat().st_mtime_ns
    again = distill(str(shards), str(out), cfg)
    assert again.run_dir == result.run_dir and again.metrics["step"] == result.metrics["step"]
    assert (result.prior_dir / "model.safetensors").stat().st_mtime_ns == before


def test_prior_output_fits_musicgen_and_the_soundtrack_job_uses_it(trained, tiny_refs, tmp_path, model_cache):
    result, _, _, _ = trained
    prior = models.load_prior(str(result.prior_dir), clip_dim=32, music_dim=32, rationale_dim=32)
    e_m, mask = prior.sample(torch.randn(2, 32), generator=torch.Generator().manual_seed(0))
    musicgen, _ = models.load_musicgen(tiny_refs.musicgen)
    assert e_m.shape == (2, prior.config.music_len, musicgen.config.text_encoder.d_model)
    assert mask.shape == e_m.shape[:2] and mask[:, 0].all()

    (tmp_path / "in").mkdir()
    make_video(tmp_path / "in" / "clip.mp4", duration=3)
    cfg = SoundtrackConfig(models=ModelChoice(preset="tiny", prior=str(result.prior_dir)))
    where = Access(source=str(tmp_path / "in"), dest=str(tmp_path / "out"), cache_dir=model_cache)
    summary = run(where, cfg, Resources(), echo=lambda _: None)
    assert summary.ok == 1
    sidecar = json.loads(next((tmp_path / "out").glob("clip.*.json")).read_text())
    assert sidecar["prior_trained"] is True and sidecar["models"]["prior"] == str(result.prior_dir)
    assert sidecar["note"] is None
    [tags] = sidecar["provenance"]["metadata"].values()  # what the output's container says made its music
    assert tags["format"]["comment"].endswith(f"; prior {result.prior_dir.name})")


def test_a_prior_records_the_text_space_its_shards_were_embedded_in(shards):
    """Shards embedded for Stable Audio 3 (T5Gemma's space) make a prior for that space; shards from
    before spaces were recorded were T5's; the soundtrack job reads the record (text_space.check)."""
    from cotvtm import text_space
    from cotvtm.training.distill import prior_config

    index = read_index(shards)
    index.encoders["text_space"] = "t5gemma"
    assert prior_config(DistillConfig(arch="tiny"), index).text_space == "t5gemma"
    index.encoders.pop("text_space")
    assert prior_config(DistillConfig(arch="tiny"), index).text_space == text_space.EARLIER == "t5"


def test_the_command_s_stage_flags_set_both_stages_and_the_rest_stays_the_paper_s(monkeypatch, tmp_path):
    """What ``cotvtm distill`` trains with: the flags given, over the paper's configuration; its
    record (``to_dict``, which names a run's checkpoints) reads back the same."""
    seen = []
    monkeypatch.setattr("cotvtm.raycluster.init_ray", lambda *_, **__: "")
    monkeypatch.setattr("cotvtm.training.distill.distill", lambda shards, out, cfg, storage_path: seen.append(
        (cfg, storage_path)) or SimpleNamespace(prior_dir=tmp_path, metrics={}))
    assert main(["distill", "s", "o", "--epochs1", "2", "--lr2", "0.01", "--batch-size", "32", "--lr-schedule",
                 "cosine", "--workers", "2", "--gpu", "--storage-path", "/runs"]) == 0
    assert main(["distill", "s", "o"]) == 0
    assert main(["distill", "s", "o", "--epochs2", "0"]) == 2  # refused before any work
    paper = DistillConfig()
    both = {"batch_size": 32, "lr_schedule": "cosine"}
    assert seen == [(replace(paper, stage1=replace(paper.stage1, epochs=2, **both), num_workers=2, use_gpu=True,
                             stage2=replace(paper.stage2, lr=0.01, **both)), "/runs"), (paper, None)]
    assert DistillConfig.from_dict(json.loads(json.dumps(seen[0][0].to_dict()))) == seen[0][0]
