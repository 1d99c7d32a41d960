"""Pass 1 of the soundtrack job: from videos to saved music conditioning, segment by segment.

    keys -> Decode (CPU: probe, plan windows and segments, sampled frames of one segment at a time)
         -> Embed (CLIP image tower: mean of normalised frame embeddings per window)
         -> Prior (MLP -> E_r', EmbedDiff -> E_m + mask; saved to the video's progress folder)

A row is one ``Segment`` (a few windows), never a whole video, so memory per worker does
not grow with video length; model stages batch segments of many videos. Segments saved by
an earlier run are not decoded again.
"""

import time
from contextlib import nullcontext

import numpy as np
import torch

from cotvtm.errors import MediaError
from cotvtm.pipelines.context import RunContext
from cotvtm.pipelines.job import Segment
from cotvtm.pipelines.progress import Plan
from cotvtm.pipelines.rows import batch_of, records, row_of, use_threads
from cotvtm.pipelines.stages import Stage, add_stage
from cotvtm.rng import CounterNoise, stream_id
from cotvtm.storage import StorageError
from cotvtm.storage.pin import Pinned
from cotvtm.storage.scratch import Scratch
from cotvtm.video import media


class Decode(Stage):
    """Plan a video (or reuse its saved plan) and yield its unfinished segments with their frames.

    Each input is read pinned to the content it was listed with (``storage/pin.py``): a remote
    one is downloaded once to this actor's scratch folder and removed when its last segment has
    been decoded; a local one is read through the descriptor opened and checked first. Its rows
    are input keys; ``identities`` gives each key's content identity (recorded in the plan),
    ``resumed`` the saved plan and conditioned segments of partly done ones.
    """

    name, role = "decode", "decode"

    def __init__(self, ctx: RunContext, identities: dict[str, str], resumed: dict[str, tuple[Plan, frozenset]]):
        use_threads(1)
        self.ctx, self.cfg, self.identities, self.resumed = ctx, ctx.cfg, identities, resumed
        self.scratch = Scratch()

    def __call__(self, batch):
        for key in records(batch):
            for segment in self.segments(key):
                yield batch_of([segment])

    def segments(self, key: str):
        started = time.perf_counter()
        identity, limit = self.identities.get(key, ""), self.ctx.res.max_input_bytes
        try:
            with self.scratch.pinned(self.ctx.src, key, identity, limit) as source:
                yield from self._segments(key, source, started)
        except StorageError as exc:  # the input cannot be opened as it was listed
            yield Segment(key, -1, 0, error=exc.reason, error_stage="decode")

    def _segments(self, key: str, source: Pinned, started: float):
        plan, conditioned = self.resumed.get(key, (None, frozenset()))
        try:
            if plan is None:
                plan = self.plan(key, source.path)
                source.verify()
                self.ctx.video(key).save_plan(plan)
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
                segment.frames = self.frames(key, source.path, plan.info, windows)
                source.verify()  # the frames are the listed content's
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
        identity = self.identities.get(key, "")
        if self.cfg.windows == "shots":
            info, windows, cuts = media.plan_shots(path, key, self.cfg.window_s, self.cfg.image_seconds,
                                                  self.ctx.res.max_duration_s)
            return Plan(info, windows, self.ctx.res.segment_windows, identity, cuts)
        info, windows = media.plan(path, key, self.cfg.window_s, self.cfg.image_seconds, self.ctx.res.max_duration_s)
        return Plan(info, windows, self.ctx.res.segment_windows, identity)

    def frames(self, key: str, path, info, windows) -> np.ndarray:
        return media.window_frames(path, key, info, windows, self.cfg.frames_per_window, self.ctx.facts.short_side,
                                   self.cfg.frame_reader)


class Embed(Stage):
    name = "embed"

    def __init__(self, ctx: RunContext):
        from cotvtm.encoders.clip import ClipEncoder

        use_threads(ctx.res.model_cpus)
        half = torch.float16 if ctx.res.device.startswith("cuda") else None  # a GPU: half precision
        self.clip = ClipEncoder(ctx.refs.clip, ctx.res.device, dtype=half)

    def process(self, segments: list[Segment]) -> None:
        for segment in segments:
            segment.e_v, segment.frames = self.clip.embed_windows(segment.frames), None


class Prior(Stage):
    """Sample E_m for a batch of segments and save each segment's conditioning."""

    name = "prior"

    def __init__(self, ctx: RunContext):
        from cotvtm.models import load_prior
        from cotvtm.prior.explain import ExplanationIndex

        use_threads(ctx.res.model_cpus)
        self.prior = load_prior(ctx.refs.prior, **ctx.facts.dims).to(ctx.res.device)
        self.explain = ExplanationIndex.load(ctx.refs.prior)
        self.ctx, self.cfg, self.device = ctx, ctx.cfg, ctx.res.device

    def process(self, segments: list[Segment]) -> None:
        started = time.perf_counter()
        e_v = torch.as_tensor(np.concatenate([s.e_v for s in segments]), dtype=torch.float32, device=self.device)
        # one noise stream per window: its E_m does not depend on the segments it is batched with
        noise = CounterNoise([stream_id(self.cfg.seed, s.key, w.index, "prior") for s in segments for w in s.windows])
        on_gpu = str(self.device).startswith("cuda")  # a GPU: the sampler in bfloat16
        with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16) if on_gpu else nullcontext():
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
            self.ctx.video(segment.key).save_conditioning(segment.index, e_m, mask, meta)
        except StorageError as exc:
            segment.fail(self.name, exc.reason)
        segment.e_v = None


def build(ctx: RunContext, identities: dict[str, str], resumed: dict[str, tuple[Plan, frozenset]]):
    """The Ray Data plan of pass 1 over the inputs (key -> content identity); its rows are the
    finished (or failed) ``Segment``s."""
    import ray.data

    ds = ray.data.from_items([row_of(key) for key in identities], override_num_blocks=max(1, len(identities)))
    # Every yielded segment leaves Decode as a block of its own: by default Ray Data gathers a
    # task's outputs up to 128 MiB, which would hold many segments of one video in one worker.
    ds.context.target_max_block_size = 1
    ds = add_stage(ds, Decode, ctx.res.place(Decode.role), 1, ctx=ctx, identities=identities, resumed=resumed)
    for stage in (Embed, Prior):
        ds = add_stage(ds, stage, ctx.res.place(stage.role), ctx.res.video_batch, ctx=ctx)
    return ds
