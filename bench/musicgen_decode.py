"""MusicGen decoding: transformers' ``generate`` against the slot engine, in one run.

    .venv/bin/python bench/musicgen_decode.py [--size tiny|small|medium|large] [--batch 8]
        [--seconds 10] [--device cpu|cuda] [--repeats 3] [--greedy-check]

Both backends make the same windows (random E_m of 64 tokens, guidance 3, top-k 250) and decode
them with EnCodec; each is warmed up first (on a GPU that includes the engine's CUDA graph
capture), then timed ``--repeats`` times (median). Prints per backend: device, seconds, decoder
ms per step, x real time (seconds of music per second), peak memory, and the engine's speed
over ``generate``'s. ``tiny`` is the project's tiny preset; the other sizes are the published
architectures with random weights (``random_models.py``): fp16 on a GPU, fp32 on the CPU.
``--greedy-check`` also decodes greedily with both and prints how many windows' tokens are equal.
"""

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cotvtm.music.musicgen import EngineBackend, MusicGenBackend, MusicRequest, SamplingConfig  # noqa: E402
from cotvtm.rng import stream_id  # noqa: E402

TEXT_TOKENS = 64


def load(size: str, device: str):
    if size == "tiny":
        from cotvtm import models

        return models.load_musicgen(models.resolve("tiny").musicgen, device)[0]
    from random_models import musicgen

    return musicgen(size, device, torch.float16 if device == "cuda" else torch.float32)


def requests(model, batch: int, seconds: float) -> list[MusicRequest]:
    rng = np.random.default_rng(0)
    width = model.config.text_encoder.d_model
    hidden = rng.standard_normal((batch, TEXT_TOKENS, width)).astype(np.float32) * 0.2
    return [MusicRequest(hidden[i], np.ones(TEXT_TOKENS, np.int64), seconds, stream_id(0, f"bench {i}", 0))
            for i in range(batch)]


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def peak_gib(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2 ** 30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # the process so far


def timed(backend, work: list[MusicRequest], repeats: int, device: str) -> tuple[float, list]:
    backend.render(work[:2])  # warm-up (and, on a GPU, the engine's graph capture)
    if hasattr(backend, "engine"):  # occupancy of the timed runs only
        backend.engine.steps = backend.engine.slot_steps = 0
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds, music = [], None
    for _ in range(repeats):
        sync(device)
        started = time.perf_counter()
        music = backend.render(work)
        sync(device)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), music


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="tiny", choices=["tiny", "small", "medium", "large"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--greedy-check", action="store_true")
    args = parser.parse_args()
    model = load(args.size, args.device)
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    work = requests(model, args.batch, args.seconds)
    sampling = SamplingConfig(guidance_scale=3.0, top_k=250)
    backends = {"generate": MusicGenBackend(None, args.device, sampling, model=model),
                "engine": EngineBackend(None, args.device, sampling, model=model, slots=args.batch)}
    steps = backends["engine"].musicgen.tokens_for(args.seconds)
    print(f"MusicGen {args.size}, {name}, batch {args.batch}, {args.seconds:g} s windows ({steps} decoder steps), "
          f"guidance 3, top-k 250, median of {args.repeats}")
    speed = {}
    for label, backend in backends.items():
        seconds, music = timed(backend, work, args.repeats, args.device)
        made = sum(len(m.audio) for m in music) / backend.sample_rate
        speed[label] = made / seconds
        slots = (f", slot occupancy {100 * backend.engine.occupancy:.1f} %, {backend.engine.stepping()}"
                 if label == "engine" else "")
        print(f"{label:>9}: {seconds:8.2f} s, {1000 * seconds / steps:7.1f} ms/step, {speed[label]:7.1f}x real time, "
              f"peak {peak_gib(args.device):.2f} GiB{slots}")
    print(f"    ratio: the engine makes music {speed['engine'] / speed['generate']:.1f}x as fast as generate")
    if args.greedy_check:
        greedy = SamplingConfig(guidance_scale=3.0, do_sample=False)
        reference = MusicGenBackend(None, args.device, greedy, model=model).render(work)
        engine = EngineBackend(None, args.device, greedy, model=model, slots=args.batch).render(work)
        same = sum(np.array_equal(a.codes, b.codes) for a, b in zip(reference, engine))
        agree = np.mean([np.mean(a.codes == b.codes) for a, b in zip(reference, engine)])
        print(f"   greedy: {same}/{len(work)} windows with identical tokens ({100 * agree:.2f} % of tokens equal)")


if __name__ == "__main__":
    main()
