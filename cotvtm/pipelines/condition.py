"""Pass 1 of the soundtrack job: from videos to saved music conditioning, segment by segment.

    Source -> Decode (CPU: probe, plan windows and segments, sampled frames of one segment at a time)
           -> Embed (CLIP image tower: mean of normalised frame embeddings per window)
           -> Prior (MLP -> E_r', EmbedDiff -> E_m + mask; saved to the video's progress folder)

A row is one ``Segment`` (a few windows), never a whole video, so memory per worker does
not grow with video length; model stages batch segments of many videos. Segments saved by
an earlier run are not decoded again.
"""

import time
from contextlib import nullcontext
from dataclasses import replace

import numpy as np
import torch

from cotvtm.errors import MediaError
from cotvtm.models import RETRIEVAL, half_dtype
from cotvtm.pipelines.context import RunContext
from cotvtm.pipelines.job import Segment, Source
from cotvtm.pipelines.progress import Plan
from cotvtm.rng import CounterNoise, stream_id
from cotvtm.stage import Place, Stage, add_stage, dataset, use_threads
from cotvtm.storage import StorageError
from cotvtm.storage.pin import Pinned
from cotvtm.storage.scratch import Scratch
from cotvtm.video import media


class Decode(Stage):
    """Plan a video (or take its saved plan from its ``Source``) and yield its unfinished
    segments with their frames, one at a time.

    Each input is read pinned to the content it was listed with (``storage/pin.py``): a remote
    one is downloaded once to this actor's scratch folder and removed when its last segment has
    been decoded; a local one is read through the descriptor opened and checked first.
    """

    name = "decode"
    takes = Source

    @classmethod
    def placement(cls, ctx: RunContext) -> Place:
        return Place(ctx.res.decode_actors, 1.0)

    def __init__(self, ctx: RunContext):
        use_threads(1)
        self.ctx, self.cfg = ctx, ctx.cfg
        self.scratch = Scratch()

    def run(self, sources: list[Source]):
        for source in sources:
            yield from self.segments(source)

    def segments(self, source: Source):
        try:
            with self.scratch.pinned(self.ctx.src, source.key, source.identity, self.ctx.res.max_input_bytes) as pin:
                yield from self._segments(source, pin)
        except StorageError as exc:  # the input cannot be opened as it was listed
            yield Segment(source.key, -1, 0, error=exc.reason, error_stage=self.name)

    def _segments(self, source: Source, pin: Pinned):
        key, plan = source.key, source.plan
        try:
            if plan is None:
                plan = self.plan(source, pin.path)
                pin.verify()
                self.ctx.video(key).save_plan(plan)
        except (MediaError, StorageError) as exc:
            yield Segment(key, -1, 0, error=exc.reason, error_stage=self.name)
            return
        except Exception as exc:  # a prober or disk surprise fails this input, not the run
            yield Segment(key, -1, 0, error=f"unexpected decode failure: {type(exc).__name__}: {exc}",
                          error_stage=self.name)
            return
        for index, windows in enumerate(plan.segments):
            if index in source.conditioned:
                continue
            segment = Segment(key, index, len(plan.segments), windows)
            try:
                segment = replace(segment, frames=self.frames(key, pin.path, plan.info, windows))
                pin.verify()  # the frames are the listed content's
            except (MediaError, StorageError) as exc:
                segment = segment.failed(self.name, exc.reason)
            except Exception as exc:  # a decoder bug must not stop the batch either
                segment = segment.failed(self.name, f"unexpected decode failure: {type(exc).__name__}: {exc}")
            yield segment
            if segment.error:
                return

    def plan(self, source: Source, path) -> Plan:
        cfg, res = self.cfg, self.ctx.res
        if cfg.windows == "shots":
            info, windows, cuts = media.plan_shots(path, source.key, cfg.window_s, cfg.image_seconds,
                                                  res.max_duration_s)
            return Plan(info, windows, res.segment_windows, source.identity, cuts)
        info, windows = media.plan_media_windows(path, source.key, cfg.window_s, cfg.image_seconds, res.max_duration_s)
        return Plan(info, windows, res.segment_windows, source.identity)

    def frames(self, key: str, path, info, windows) -> np.ndarray:
        return media.window_frames(path, key, info, windows, self.cfg.frames_per_window, self.ctx.facts.short_side,
                                   self.cfg.frame_reader)


