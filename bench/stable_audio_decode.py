"""Stable Audio 3's and Stable Audio Open's decode time beside the MusicGen engine's, on the same windows, in one run.

    .venv/bin/python bench/stable_audio_decode.py [--size tiny|real] [--musicgen small|medium|large]
        [--batch 4] [--seconds 10] [--steps 100] [--sa3-steps 8] [--context 2] [--device cpu|cuda]
        [--repeats 3] [--no-warmup]

All decoders make the same windows: random E_m of 64 tokens (the prior's output; 768 wide at
real size, where t5-base and Stable Audio 3's T5Gemma b-b are alike), each window's draws from
its own stream. MusicGen runs through the slot engine (guidance 3, top-k 250, EnCodec decoding);
Stable Audio Open through diffusers' pipeline, one generation per window as the Music stage does
(``--steps`` denoising steps, guidance 7, Oobleck decoding); Stable Audio 3 through its backend,
the windows together in one batch (``--sa3-steps`` steps of the distilled sampler, guidance off,
SAME decoding), twice: fresh windows, then continuation windows, each given ``--context``
seconds of the track before it (random stereo audio), which is what the Music stage mostly makes.

One model in memory at a time, each warmed up on one window, then timed ``--repeats`` times
(median). Prints per line: seconds, seconds per 10 s of music, x real time, the cost per window,
peak memory (on the CPU, the process's resident size while it ran, weights included) and the
decoder's settings; then the speed ratios, each against the MusicGen engine, and Stable Audio 3's
against Stable Audio Open's. ``tiny``: the tiny preset's models; ``real``: the published
architectures with random weights (``random_models.py``; ``--musicgen`` picks MusicGen's size),
fp16 on a GPU (Stable Audio 3's SAME in fp32, as the job loads it), fp32 on the CPU, where only a
shortened run fits (``--seconds 2 --steps 1 --batch 1 --repeats 1 --no-warmup``: about 8 minutes
on 2 shared cores, with ``OMP_NUM_THREADS=1``; threads contending with other processes there made
the engine's many small steps over 10x slower); the first line names the settings that are not
the defaults. Stable Audio Open denoises its whole latent length (about 47 s) whatever
``--seconds`` asks, so its cost per window barely moves with the window's length; MusicGen's and
Stable Audio 3's grow with it.
"""

import argparse
import dataclasses
import gc
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import numpy as np  # noqa: E402
import torch  # noqa: E402

import musicgen_decode  # noqa: E402
from musicgen_decode import load as load_musicgen, sync  # noqa: E402

from cotvtm.models import decoder_dtype  # noqa: E402
from cotvtm.music.musicgen import EngineBackend, MusicRequest, SamplingConfig  # noqa: E402
from cotvtm.music.stable_audio import StableAudioBackend  # noqa: E402
from cotvtm.music.stable_audio_3 import StableAudio3Backend  # noqa: E402
from cotvtm.rng import stream_id  # noqa: E402

TEXT_TOKENS = 64
CONTEXT_RMS = 0.1  # the continuation windows' random context: -20 dBFS, a plausible level for music
PER = 10.0  # the cost is reported per this many seconds of music
ENGINE, OPEN, SA3 = "MusicGen engine", "Stable Audio Open", "Stable Audio 3"  # the lines' labels
HIGH_WATER = Path("/proc/self/status"), Path("/proc/self/clear_refs")  # Linux: the peak resident size, its reset


def stable_audio_open(args, width: int) -> StableAudioBackend:
    if args.size == "tiny":
        from cotvtm import models

        ref, pipeline = str(models.resolve("tiny", decoder="stable-audio").stable_audio), None
    else:
        from random_models import stable_audio

        ref, pipeline = None, stable_audio(args.device, decoder_dtype("auto", args.device))
    return StableAudioBackend(ref, args.device, args.steps, 7.0, width=width, pipeline=pipeline)


def stable_audio_3(args, width: int) -> StableAudio3Backend:
    if args.size == "tiny":
        from cotvtm import models

        ref, pipeline = str(models.resolve("tiny", decoder="stable-audio-3").stable_audio_3), None
    else:
        from random_models import stable_audio_3 as medium

        ref, pipeline = None, medium(args.device, decoder_dtype("auto", args.device))
    return StableAudio3Backend(ref, args.device, args.sa3_steps, 1.0, batch=args.batch, width=width,
                               pipeline=pipeline)


def windows(width: int, batch: int, seconds: float) -> list[MusicRequest]:
    rng = np.random.default_rng(0)
    hidden = rng.standard_normal((batch, TEXT_TOKENS, width)).astype(np.float32) * 0.2
    return [MusicRequest(hidden[i], np.ones(TEXT_TOKENS, np.int64), seconds, stream_id(0, f"bench {i}", 0))
            for i in range(batch)]


