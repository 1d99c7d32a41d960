"""Prior inference time per clip and peak memory on this CPU, paper-size configuration.

    .venv/bin/python bench/prior_inference.py [--threads 2] [--measured-steps 4]

Paper size: E_v 512, E_r 4096, E_m 64 x 768, EmbedDiff width 768, 6 layers, classifier-free
guidance (one batched forward of 2B rows per step). Each sampler step costs the same, so the
time of a few measured steps (median of repeats) is scaled to the full 200 (DDPM) and 50
(DDIM) steps; the printed table says how many were measured. Each case runs in a fresh
process, so its peak resident memory is its own.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def measure(batch: int, steps: int, repeats: int, threads: int) -> dict:
    import torch

    from cotvtm.prior import PriorConfig, TwoStagePrior

    torch.set_num_threads(threads)
    prior = TwoStagePrior(PriorConfig.paper()).eval()
    e_v = torch.randn(batch, prior.config.clip_dim)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        with torch.inference_mode():
            prior.sample(e_v, steps=steps, method="ddim", generator=torch.Generator().manual_seed(0))
        times.append(time.perf_counter() - started)
    return {"per_step_s": statistics.median(times) / steps,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--measured-steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        batch = int(args.case)
        print(json.dumps(measure(batch, args.measured_steps, args.repeats, args.threads)))
        return
    print(f"paper-size prior on CPU, {args.threads} threads; {args.measured_steps} sampler steps measured "
          f"(median of {args.repeats}), scaled to the full step count")
    print(f"{'batch':>6} {'ms/step':>9} {'200 steps: s/clip':>18} {'DDIM 50: s/clip':>16} {'peak RSS MB':>12}")
    for batch in (1, 256):
        out = subprocess.run([sys.executable, __file__, "--case", str(batch), "--threads", str(args.threads),
                              "--measured-steps", str(args.measured_steps), "--repeats", str(args.repeats)],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        step = r["per_step_s"]
        print(f"{batch:>6} {step * 1e3:>9.1f} {step * 200 / batch:>18.4f} {step * 50 / batch:>16.4f} "
              f"{r['peak_rss_mb']:>12.0f}")


if __name__ == "__main__":
    main()