class _ModelStage(Stage):
    @classmethod
    def placement(cls, ctx: RunContext) -> Place:
        """The stage's own actors, CPUs and GPU share (``--embed-*``, ``--prior-*``); segments of
        many videos per call."""
        return Place(*ctx.res.stage(cls.name), batch=getattr(ctx.res, f"{cls.name}_batch"))


class Embed(_ModelStage):
    """CLIP's image tower: each window's E_v, the mean of its frames' normalised embeddings."""

    name = "embed"
    takes = Segment

    def __init__(self, ctx: RunContext):
        from cotvtm.encoders.clip import ClipEncoder

        use_threads(ctx.res.stage(self.name)[1])
        half = half_dtype(ctx.res.device, "clip")  # a GPU: half precision
        self.clip = ClipEncoder(ctx.refs.clip, ctx.res.device, dtype=half)
        self.captioner = _captioner(ctx, self.clip) if ctx.cfg.conditioning == "teacher" else None

    def run(self, segments: list[Segment]):
        yield [self._embedded(segment) for segment in segments]

    def _embedded(self, segment: Segment) -> Segment:
        captions = segment.captions
        if self.captioner is not None:  # the teacher describes what each window shows
            captions = self.captioner(list(segment.frames))
        return replace(segment, captions=captions, e_v=self.clip.embed_windows(segment.frames), frames=None)


class Prior(_ModelStage):
    """E_m for a batch of segments (a distilled prior, retrieval, or the teacher); each
    segment's conditioning saved with each window's explanation."""

    name = "prior"
    takes = Segment

    def __init__(self, ctx: RunContext):
        use_threads(ctx.res.stage(self.name)[1])
        self.ctx, self.cfg, self.device = ctx, ctx.cfg, ctx.res.device
        self.teacher = _teacher(ctx) if ctx.cfg.conditioning == "teacher" else None
        self.retrieval = _retrieval(ctx) if ctx.refs.prior == RETRIEVAL and self.teacher is None else None
        if self.retrieval is None and self.teacher is None:
            from cotvtm.models import load_prior
            from cotvtm.prior.explain import ExplanationIndex

            self.prior = load_prior(ctx.refs.prior, **ctx.facts.dims).to(ctx.res.device)
            self.explain = ExplanationIndex.load(ctx.refs.prior)

    def run(self, segments: list[Segment]):
        if self.teacher is not None:
            yield self._described(segments)
            return
        started = time.perf_counter()
        e_v = np.concatenate([s.e_v for s in segments])
        # one stream per window: its E_m does not depend on the segments it is batched with
        purpose = "prior" if self.retrieval is None else "retrieval"
        streams = [stream_id(self.cfg.seed, s.key, w.index, purpose) for s in segments for w in s.windows]
        if self.retrieval is None:
            e_m, mask = self._sample(e_v, streams)
            explanations = self.explain.nearest(e_m, mask) if self.explain is not None else None
        else:
            e_m, mask, explanations = self.retrieval.sample(e_v, streams)
        offset, share, done = 0, (time.perf_counter() - started) / len(segments), []
        for segment in segments:
            count = len(segment.e_v)
            window = slice(offset, offset + count)
            done.append(self.save(segment.timed(self.name, share), e_m[window], mask[window],
                                  explanations[window] if explanations is not None else []))
            offset += count
        yield done

    def _described(self, segments: list[Segment]) -> list[Segment]:
        """The teacher's music description of every window, all requests at once; a segment
        with a window the teacher could not describe fails, naming the window and why."""
        from cotvtm.teacher.inference import explanation

        started = time.perf_counter()
        ids = [f"{s.key}#{w.index}" for s in segments for w in s.windows]
        records = iter(self.teacher.describe(ids, [c for s in segments for c in s.captions]))
        done = []
        for segment in segments:
            mine = [next(records) for _ in segment.windows]
            failed = next(((w, r) for w, r in zip(segment.windows, mine) if r.status != "ok"), None)
            segment = segment.timed(self.name, (time.perf_counter() - started) / len(segments))
            if failed is not None:
                done.append(segment.failed(self.name, f"the teacher could not describe window {failed[0].index}: "
                                                      f"{failed[1].reason}"))
                continue
            e_m, mask = self.teacher.states(mine)
            done.append(self.save(segment, e_m, mask, [explanation(r, self.ctx.teacher.teacher_model) for r in mine]))
        return done

    def _sample(self, e_v: np.ndarray, streams: list[int]) -> tuple[np.ndarray, np.ndarray]:
        e_v = torch.as_tensor(e_v, dtype=torch.float32, device=self.device)
        half = half_dtype(self.device, "prior")  # a GPU: the sampler in half precision
        with torch.inference_mode(), torch.autocast("cuda", half) if half else nullcontext():
            e_m, mask = self.prior.sample(e_v, steps=self.cfg.prior_steps, method=self.cfg.prior_sampler,
                                          guidance_scale=self.cfg.prior_guidance, generator=CounterNoise(streams))
        return e_m.float().cpu().numpy(), mask.cpu().numpy()

    def save(self, segment: Segment, e_m: np.ndarray, mask: np.ndarray, explanations: list) -> Segment:
        """The segment with its conditioning saved (E_v no longer needed), or failed."""
        meta = {"explanations": explanations, "seconds": segment.seconds}
        try:
            self.ctx.video(segment.key).save_conditioning(segment.index, e_m, mask, meta)
        except StorageError as exc:
            return segment.failed(self.name, exc.reason)
        return replace(segment, e_v=None)