def continued(work: list[MusicRequest], seconds: float, rate: int) -> list[MusicRequest]:
    """``work`` with ``seconds`` of random stereo context each: continuation windows."""
    rng = np.random.default_rng(1)
    samples = round(seconds * rate)
    return [dataclasses.replace(w, context=(rng.standard_normal((samples, 2)) * CONTEXT_RMS).astype(np.float32))
            for w in work]


def timed(decoder, work: list[MusicRequest], args) -> float:
    if args.warmup:
        decoder.render(work[:1])
    reset_peak(args.device)
    seconds = []
    for _ in range(args.repeats):
        sync(args.device)
        started = time.perf_counter()
        decoder.render(work)
        sync(args.device)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def reset_peak(device: str) -> None:
    """Start a decoder's own peak: the GPU allocator's, or on Linux the process's resident high-water
    mark (``clear_refs`` 5), so that a model measured earlier does not show in a later line."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    else:
        try:
            HIGH_WATER[1].write_text("5")
        except OSError:  # not Linux, or a sandbox without it: the peak is then the process's so far
            pass


def peak_gib(device: str) -> float:
    if device == "cuda" or not HIGH_WATER[0].exists():
        return musicgen_decode.peak_gib(device)
    [kib] = [line.split()[1] for line in HIGH_WATER[0].read_text().splitlines() if line.startswith("VmHWM:")]
    return int(kib) / 2 ** 20


def measure(label: str, decoder, work: list[MusicRequest], args) -> float:
    """Time ``decoder`` on ``work``, print its line, return its speed (x real time)."""
    took = timed(decoder, work, args)
    music = len(work) * args.seconds
    print(f"{label:>27}: {took:8.2f} s, {PER * took / music:8.3f} s per {PER:g} s of music, {music / took:7.2f}x real "
          f"time, {took / len(work):6.2f} s per window, {decoder.sample_rate} Hz, peak {peak_gib(args.device):.2f} "
          f"GiB; {decoder.describe()}", flush=True)
    return music / took


def release(device: str) -> None:
    """Give back the memory of a model no longer referenced, before the next one loads."""
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def shortened(parser, args) -> str:
    """The settings that differ from the defaults (a shortened run's), for the first line."""
    changed = [f"--no-{name}" if value is False else f"--{name.replace('_', '-')} {value:g} ({default:g})"
               for name, default in vars(parser.parse_args([])).items()
               if name not in ("size", "musicgen", "device") and (value := getattr(args, name)) != default]
    return f"; not the defaults (in brackets): {', '.join(changed)}" if changed else ""


def parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="tiny", choices=["tiny", "real"])
    parser.add_argument("--musicgen", default="small", choices=["small", "medium", "large"])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=100, help="Stable Audio Open's denoising steps")
    parser.add_argument("--sa3-steps", type=int, default=8, help="Stable Audio 3's (8: the distilled model's)")
    parser.add_argument("--context", type=float, default=2.0, help="seconds of context per continuation window")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", action=argparse.BooleanOptionalAction, default=True,
                        help="render one window before timing (--no-warmup: not, where time is short)")
    return parser, parser.parse_args()


def main() -> None:
    parser, args = parse()
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    what = "tiny preset" if args.size == "tiny" else \
        f"real-size random weights (MusicGen {args.musicgen}, Stable Audio Open 1.0, Stable Audio 3 medium)"
    print(f"{what}, {name}, windows: {args.batch} of {args.seconds:g} s, median of {args.repeats}"
          f"{shortened(parser, args)}", flush=True)
    model = load_musicgen("tiny" if args.size == "tiny" else args.musicgen, args.device)
    width = model.config.text_encoder.d_model
    work = windows(width, args.batch, args.seconds)
    engine = EngineBackend(None, args.device, SamplingConfig(guidance_scale=3.0, top_k=250), model=model,
                           slots=args.batch)
    speed = {ENGINE: measure(ENGINE, engine, work, args)}
    del model, engine
    release(args.device)
    speed[OPEN] = measure(OPEN, stable_audio_open(args, width), work, args)
    release(args.device)
    sa3 = stable_audio_3(args, width)
    speed[f"{SA3}, fresh"] = measure(f"{SA3}, fresh", sa3, work, args)
    label = f"{SA3}, {args.context:g} s context"
    speed[label] = measure(label, sa3, continued(work, args.context, sa3.sample_rate), args)
    ratios(speed)


def ratios(speed: dict) -> None:
    """Each line's speed over the MusicGen engine's, and Stable Audio 3's over Stable Audio Open's:
    above 1, the first makes music faster."""
    for label, x in speed.items():
        for other in (ENGINE, OPEN) if label.startswith(SA3) else (ENGINE,) if label != ENGINE else ():
            print(f"  ratio: {label} makes music {x / speed[other]:.3g}x as fast as {other}")


if __name__ == "__main__":
    main()
