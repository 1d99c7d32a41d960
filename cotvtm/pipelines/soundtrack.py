"""The soundtrack job as a Ray Data pipeline, stage by stage, in order.

    inputs -> Decode (CPU: probe, plan windows, sampled frames)
           -> Embed (CLIP image tower: mean of normalised frame embeddings per window)
           -> Prior (MLP -> E_r', EmbedDiff -> E_m sequence + mask)
           -> Music (MusicGen from E_m, continuous across windows, batched across videos)
           -> Mux (CPU: ffmpeg stream-copies the video and adds the music; sidecar JSON)

A row is one ``VideoJob``. Every stage loads what it needs once, in ``__init__``, and
turns a per-file failure into ``job.error`` so one bad input never stops the batch.
"""

import json
import pickle
import time
from dataclasses import asdict, replace
from pathlib import PurePosixPath

import numpy as np
import torch

from cotvtm.config import Resources, SoundtrackConfig
from cotvtm.errors import CotvtmError, MediaError
from cotvtm.models import ModelRefs
from cotvtm.pipelines.job import Outcome, VideoJob
from cotvtm.storage import Store, StorageError
from cotvtm.storage.scratch import Scratch
from cotvtm.video.frames import read_window_frames
from cotvtm.video.image import image_frames, is_image, probe_image, write_audio, write_still_video
from cotvtm.video.mux import fit_length, mux_audio
from cotvtm.video.probe import probe
from cotvtm.video.windows import plan_windows, sample_times


def _jobs(batch) -> list[VideoJob]:
    return [pickle.loads(blob) for blob in batch["job"]]


def _batch(jobs: list[VideoJob]) -> dict:
    """Rows carry the pickled job: a plain binary column Arrow stores without complaint."""
    column = np.empty(len(jobs), dtype=object)
    column[:] = [pickle.dumps(job, protocol=5) for job in jobs]
    return {"job": column}


def job_row(job: VideoJob) -> dict:
    return {"job": pickle.dumps(job, protocol=5)}


def _use_threads(count: float) -> None:
    """Torch on CPU must use only the cores this actor owns (oversubscription is ~80x slower)."""
    torch.set_num_threads(max(1, int(count)))


class Decode:
    """Probe, plan the windows and decode only their sampled frames.

    A remote input is downloaded to this actor's scratch folder and removed once decoded
    (the mux stage, possibly on another node, fetches it again).
    """

    def __init__(self, cfg: SoundtrackConfig, short_side: int, src: Store, max_bytes: int, threads: float = 1):
        _use_threads(threads)
        self.cfg, self.short_side, self.src, self.max_bytes = cfg, short_side, src, max_bytes
        self.scratch = Scratch()

    def __call__(self, batch) -> dict:
        jobs = _jobs(batch)
        for job in jobs:
            started = time.perf_counter()
            try:
                self.decode(job)
            except (MediaError, StorageError) as exc:
                job.fail("decode", exc.reason)
            except Exception as exc:  # a decoder bug must not stop the batch either
                job.fail("decode", f"unexpected decode failure: {type(exc).__name__}: {exc}")
            job.seconds["decode"] = time.perf_counter() - started
        return _batch(jobs)

    def decode(self, job: VideoJob) -> None:
        path, temporary = self.scratch.fetch(self.src, job.key, self.max_bytes)
        try:
            if is_image(job.key):
                self.decode_image(job, path)
                return
            job.info = replace(probe(path), path=job.key)
            job.windows = plan_windows(job.info.duration, self.cfg.window_s)
            frames = [read_window_frames(path, sample_times(w, self.cfg.frames_per_window), self.short_side,
                                         rotation=job.info.rotation, reader=self.cfg.frame_reader)
                      for w in job.windows]
            job.frames = np.stack(frames)
        finally:
            if temporary:
                path.unlink(missing_ok=True)


    def decode_image(self, job: VideoJob, path) -> None:
        """An image stands for every window of a clip ``image_seconds`` long."""
        job.info = replace(probe_image(path, self.cfg.image_seconds), path=job.key)
        job.windows = plan_windows(job.info.duration, self.cfg.window_s)
        frames = image_frames(path, self.cfg.frames_per_window, self.short_side)
        job.frames = np.repeat(frames[None], len(job.windows), axis=0)


