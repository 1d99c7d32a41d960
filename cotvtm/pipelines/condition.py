"""Pass 1 of the soundtrack job: from videos to saved music conditioning, segment by segment.

    keys -> Decode (CPU: probe, plan windows and segments, sampled frames of one segment at a time)
         -> Embed (CLIP image tower: mean of normalised frame embeddings per window)
         -> Prior (MLP -> E_r', EmbedDiff -> E_m + mask; saved to the video's progress folder)

A row is one ``Segment`` (a few windows), never a whole video, so memory per worker does
not grow with video length; model stages batch segments of many videos. Segments saved by
an earlier run are not decoded again.
"""

import time
from dataclasses import replace

import numpy as np
import torch

from cotvtm.config import Resources, SoundtrackConfig
from cotvtm.errors import MediaError
from cotvtm.models import ModelRefs
from cotvtm.pipelines.job import Segment
from cotvtm.pipelines.progress import Plan, VideoProgress
from cotvtm.pipelines.rows import ModelStage, batch_of, records, row_of, use_threads
from cotvtm.rng import CounterNoise, stream_id
from cotvtm.storage import Store, StorageError
from cotvtm.storage.scratch import Scratch
from cotvtm.video.frames import read_window_frames
from cotvtm.video.image import image_frames, is_image, probe_image
from cotvtm.video.probe import probe
from cotvtm.video.windows import plan_windows, sample_times


class Decode:
    """Plan a video (or reuse its saved plan) and yield its unfinished segments with their frames.

    A remote input is downloaded once to this actor's scratch folder and removed when its
    last segment has been decoded.
    """

    def __init__(self, cfg: SoundtrackConfig, short_side: int, src: Store, max_bytes: int, progress: Store,
                 digest: str, segment_windows: int, resumed: dict[str, tuple[Plan, frozenset]],
                 identities: dict[str, str], threads: float = 1):
        use_threads(threads)
        self.cfg, self.short_side, self.src, self.max_bytes = cfg, short_side, src, max_bytes
        self.progress, self.digest, self.segment_windows, self.resumed = progress, digest, segment_windows, resumed
        self.identities = identities
        self.scratch = Scratch()

    def __call__(self, batch):
        for key in records(batch):
            for segment in self.segments(key):
                yield batch_of([segment])

    def segments(self, key: str):
        started = time.perf_counter()
        try:
            path, temporary = self.scratch.fetch(self.src, key, self.max_bytes)
        except StorageError as exc:
            yield Segment(key, -1, 0, error=exc.reason, error_stage="decode")
            return
        try:
            yield from self._segments(key, path, started)
        finally:
            if temporary:
                path.unlink(missing_ok=True)

    def _segments(self, key: str, path, started: float):
        plan, conditioned = self.resumed.get(key, (None, frozenset()))
        try:
            if plan is None:
                plan = self.plan(key, path)
                VideoProgress(self.progress, self.digest, key).save_plan(plan)
        except (MediaError, StorageError) as exc:
            yield Segment(key, -1, 0, error=exc.reason, error_stage="decode")
            return
        except Exception as exc:  # a prober or disk surprise fails this input, not the run
            yield Segment(key, -1, 0, error=f"unexpected decode failure: {type(exc).__name__}: {exc}",
                          error_stage="decode")
            return
        for index, windows in enumerate(plan.segments):
            if index in conditioned:
                continue
            segment = Segment(key, index, len(plan.segments), windows)
            try:
                segment.frames = self.frames(key, path, plan.info, windows)
            except (MediaError, StorageError) as exc:
                segment.fail("decode", exc.reason)
            except Exception as exc:  # a decoder bug must not stop the batch either
                segment.fail("decode", f"unexpected decode failure: {type(exc).__name__}: {exc}")
            segment.seconds["decode"] = time.perf_counter() - started
            yield segment
            if segment.error:
                return
            started = time.perf_counter()

    def plan(self, key: str, path) -> Plan:
        """An image stands for every window of a clip ``image_seconds`` long."""
        info = probe_image(path, self.cfg.image_seconds) if is_image(key) else probe(path)
        info = replace(info, path=key)
        return Plan(info, plan_windows(info.duration, self.cfg.window_s), self.segment_windows,
                    self.identities.get(key, ""))

    def frames(self, key: str, path, info, windows) -> np.ndarray:
        if is_image(key):
            frames = image_frames(path, self.cfg.frames_per_window, self.short_side)
            return np.repeat(frames[None], len(windows), axis=0)
        return np.stack([read_window_frames(path, sample_times(w, self.cfg.frames_per_window), self.short_side,
                                            rotation=info.rotation, reader=self.cfg.frame_reader)
                         for w in windows])


