"""The decode engine's device check: everything its GPU readiness rests on, measured in one run.

    bench/gpu_check.sh            # on a machine with a GPU: under 8 minutes
    bench/gpu_check.sh --cpu      # the same code paths on the CPU at toy size: under 3 minutes

Needs python3 with torch and transformers only (no Ray, ffmpeg, PyAV or index access), run from
the repository root. Prints the device and versions, then per run (small at 32 slots, small at
128, large at 16; MusicGen's published shapes with random weights, ``random_models.py``):
the decoder's dtype, slots, the captured graph buckets or why steps ran eagerly, decoder ms per
step and x real time for both step widths (``full``: every step over all slots, the default;
``busy``: over the busy slots' bucket) and what ``full`` costs when windows of mixed lengths
leave the engine partly empty, peak GPU memory, the end-to-end render (EnCodec
included), and for small at 32 the speed over transformers' ``generate``. Then the checks:
graph replay against eager steps (same tokens), the engine's logits against transformers' own
forward, a window's logits alone and beside 7 others (bit-equal with ``full``), and host syncs
during admission and steps (``torch.cuda.set_sync_debug_mode("error")``; on the CPU, the same
admission and steps on the meta device, where any read of a value fails). Last, Stable Audio 3
medium (random weights, ``random_models.stable_audio_3``; the DiT in the decoder's dtype, SAME in
float32, 8 steps): 10 s windows (2 s at ``--cpu``'s toy size) made 1, 8 and 32 together, fresh
and continuing 2 s of context: seconds per 10 s of music, x real time and peak memory. It needs
diffusers, which the GPU machine lacks (``gpu_check.sh`` installs the wheel that its ``--prepare``
fetched), and without it says why it is skipped.
"""

import argparse
import copy
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

from cotvtm.models import decoder_dtype  # noqa: E402
from cotvtm.music.engine import DecodeEngine, DecodeWindow  # noqa: E402
from cotvtm.music.musicgen import EngineBackend, MusicGenBackend, MusicRequest, SamplingConfig  # noqa: E402
from cotvtm.music.reference import compare  # noqa: E402
from cotvtm.music.scheduler import Scheduler  # noqa: E402
from cotvtm.quiet import quiet_transformers  # noqa: E402
from cotvtm.rng import stream_id  # noqa: E402
from random_models import musicgen  # noqa: E402

TOP_K = SamplingConfig(guidance_scale=3.0, top_k=250)
GREEDY = SamplingConfig(guidance_scale=3.0, do_sample=False)
TEXT = 64  # E_m tokens per window
SA3_STEPS = 8  # the distilled Stable Audio 3's sampler
SA3_TOGETHER = (1, 8, 32)  # windows in one batch: one alone, the backend's default batch, and 4x that
SA3_CONTEXT = 2.0  # seconds of the track a continuation window is given (the Music stage's default)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def load(size: str, device: str, dtype: torch.dtype):
    """MusicGen of ``size`` with random weights, its decoder in ``dtype``, T5 and EnCodec in float32."""
    quiet_transformers()
    model = musicgen(size, device, torch.float32)
    model.decoder.to(dtype)
    if getattr(model, "enc_to_dec_proj", None) is not None:
        model.enc_to_dec_proj.to(dtype)
    return model


def windows(model, count: int, steps: int, seed: int = 0, prompt: int = 0) -> list[DecodeWindow]:
    rng = np.random.default_rng(seed)
    width = model.config.text_encoder.d_model
    return [DecodeWindow(f"{seed}.{i}", (rng.standard_normal((TEXT, width)) * 0.2).astype(np.float32),
                         np.ones(TEXT, np.int64), steps, stream_id(seed, f"check {i}", i),
                         rng.integers(0, 2048, (4, prompt)) if prompt else None) for i in range(count)]


def queued(model, slots: int, args, sampling: SamplingConfig = TOP_K, **engine) -> Scheduler:
    """The Music stage's way to the engine: a scheduler's one queue over an engine of ``slots``."""
    return Scheduler(EngineBackend(None, args.device, sampling, model=model, slots=slots, **engine))