class _ModelStage:
    """Shared frame for the model stages: skip failed jobs, time the batch, isolate errors."""

    name = "model"

    def __call__(self, batch) -> dict:
        jobs = _jobs(batch)
        live = [job for job in jobs if job.error is None]
        if live:
            started = time.perf_counter()
            try:
                self.process(live)
            except Exception as exc:  # one broken batch fails its videos, not the run
                for job in live:
                    job.fail(self.name, f"{self.name} stage failed: {type(exc).__name__}: {exc}")
            for job in live:
                job.seconds[self.name] = (time.perf_counter() - started) / len(live)
        return _batch(jobs)


class Embed(_ModelStage):
    name = "embed"

    def __init__(self, refs: ModelRefs, device: str, threads: float = 1):
        from cotvtm.encoders.clip import ClipEncoder

        _use_threads(threads)
        self.clip = ClipEncoder(refs.clip, device)

    def process(self, jobs: list[VideoJob]) -> None:
        for job in jobs:
            job.e_v, job.frames = self.clip.embed_windows(job.frames), None


class Prior(_ModelStage):
    name = "prior"

    def __init__(self, refs: ModelRefs, cfg: SoundtrackConfig, device: str, dims: dict, threads: float = 1):
        from cotvtm.models import load_prior

        _use_threads(threads)
        from cotvtm.prior.explain import ExplanationIndex

        self.prior = load_prior(refs.prior, **dims).to(device)
        self.explain = ExplanationIndex.load(refs.prior)
        self.cfg, self.device = cfg, device

    def process(self, jobs: list[VideoJob]) -> None:
        e_v = torch.as_tensor(np.concatenate([job.e_v for job in jobs]), dtype=torch.float32, device=self.device)
        generator = torch.Generator(device=self.device).manual_seed(self.cfg.seed)
        with torch.inference_mode():
            e_m, mask = self.prior.sample(e_v, steps=self.cfg.prior_steps, method=self.cfg.prior_sampler,
                                          guidance_scale=self.cfg.prior_guidance, generator=generator)
        e_m, mask = e_m.float().cpu().numpy(), mask.cpu().numpy()
        offset = 0
        for job in jobs:
            count = len(job.e_v)
            job.e_m, job.mask = e_m[offset: offset + count], mask[offset: offset + count]
            if self.explain is not None:
                job.explanations = self.explain.nearest(job.e_m, job.mask)
            offset += count


class Music(_ModelStage):
    name = "music"

    def __init__(self, refs: ModelRefs, cfg: SoundtrackConfig, device: str, threads: float = 1):
        from cotvtm.music.compose import ComposeConfig
        from cotvtm.music.musicgen import MusicGenBackend, SamplingConfig

        _use_threads(threads)
        sampling = SamplingConfig(guidance_scale=cfg.guidance_scale, top_k=cfg.top_k, temperature=cfg.temperature)
        self.backend = MusicGenBackend(refs.musicgen, device, sampling)
        self.compose_cfg = ComposeConfig(mode=cfg.mode, prompt_s=cfg.prompt_s, crossfade_s=cfg.crossfade_s,
                                         seed=cfg.seed)

    def process(self, jobs: list[VideoJob]) -> None:
        from cotvtm.music.compose import Track, compose

        tracks = [Track(job.e_m, job.mask, [w.duration for w in job.windows]) for job in jobs]
        for job, audio in zip(jobs, compose(self.backend, tracks, self.compose_cfg)):
            job.audio, job.sample_rate = audio, self.backend.sample_rate
            job.e_v = job.e_m = job.mask = None


