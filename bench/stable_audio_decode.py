"""Stable Audio's decode time beside the MusicGen engine's, on the same windows, in one run.

    .venv/bin/python bench/stable_audio_decode.py [--size tiny|real] [--musicgen small|medium|large]
        [--batch 4] [--seconds 10] [--steps 100] [--device cpu|cuda] [--repeats 3]

Both decoders make the same windows: random E_m of 64 tokens (the prior's output, t5-base wide),
each window's draws from its own stream. MusicGen runs through the slot engine (guidance 3,
top-k 250, EnCodec decoding); Stable Audio through diffusers' pipeline, one generation per
window as the Music stage does (``--steps`` denoising steps, guidance 7, Oobleck decoding).
Each is warmed up on one window, then timed ``--repeats`` times (median). Prints per decoder:
seconds, seconds of music per second (x real time), the cost per window, peak memory, and the
ratio. ``tiny``: the tiny preset's models; ``real``: the published architectures with random
weights (``random_models.py``; ``--musicgen`` picks MusicGen's size), fp16 on a GPU, fp32 on the
CPU, where a shortened run (``--seconds 2 --steps 2 --batch 1 --repeats 1``) is what fits.
Stable Audio denoises its whole latent length whatever ``--seconds`` asks, so its cost per window
barely moves with the window's length; MusicGen's grows with it.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from musicgen_decode import load as load_musicgen, peak_gib, sync  # noqa: E402

from cotvtm.music.musicgen import EngineBackend, MusicRequest, SamplingConfig  # noqa: E402
from cotvtm.music.stable_audio import StableAudioBackend  # noqa: E402
from cotvtm.rng import stream_id  # noqa: E402

TEXT_TOKENS = 64


def load_stable_audio(size: str, device: str):
    if size == "tiny":
        from cotvtm import models

        return None, str(models.resolve("tiny", decoder="stable-audio").stable_audio)
    from random_models import stable_audio

    return stable_audio(device, torch.float16 if device == "cuda" else torch.float32), None


def windows(width: int, batch: int, seconds: float) -> list[MusicRequest]:
    rng = np.random.default_rng(0)
    hidden = rng.standard_normal((batch, TEXT_TOKENS, width)).astype(np.float32) * 0.2
    return [MusicRequest(hidden[i], np.ones(TEXT_TOKENS, np.int64), seconds, stream_id(0, f"bench {i}", 0))
            for i in range(batch)]


def timed(decoder, work: list[MusicRequest], repeats: int, device: str) -> float:
    decoder.render(work[:1])  # warm-up
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = []
    for _ in range(repeats):
        sync(device)
        started = time.perf_counter()
        decoder.render(work)
        sync(device)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="tiny", choices=["tiny", "real"])
    parser.add_argument("--musicgen", default="small", choices=["small", "medium", "large"])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    model = load_musicgen("tiny" if args.size == "tiny" else args.musicgen, args.device)
    pipeline, ref = load_stable_audio(args.size, args.device)
    decoders = {"musicgen": EngineBackend(None, args.device, SamplingConfig(guidance_scale=3.0, top_k=250),
                                          model=model, slots=args.batch),
                "stable-audio": StableAudioBackend(ref, args.device, args.steps, 7.0, pipeline=pipeline)}
    work = windows(model.config.text_encoder.d_model, args.batch, args.seconds)
    what = "tiny preset" if args.size == "tiny" else f"real-size random weights, MusicGen {args.musicgen}"
    print(f"{what}, {name}, {args.batch} windows of {args.seconds:g} s, Stable Audio {args.steps} steps, "
          f"median of {args.repeats}")
    speed = {}
    for label, decoder in decoders.items():
        seconds = timed(decoder, work, args.repeats, args.device)
        speed[label] = args.batch * args.seconds / seconds
        print(f"{label:>13}: {seconds:8.2f} s, {speed[label]:7.2f}x real time, {seconds / args.batch:6.2f} s per "
              f"window, {decoder.sample_rate} Hz, peak {peak_gib(args.device):.2f} GiB; {decoder.describe()}")
    print(f"        ratio: Stable Audio makes music {speed['stable-audio'] / speed['musicgen']:.2f}x as fast as "
          "the MusicGen engine")


if __name__ == "__main__":
    main()