def timed(run, device: str, repeats: int) -> float:
    """Median seconds of ``run()`` after one warm-up run (graph capture included there)."""
    run()
    seconds = []
    for _ in range(repeats):
        sync(device)
        started = time.perf_counter()
        run()
        sync(device)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def speed(model, size: str, slots: int, seconds: float, args) -> None:
    """Decoder steps for both widths, the end-to-end render, and generate for small at 32."""
    steps = int(np.ceil(seconds * 50)) + 4
    music = slots * (steps - 4) / 50  # seconds of music a run of ``slots`` windows makes
    work = windows(model, slots, steps)
    for full in (True, False):
        scheduler = queued(model, slots, args, full=full)
        took = timed(lambda: scheduler.decode(work), args.device, args.repeats)
        print(f"  {'full' if full else 'busy'}: {1000 * took / steps:7.2f} ms/step, {music / took:7.1f}x real time, "
              f"{scheduler.engine.stepping()}", flush=True)
    if args.device == "cuda":
        print(f"  peak GPU memory {torch.cuda.max_memory_allocated() / 2 ** 30:.2f} GiB")
    else:
        print(f"  peak memory (the process, CPU) {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20:.2f} GiB")
    mixed = [DecodeWindow(w.id, w.hidden, w.mask, steps // 2 + (n * steps) // (2 * slots), w.stream)
             for n, w in enumerate(work)]  # half to all of the steps: the engine empties as they end
    took = {}
    for full in (True, False):
        scheduler = queued(model, slots, args, full=full)
        took[full] = timed(lambda: scheduler.decode(mixed), args.device, args.repeats)
    print(f"  cost of full on windows of mixed lengths ({100 * scheduler.engine.occupancy:.0f} % occupancy): "
          f"{took[True] / took[False]:.2f}x busy's time")
    requests = [MusicRequest(w.hidden, w.mask, seconds, w.stream) for w in work]
    backend = EngineBackend(None, args.device, TOP_K, model=model, slots=slots)
    took = timed(lambda: backend.render(requests), args.device, 1)
    print(f"  end to end (engine + EnCodec): {music / took:7.1f}x real time")
    if size in ("small", "mini") and slots == args.generate_slots:
        reference = MusicGenBackend(None, args.device, TOP_K, model=model)
        slow = timed(lambda: reference.render(requests), args.device, 1)
        print(f"  generate: {music / slow:7.1f}x real time; the engine end to end is {slow / took:.1f}x as fast")


def graphs_equal_eager(model, args) -> None:
    if args.device != "cuda":
        print("  graph == eager: no CUDA graphs on the CPU (every step ran eagerly)")
        return
    work = windows(model, 8, 120, seed=1, prompt=20)
    codes = [queued(model, 8, args, graphs=g).decode(work) for g in (True, False)]
    same = sum(np.array_equal(codes[0][w.id], codes[1][w.id]) for w in work)
    print(f"  graph == eager: {same}/{len(work)} windows with identical tokens")


def against_transformers(model, args) -> None:
    [window] = windows(model, 1, 150, seed=2, prompt=25)
    found = compare(model, DecodeEngine(model, 4, GREEDY, args.device), window, GREEDY.guidance_scale)
    print(f"  logits vs transformers' forward: max |diff| {found['max_abs_diff']:.3g}; greedy choices clear of "
          f"that rounding: {found['clear']}/{found['choices']}, differing {found['clear_differ']}")


@torch.inference_mode()
def invariance(model, args) -> None:
    [target] = windows(model, 1, 60, seed=3, prompt=20)
    for full in (True, False):
        seen = []
        for others in (0, 7):
            engine = DecodeEngine(model, 8, TOP_K, args.device, full=full)
            if others:
                engine.admit(*windows(model, others, 200, seed=4, prompt=5))
                for _ in range(100):  # the others are further on: longer caches
                    engine.step()
            [slot] = engine.admit(target)
            scores = []
            for _ in range(40):
                busy = engine.busy
                shape = engine.runner.bucket(busy[-1] + 1, max(engine.length[s] for s in busy))
                scores.append(engine.runner.scores(*shape)[slot].cpu())
                engine.step()
            seen.append(torch.stack(scores))
        equal = torch.equal(*seen)
        print(f"  invariance ({'full' if full else 'busy'}): a window's logits alone and beside 7 others "
              f"{'bit-equal' if equal else 'differ by up to %.3g' % float((seen[0] - seen[1]).abs().max())}")


def host_syncs(model, args) -> None:
    work = windows(model, 3, 60, seed=5, prompt=12) + windows(model, 3, 60, seed=6)
    device, where = args.device, model
    if device != "cuda":
        device, where = "meta", copy.deepcopy(model).to("meta")
    engine = DecodeEngine(where, 8, TOP_K, device)
    engine.admit(work[0])  # caches made and graphs captured before the check
    try:
        if device == "cuda":
            torch.cuda.set_sync_debug_mode("error")
        engine.admit(*work[1:])  # admission of the rest, then steps, none finishing
        for _ in range(50):
            engine.step()
        verdict = "0"
    except RuntimeError as exc:
        verdict = f"found: {str(exc).splitlines()[0]}"
    finally:
        if device == "cuda":
            torch.cuda.set_sync_debug_mode("default")
    how = "set_sync_debug_mode('error')" if device == "cuda" else "the meta device, where a read fails"
    print(f"  host syncs during admission and steps ({how}): {verdict}")


def stable_audio_3(args) -> None:
    """Stable Audio 3's lines; skipped, saying why, where diffusers cannot be imported."""
    try:
        import diffusers
    except ImportError as exc:
        print(f"Stable Audio 3: skipped, diffusers cannot be imported ({exc}); bench/gpu_check.sh --prepare fetches "
              "its wheel, which gpu_check.sh installs", flush=True)
        return
    from random_models import stable_audio_3 as random_sa3
    from stable_audio_decode import continued, peak_gib, reset_peak, windows as requests

    from cotvtm.music.stable_audio_3 import StableAudio3Backend

    size, seconds = ("mini", 2.0) if args.cpu else ("medium", 10.0)
    dtype = decoder_dtype("auto", args.device)
    pipeline = random_sa3(args.device, dtype, size)
    width = int(pipeline.transformer.config.cond_token_dim)
    print(f"Stable Audio 3 {size}, DiT {str(dtype).removeprefix('torch.')}, SAME float32, {SA3_STEPS} steps, "
          f"{seconds:g} s windows, diffusers {diffusers.__version__}:", flush=True)
    for count in SA3_TOGETHER:
        backend = StableAudio3Backend(None, args.device, SA3_STEPS, batch=count, width=width, pipeline=pipeline)
        fresh = requests(width, count, seconds)
        for what, work in (("fresh", fresh), (f"{SA3_CONTEXT:g} s context", continued(fresh, SA3_CONTEXT,
                                                                                       backend.sample_rate))):
            try:
                reset_peak(args.device)
                took = timed(lambda: backend.render(work), args.device, args.repeats)
            except torch.cuda.OutOfMemoryError as exc:
                print(f"  {count:>2} together, {what}: out of memory ({str(exc).splitlines()[0]})", flush=True)
                break
            music = count * seconds
            print(f"  {count:>2} together, {what:>13}: {10 * took / music:7.3f} s per 10 s of music, "
                  f"{music / took:7.1f}x real time, peak {peak_gib(args.device):.2f} GiB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu", action="store_true", help="the same code paths on the CPU, at toy size")
    args = parser.parse_args()
    args.device = "cpu" if args.cpu else "cuda"
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device here; bench/gpu_check.sh --cpu runs the same code on the CPU")
    runs = [("mini", 8, 2.0), ("mini", 32, 2.0), ("mini", 4, 2.0)] if args.cpu else \
        [("small", 32, 10.0), ("small", 128, 10.0), ("large", 16, 10.0)]
    args.generate_slots, args.repeats = runs[0][1], 1 if args.cpu else 2
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device {name}; python {platform.python_version()}, torch {torch.__version__} "
          f"(CUDA {torch.version.cuda}), transformers {transformers.__version__}", flush=True)
    dtype = decoder_dtype("auto", args.device)
    loaded = {}
    for size, slots, seconds in runs:
        if size not in loaded:
            loaded.clear()  # one model in memory at a time
            loaded[size] = load(size, args.device, dtype)
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        print(f"{size} at {slots} slots, {seconds:g} s windows, decoder {str(dtype).removeprefix('torch.')}:",
              flush=True)
        speed(loaded[size], size, slots, seconds, args)
    model = load(runs[0][0], args.device, dtype)
    print(f"checks on {runs[0][0]}, decoder {str(dtype).removeprefix('torch.')}:", flush=True)
    for check in (graphs_equal_eager, against_transformers, invariance, host_syncs):
        check(model, args)
    del model
    loaded.clear()  # MusicGen's memory back before Stable Audio 3's
    if args.device == "cuda":
        torch.cuda.empty_cache()
    stable_audio_3(args)


if __name__ == "__main__":
    main()