class Mux:
    """Write the soundtracked video and its sidecar; emit one manifest row per job.

    Local outputs are muxed in place (atomically); remote ones are muxed in scratch and
    uploaded (an S3 object is never visible half-written). The sidecar goes last, so a
    video without its sidecar is an unfinished output that a rerun redoes.
    """

    def __init__(self, sidecar_base: dict, src: Store, out: Store, max_bytes: int, duck_gain: float = 0.0):
        self.sidecar_base, self.src, self.out, self.max_bytes = sidecar_base, src, out, max_bytes
        self.duck_gain = duck_gain
        self.scratch = Scratch()

    def __call__(self, batch) -> dict:
        rows = [asdict(self.finish(job)) for job in _jobs(batch)]
        return {key: np.array([row[key] for row in rows]) for key in asdict(Outcome("", "")).keys()}

    def finish(self, job: VideoJob) -> Outcome:
        if job.error is None:
            started = time.perf_counter()
            try:
                self.write(job)
                job.seconds["mux"] = time.perf_counter() - started
                self.out.put_bytes(job.out_sidecar, json.dumps(self.sidecar(job), indent=2).encode())
            except (CotvtmError, ValueError) as exc:
                job.fail("mux", getattr(exc, "reason", str(exc)))
            except Exception as exc:
                job.fail("mux", f"unexpected mux failure: {type(exc).__name__}: {exc}")
        if job.error is not None:
            return Outcome(job.key, "error", reason=f"{job.error_stage}: {job.error}")
        return Outcome(job.key, "ok", output=self.out.uri(job.out_video), sidecar=self.out.uri(job.out_sidecar),
                       windows=len(job.windows), duration=job.info.duration)

    def write(self, job: VideoJob) -> None:
        audio = fit_length(job.audio, job.sample_rate, job.info.duration)
        source, temporary = self.scratch.fetch(self.src, job.key, self.max_bytes)
        target = self.out.local_path(job.out_video)
        staged = target is None
        target = self.scratch.path_for(job.out_video) if staged else target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if is_image(job.key):
                write_audio(audio, job.sample_rate, target)
            else:
                keep = self.duck_gain if job.info.has_audio else 0.0
                mux_audio(source, audio, job.sample_rate, target, job.info.duration, keep_original=keep)
            if staged:
                self.out.upload(target, job.out_video)
            if job.out_still:
                self.write_still(job, source, audio)
        finally:
            if temporary:
                source.unlink(missing_ok=True)
            if staged:
                target.unlink(missing_ok=True)

    def write_still(self, job: VideoJob, image, audio) -> None:
        target = self.out.local_path(job.out_still)
        staged = target is None
        target = self.scratch.path_for(job.out_still) if staged else target
        try:
            write_still_video(image, audio, job.sample_rate, target)
            if staged:
                self.out.upload(target, job.out_still)
        finally:
            if staged:
                target.unlink(missing_ok=True)

    def sidecar(self, job: VideoJob) -> dict:
        return {
            **self.sidecar_base,
            "input": job.key,
            "output": PurePosixPath(job.out_video).name,
            "video": asdict(job.info),
            "windows": [{"index": w.index, "start": w.start, "end": w.end,
                         **({"explanations": job.explanations[w.index]} if job.explanations else {})}
                        for w in job.windows],
            "sample_rate": job.sample_rate,
            "still_video": PurePosixPath(job.out_still).name if job.out_still else None,
            "seconds": {k: round(v, 3) for k, v in job.seconds.items()},
        }


def build(jobs: list[VideoJob], refs: ModelRefs, cfg: SoundtrackConfig, res: Resources, dims: dict,
          short_side: int, sidecar_base: dict, src: Store, out: Store):
    """The Ray Data plan; nothing runs until its rows are consumed."""
    import ray.data
    from ray.data import ActorPoolStrategy

    def pool(size: int) -> ActorPoolStrategy:
        return ActorPoolStrategy(size=size)

    from cotvtm.raycluster import worker_runtime_env

    env = worker_runtime_env()
    model = dict(num_cpus=res.model_cpus, num_gpus=res.gpus_per_model_actor, runtime_env=env)
    ds = ray.data.from_items([job_row(job) for job in jobs], override_num_blocks=max(1, len(jobs)))
    ds = ds.map_batches(Decode, fn_constructor_kwargs=dict(cfg=cfg, short_side=short_side, src=src,
                                                           max_bytes=res.max_input_bytes),
                        batch_size=1, compute=pool(res.decode_actors), num_cpus=1, runtime_env=env)
    ds = ds.map_batches(Embed, fn_constructor_kwargs=dict(refs=refs, device=res.device, threads=res.model_cpus),
                        batch_size=res.video_batch, compute=pool(res.model_actors), **model)
    ds = ds.map_batches(Prior, fn_constructor_kwargs=dict(refs=refs, cfg=cfg, device=res.device, dims=dims,
                                                          threads=res.model_cpus),
                        batch_size=res.video_batch, compute=pool(res.model_actors), **model)
    ds = ds.map_batches(Music, fn_constructor_kwargs=dict(refs=refs, cfg=cfg, device=res.device,
                                                          threads=res.model_cpus),
                        batch_size=res.video_batch, compute=pool(res.model_actors), **model)
    duck = cfg.duck_gain if cfg.audio == "duck" else 0.0
    return ds.map_batches(Mux, fn_constructor_kwargs=dict(sidecar_base=sidecar_base, src=src, out=out,
                                                          max_bytes=res.max_input_bytes, duck_gain=duck),
                          batch_size=1, compute=pool(res.mux_actors), num_cpus=res.mux_cpus, runtime_env=env)