class Embed(ModelStage):
    name = "embed"

    def __init__(self, refs: ModelRefs, device: str, threads: float = 1):
        from cotvtm.encoders.clip import ClipEncoder

        use_threads(threads)
        self.clip = ClipEncoder(refs.clip, device)

    def process(self, segments: list[Segment]) -> None:
        for segment in segments:
            segment.e_v, segment.frames = self.clip.embed_windows(segment.frames), None


class Prior(ModelStage):
    """Sample E_m for a batch of segments and save each segment's conditioning."""

    name = "prior"

    def __init__(self, refs: ModelRefs, cfg: SoundtrackConfig, device: str, dims: dict, progress: Store,
                 digest: str, threads: float = 1):
        from cotvtm.models import load_prior
        from cotvtm.prior.explain import ExplanationIndex

        use_threads(threads)
        self.prior = load_prior(refs.prior, **dims).to(device)
        self.explain = ExplanationIndex.load(refs.prior)
        self.cfg, self.device, self.progress, self.digest = cfg, device, progress, digest

    def process(self, segments: list[Segment]) -> None:
        started = time.perf_counter()
        e_v = torch.as_tensor(np.concatenate([s.e_v for s in segments]), dtype=torch.float32, device=self.device)
        # one noise stream per window: its E_m does not depend on the segments it is batched with
        noise = CounterNoise([stream_id(self.cfg.seed, s.key, w.index, "prior") for s in segments for w in s.windows])
        with torch.inference_mode():
            e_m, mask = self.prior.sample(e_v, steps=self.cfg.prior_steps, method=self.cfg.prior_sampler,
                                          guidance_scale=self.cfg.prior_guidance, generator=noise)
        e_m, mask = e_m.float().cpu().numpy(), mask.cpu().numpy()
        offset, share = 0, (time.perf_counter() - started) / len(segments)
        for segment in segments:
            segment.seconds[self.name] = share
            count = len(segment.e_v)
            self.save(segment, e_m[offset: offset + count], mask[offset: offset + count])
            offset += count

    def save(self, segment: Segment, e_m: np.ndarray, mask: np.ndarray) -> None:
        explanations = self.explain.nearest(e_m, mask) if self.explain is not None else []
        meta = {"explanations": explanations, "seconds": segment.seconds}
        try:
            VideoProgress(self.progress, self.digest, segment.key).save_conditioning(segment.index, e_m, mask, meta)
        except StorageError as exc:
            segment.fail(self.name, exc.reason)
        segment.e_v = None


def build(identities: dict[str, str], refs: ModelRefs, cfg: SoundtrackConfig, res: Resources, dims: dict,
          short_side: int, src: Store, progress: Store, digest: str, resumed: dict[str, tuple[Plan, frozenset]]):
    """The Ray Data plan of pass 1 over the inputs (key -> content identity); its rows are the
    finished (or failed) ``Segment``s."""
    import ray.data
    from ray.data import ActorPoolStrategy

    from cotvtm.raycluster import worker_runtime_env

    env = worker_runtime_env()
    model = dict(num_cpus=res.model_cpus, num_gpus=res.gpus_per_model_actor, runtime_env=env)
    ds = ray.data.from_items([row_of(key) for key in identities], override_num_blocks=max(1, len(identities)))
    # Every yielded segment leaves Decode as a block of its own: by default Ray Data gathers a
    # task's outputs up to 128 MiB, which would hold many segments of one video in one worker.
    ds.context.target_max_block_size = 1
    ds = ds.map_batches(Decode, fn_constructor_kwargs=dict(
        cfg=cfg, short_side=short_side, src=src, max_bytes=res.max_input_bytes, progress=progress, digest=digest,
        segment_windows=res.segment_windows, resumed=resumed, identities=identities), batch_size=1,
        compute=ActorPoolStrategy(size=res.decode_actors), num_cpus=1, runtime_env=env)
    ds = ds.map_batches(Embed, fn_constructor_kwargs=dict(refs=refs, device=res.device, threads=res.model_cpus),
                        batch_size=res.video_batch, compute=ActorPoolStrategy(size=res.model_actors), **model)
    return ds.map_batches(Prior, fn_constructor_kwargs=dict(refs=refs, cfg=cfg, device=res.device, dims=dims,
                                                            progress=progress, digest=digest, threads=res.model_cpus),
                          batch_size=res.video_batch, compute=ActorPoolStrategy(size=res.model_actors), **model)
