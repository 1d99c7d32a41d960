"""What the two-stage prior buys, on synthetic tasks with known answers (in-process training)."""

import pytest
import torch

from cotvtm.prior import PriorConfig, TwoStagePrior
from cotvtm.training import synthetic
from cotvtm.training.hyperparameters import DistillConfig, StageConfig
from cotvtm.training.recipe import fit_in_memory


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train(task, variant: str, epochs: int) -> TwoStagePrior:
    torch.manual_seed(0)
    scale = 1.0 / float(task.train["e_m"].std())
    prior = TwoStagePrior(PriorConfig.tiny(variant=variant, music_scale=scale, sample_steps=100))
    stage = StageConfig(lr=3e-3, batch_size=64, epochs=epochs, lr_schedule="cosine")
    fit_in_memory(prior, task.train, DistillConfig(variant=variant, arch="tiny", stage1=stage, stage2=stage))
    return prior


def test_one_to_many_diffusion_samples_targets_while_regression_averages():
    task = synthetic.one_to_many(inputs=8, k=3, samples_per_input=200)
    inputs = task.test_inputs.repeat_interleave(16, 0)
    allowed = task.test_targets.repeat_interleave(16, 0)
    diffusion = _train(task, "no_rationale", epochs=100)
    samples, _ = diffusion.sample(inputs, guidance_scale=1.0, generator=torch.Generator().manual_seed(0))
    assert synthetic.hit_rate(samples, allowed) >= 0.95
    nearest, _ = synthetic.nearest(samples, task.all_targets)
    assert set(nearest.tolist()) == set(range(len(task.all_targets)))  # every target is reached

    regression = _train(task, "mlp_mlp", epochs=40)
    predictions, _ = regression.sample(task.test_inputs)
    assert synthetic.hit_rate(predictions, task.test_targets) == 0.0
    means = task.test_targets.mean(dim=1)
    to_mean = (predictions - means).flatten(1).norm(dim=-1)
    to_target = synthetic.nearest(predictions, task.all_targets)[1] * task.all_targets.flatten(1).norm(dim=-1).mean()
    assert (to_mean < to_target).all()  # the regressor lands between its targets


def test_latent_chain_two_stage_beats_no_rationale():
    task = synthetic.latent_chain()
    truth, _ = synthetic.nearest(task.test_targets[:, 0], task.all_targets)
    accuracy = {}
    for variant in ("full", "no_rationale"):
        prior = _train(task, variant, epochs=60)
        samples, _ = prior.sample(task.test_inputs, guidance_scale=1.0, generator=torch.Generator().manual_seed(0))
        accuracy[variant] = float((synthetic.nearest(samples, task.all_targets)[0] == truth).float().mean())
    assert accuracy["full"] >= accuracy["no_rationale"] + 0.2, accuracy
