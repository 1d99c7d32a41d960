"""What the distilled prior buys, on synthetic tasks with known answers (CPU, in process).

    .venv/bin/python bench/prior_synthetic.py [--epochs 150]

one-to-many: each input has k equally likely targets. Prints the share of samples that land
near a true target and the share of targets reached, for EmbedDiff and for the MLP regressor.
latent chain: prints held-out class accuracy of the full two-stage prior and of the
no-rationale ablation, and the margin between them.
"""

import argparse
import time

import torch

from cotvtm.prior import PriorConfig, TwoStagePrior
from cotvtm.training import synthetic
from cotvtm.training.hyperparameters import DistillConfig, StageConfig
from cotvtm.training.recipe import fit_in_memory


def train(task, variant: str, epochs: int, seed: int) -> TwoStagePrior:
    torch.manual_seed(seed)
    prior = TwoStagePrior(PriorConfig.tiny(variant=variant, music_scale=1 / float(task.train["e_m"].std()),
                                           sample_steps=100))
    stage = StageConfig(lr=3e-3, batch_size=64, epochs=epochs, lr_schedule="cosine")
    fit_in_memory(prior, task.train, DistillConfig(variant=variant, arch="tiny", stage1=stage, stage2=stage,
                                                   seed=seed))
    return prior


def one_to_many(epochs: int, seed: int) -> None:
    task = synthetic.one_to_many(inputs=8, k=3, samples_per_input=200, seed=seed)
    inputs = task.test_inputs.repeat_interleave(32, 0)
    allowed = task.test_targets.repeat_interleave(32, 0)
    for variant, label in (("no_rationale", "EmbedDiff"), ("mlp_mlp", "MLP regressor")):
        started = time.perf_counter()
        prior = train(task, variant, epochs, seed)
        samples, _ = prior.sample(inputs, guidance_scale=1.0, generator=torch.Generator().manual_seed(seed))
        reached = len(set(synthetic.nearest(samples, task.all_targets)[0].tolist())) / len(task.all_targets)
        print(f"  {label:14s} near a true target {synthetic.hit_rate(samples, allowed):6.1%}   "
              f"targets reached {reached:6.1%}   ({time.perf_counter() - started:.0f} s)")


def latent_chain(epochs: int, seed: int) -> None:
    task = synthetic.latent_chain(seed=seed)
    truth = synthetic.nearest(task.test_targets[:, 0], task.all_targets)[0]
    accuracy = {}
    for variant in ("full", "no_rationale"):
        prior = train(task, variant, epochs, seed)
        samples, _ = prior.sample(task.test_inputs, guidance_scale=1.0, generator=torch.Generator().manual_seed(0))
        accuracy[variant] = float((synthetic.nearest(samples, task.all_targets)[0] == truth).float().mean())
        print(f"  {variant:14s} held-out class accuracy {accuracy[variant]:6.1%}")
    print(f"  margin (full - no_rationale): {accuracy['full'] - accuracy['no_rationale']:+.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for seed in range(args.seeds):
        print(f"seed {seed}: one-to-many (8 inputs x 3 targets, 32 samples per input)")
        one_to_many(args.epochs, seed)
        print(f"seed {seed}: latent chain (256 training inputs, 128 held out, 6 latent classes)")
        latent_chain(args.epochs, seed)


if __name__ == "__main__":
    main()