def _retrieval(ctx: RunContext):
    """The retrieval prior over the run's bank, with the run's CLIP (its text tower) and T5."""
    from cotvtm.encoders.clip import ClipEncoder
    from cotvtm.encoders.music_text import MusicTextEncoder
    from cotvtm.prior.retrieval import TOKENS, RetrievalPrior

    half = half_dtype(ctx.res.device, "clip")  # as the Embed stage's CLIP
    clip = ClipEncoder(ctx.refs.clip, ctx.res.device, dtype=half)
    t5 = MusicTextEncoder(ctx.refs.t5, TOKENS, ctx.res.device)
    return RetrievalPrior(list(ctx.bank), clip, t5, k=ctx.cfg.retrieval_k)


def _teacher(ctx: RunContext):
    """The CoT teacher at the run's endpoint (this actor's share of its limits), with the run's T5."""
    from cotvtm.encoders.music_text import MusicTextEncoder
    from cotvtm.prior.retrieval import TOKENS
    from cotvtm.teacher.inference import TeacherConditioner

    return TeacherConditioner(ctx.teacher.share(ctx.res.prior_actors), MusicTextEncoder(ctx.refs.t5, TOKENS,
                                                                                       ctx.res.device))


def _captioner(ctx: RunContext, clip):
    """What writes a window's caption for the teacher: ``--captioner``, else the scene description
    nearest the frames by CLIP (tiny preset) or BLIP-large."""
    from cotvtm.teacher.captioner import captioner_ref, load_captioner

    return load_captioner(captioner_ref(ctx.cfg.captioner, ctx.cfg.models.preset), clip, ctx.res.device)


def conditioning(ctx: RunContext, sources: list[Source]):
    """The Ray Data plan of pass 1 over ``sources``; its rows are the finished (or failed)
    ``Segment``s, each leaving Decode as soon as its frames are read."""
    ds = dataset(sources, stream=True)
    for stage in (Decode, Embed, Prior):
        ds = add_stage(ds, stage, ctx, ctx=ctx)
    return ds
