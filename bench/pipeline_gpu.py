"""The soundtrack job on one GPU with real-size models (random weights): video-hours per GPU-hour,
how busy the GPU was, and the stage that limits it.

    python bench/pipeline_gpu.py [--videos 40] [--seconds 60] [--size small] [--slots 32]

Real-size architectures with random weights (no checkpoint can be downloaded here; the cost
depends on the shapes, not on the weights): MusicGen ``--size`` (bench/random_models.py), CLIP
ViT-B/32, the paper-size prior (untrained, sized from them). The library is ``--videos``
synthetic videos of ``--seconds`` made with ffmpeg. The job runs as ``python -m jobs.soundtrack``
(preset ``fast`` with every component given as a local folder) on a local Ray instance; while it
runs, ``nvidia-smi`` samples the GPU's utilisation every 200 ms.

Prints: the device, video-hours per GPU-hour (video seconds / job wall seconds), the GPU busy
fraction (mean utilisation while the job ran), and per stage its busy time over its parallel
workers (decode, CLIP, prior and mux from the sidecars; music from the engine's own lines):
the largest is the stage that limits the job. ``--size tiny`` runs the same on the CPU with
the tiny models (a check of the script, not a figure).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

ENGINE = re.compile(r"music    engine: (\d+) steps, (\d+) slot-steps of (\d+) .* in ([\d.]+) s; (.*)")


def real_models(folder: Path, size: str) -> dict[str, str]:
    """MusicGen ``size``, CLIP ViT-B/32 and configs for T5-base and the rationale encoder, saved
    in Hugging Face format: what the job's ``from_pretrained`` loads."""
    import torch
    from transformers import (CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, EncodecFeatureExtractor,
                              LlamaConfig, MusicgenProcessor)

    from cotvtm import tiny
    from random_models import musicgen

    refs = {name: folder / name for name in ("musicgen", "clip", "t5", "rationale")}
    if not (folder / "COMPLETE").exists():
        model = musicgen(size)
        model.save_pretrained(refs["musicgen"])
        features = EncodecFeatureExtractor(feature_size=1, sampling_rate=32000, padding_value=0.0)
        MusicgenProcessor(feature_extractor=features, tokenizer=tiny._t5_tokenizer()).save_pretrained(refs["musicgen"])
        model.text_encoder.config.save_pretrained(refs["t5"])
        torch.manual_seed(0)
        CLIPModel(CLIPConfig()).save_pretrained(refs["clip"])  # the defaults are ViT-B/32
        processor = CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tiny._clip_tokenizer())
        processor.save_pretrained(refs["clip"])
        LlamaConfig(hidden_size=4096).save_pretrained(refs["rationale"])  # LLM2Vec Llama-3-8B's width
        (folder / "COMPLETE").write_text("ok\n")
    return {name: str(path) for name, path in refs.items()}


class GpuSampler:
    """Mean GPU utilisation from ``nvidia-smi`` while the job runs (None without a GPU)."""

    def __init__(self):
        self.samples: list[float] = []
        self.proc = None

    def __enter__(self):
        try:
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                          "-lms", "200"], stdout=subprocess.PIPE, text=True)
        except FileNotFoundError:
            return self
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            if line.strip().split(",")[0].strip().isdigit():
                self.samples.append(float(line.split(",")[0]))

    def __exit__(self, *exc):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()

    @property
    def busy(self) -> float | None:
        return sum(self.samples) / len(self.samples) / 100 if self.samples else None


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"


def stage_load(out: Path, log: str, res) -> dict[str, float]:
    """Busy seconds of each stage over its parallel workers."""
    totals: dict[str, float] = {}
    for sidecar in out.glob("*.json"):
        for stage, seconds in json.loads(sidecar.read_text())["seconds"].items():
            totals[stage] = totals.get(stage, 0.0) + seconds
    workers = {"decode": res.decode_actors, "embed": res.embed_actors, "prior": res.prior_actors,
               "mux": res.mux_actors}
    load = {stage: totals[stage] / workers[stage] for stage in workers if stage in totals}
    load["music"] = sum(float(m[3]) for m in ENGINE.findall(log)) / res.music_actors
    return load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--size", default="small", choices=["tiny", "small", "medium", "large"])
    parser.add_argument("--slots", type=int, default=None, help="decoder slots (default: the job's)")
    args = parser.parse_args()

    from cotvtm.settings import Resources
    from cotvtm.video.samples import make_video

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        for i in range(args.videos):
            make_video(work / "in" / f"v{i:03d}.mp4", duration=args.seconds, size="320x240", fps=24,
                       source="mandelbrot" if i % 2 else "testsrc2")
        command = [sys.executable, "-m", "jobs.soundtrack", str(work / "in"), str(work / "out"),
                   "--cache-dir", str(work / "cache")]
        if args.size != "tiny":
            command += ["--preset", "fast"] + [x for name, ref in real_models(work / "models", args.size).items()
                                               for x in (f"--{name}", ref)]
        if args.slots:
            command += ["--slots", str(args.slots)]
        res = Resources.detect(slots=args.slots)  # what the job sizes itself to on this machine
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        with GpuSampler() as gpu:
            started = time.monotonic()
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            wall = time.monotonic() - started
        text = done.stdout + done.stderr
        if done.returncode != 0:
            raise SystemExit(f"the job failed:\n{text[-3000:]}")
        video_hours = args.videos * args.seconds / 3600
        print(f"device: {device_name()}; {args.videos} x {args.seconds:g} s videos, musicgen-{args.size}, "
              f"{res.slots} slots, {res.decode_actors} decode actors")
        print(f"video-hours per GPU-hour: {video_hours / (wall / 3600):.1f} (job {wall:.0f} s)")
        busy = gpu.busy
        print(f"GPU busy: {'n/a (no GPU)' if busy is None else f'{100 * busy:.0f} %'}")
        load = stage_load(work / "out", text, res)
        print("stage busy seconds per worker: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(load.items())))
        print(f"limiting stage: {max(load, key=load.get)}")
        print("music engine: " + "; ".join(sorted({m[4] for m in ENGINE.findall(text)})))  # dtype, graphs or eager


if __name__ == "__main__":
    main()
