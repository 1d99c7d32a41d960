"""The Music stage of pass 2: each video's saved conditioning in, its music saved segment by segment.

A video is composed as one or more *streams*: stretches of consecutive segments, each one
continuous track inside (``ComposeConfig.stream_ranges``: a long video gets several, so that
it fills several decoder slots; they meet with a crossfade at Mux). A stream hands the
scheduler (``music/scheduler.py``) its next window(s) to decode and takes their music back;
the scheduler decides when and with which others they are decoded.

Continuous feeding (the default, with the engine decoder): one video per call and several
calls in flight per actor (``--videos-in-flight``), all feeding the actor's one decode
engine (``--slots`` windows at once); a video leaves as soon as its music is saved, and the
next one is admitted while the others drain. Batched feeding (``--music-feed batched``, and
the ``generate`` and ``stable-audio`` decoders): the call's videos (``--videos-in-flight`` of
them) go window by window in lockstep.

A call retried after a lost actor redoes its videos from their saved segments.
"""

from dataclasses import replace

import numpy as np

from cotvtm.errors import ModelError, printable
from cotvtm.music.compose import ComposeConfig, TrackState
from cotvtm.music.style import StyleCache, StyleStates, steer
from cotvtm.pipelines.context import RunContext
from cotvtm.pipelines.job import Composed, VideoJob
from cotvtm.pipelines.progress import VideoProgress
from cotvtm.stage import Place, Stage, use_threads
from cotvtm.storage import StorageError
from cotvtm.video.windows import MIN_TAIL_S, SHOT_MAX_S


def compose_config(ctx: RunContext) -> ComposeConfig:
    cfg = ctx.cfg
    return ComposeConfig(mode=cfg.mode, prompt_s=cfg.prompt_s, crossfade_s=cfg.crossfade_s, seed=cfg.seed,
                         streams=cfg.streams_per_video, stream_min_s=cfg.stream_min_s)


def continuous_feed(ctx: RunContext) -> bool:
    """Whether Music runs continuously fed (one video per call, many calls per actor)."""
    return ctx.res.music_feed == "continuous" and (ctx.cfg.decoder or "engine") == "engine"


def starts_on_cut(plan) -> list[bool] | None:
    """Whether each segment of ``plan`` begins on one of its shot cuts; None without cuts."""
    if not plan.cuts:
        return None
    return [any(abs(segment[0].start - cut) < 1e-6 for cut in plan.cuts) for segment in plan.segments]


class _Video:
    """One video of a call while its streams make its music: the ``Composed`` record it was
    opened as, and the failure that stops all its streams (the last one said). Its record is
    made once, when the call's streams are done."""

    def __init__(self, composed: Composed):
        self.composed, self.error = composed, None

    def fail(self, reason: str) -> None:
        self.error = reason

    def record(self, decoder: dict) -> Composed:
        """The video's record as it leaves: with the decoder that made its music, or failed."""
        done = replace(self.composed, decoder=decoder)
        return done if self.error is None else done.failed(Music.name, self.error)


class _Stream:
    """One stream of a video: its segments [first, end), composer state and current segment;
    what the scheduler feeds (``music.scheduler.Feedable``)."""

    def __init__(self, music: "Music", video: _Video, progress: VideoProgress, span: tuple[int, int],
                 start: TrackState):
        self.music, self.composer, self.video, self.progress = music, music.composer, video, progress
        self.composed = video.composed
        self.style = music.style(self.composed.job.style)
        self.plan = self.composed.plan
        self.first, self.end = span
        self.segment = self.first
        self.state = start
        self.last_window = self.plan.segments[self.end - 1][-1].index
        self.pieces: list[np.ndarray] = []
        self.digests: list[str] = []  # tokens digests of the current segment's windows
        self.e_m = self.mask = None
        self.durations: list[float] = []  # of the windows handed out, in order

    def resume(self, composed: frozenset) -> "_Stream":
        """Skip the stream's segments an earlier run saved; continue from the last one's state."""
        while self.segment < self.end and self.segment in composed:
            self.segment += 1
        if self.segment > self.first:
            self.state = self.progress.load_state(self.segment - 1)
        return self

    @property
    def remaining(self) -> int:
        """Windows left to make."""
        return self.last_window + 1 - self.state.window

    def requests(self) -> list:
        """The next window, or in independent mode every window left in the segment (they need
        no order); none when the stream is done or failed."""
        if self.segment >= self.end or self.video.error is not None:
            return []
        try:
            windows = self._next_windows()
        except Exception as exc:
            self.video.fail(self.music.damaged(self.progress, exc))
            return []
        self.durations = [duration for _, _, duration in windows]
        key = self.composed.job.stream_key  # each variant draws from its own streams
        return [self.composer.request(self.state, e_m, mask, duration, key, self.state.window + i)
                for i, (e_m, mask, duration) in enumerate(windows)]

    def _next_windows(self) -> list[tuple[np.ndarray, np.ndarray, float]]:
        windows = self.plan.segments[self.segment]
        if self.e_m is None:  # the segment's conditioning, loaded once
            self.e_m, self.mask = self.progress.load_conditioning(self.segment)
        first = self.state.window - windows[0].index
        last = len(windows) if self.music.independent else first + 1
        weight = self.music.ctx.cfg.style_weight
        return [(*steer(self.e_m[i], self.mask[i], self.style, weight), windows[i].duration)
                for i in range(first, last)]

    def finished(self, music: list) -> None:
        """Join the windows handed out (in order); save the segment when its last one is done."""
        for window, duration in zip(music, self.durations):
            self.composer.join(self.state, window, duration)
            self.digests.append(window.digest)
        self.pieces.append(self.composer.take(self.state, last=self.state.window == self.last_window + 1))
        if self.state.window <= self.plan.segments[self.segment][-1].index:
            return
        try:
            self.progress.save_audio(self.segment, np.concatenate(self.pieces), self.state, self.digests)
        except Exception as exc:
            self.video.fail(self.music.damaged(self.progress, exc))
            return
        self.segment, self.pieces, self.digests, self.e_m, self.mask = self.segment + 1, [], [], None, None
        if len(self.plan.segments) > 1:
            print(f"music    {printable(self.composed.key)}: segment {self.segment}/{len(self.plan.segments)}",
                  flush=True)

    def fail(self, reason: str) -> None:
        self.video.fail(f"music stage failed: {reason}")


def _decoder(ctx: RunContext):
    """The decoder ``--decoder`` names, loaded (``music/decoder.py``: ``MusicDecoder``); ``--slots``
    sizes the MusicGen engine and Stable Audio 3's batch."""
    cfg, res = ctx.cfg, ctx.res
    if cfg.decoder == "stable-audio-3":
        from cotvtm.music.stable_audio_3 import StableAudio3Backend

        return StableAudio3Backend(ctx.refs.stable_audio_3, res.device, cfg.stable_audio_3_steps,
                                   cfg.stable_audio_3_guidance, batch=res.slots,
                                   width=ctx.facts.dims["music_dim"])
    if cfg.decoder == "stable-audio":
        from cotvtm.music.stable_audio import StableAudioBackend

        backend = StableAudioBackend(ctx.refs.stable_audio, res.device, cfg.stable_audio_steps,
                                     cfg.stable_audio_guidance, width=ctx.facts.dims["music_dim"])
        longest = max(cfg.window_s, SHOT_MAX_S if cfg.windows == "shots" else 0.0) + MIN_TAIL_S + cfg.crossfade_s
        if longest > backend.max_seconds:  # one window too long would fail every window rendered beside it
            raise ModelError(f"--decoder stable-audio: {ctx.refs.stable_audio} makes at most "
                             f"{backend.max_seconds:.2f} s, but windows of these settings may need {longest:.2f} s "
                             "(window, a merged tail and the crossfade); use shorter --window-seconds")
        return backend
    from cotvtm.music.musicgen import SamplingConfig, make_backend

    sampling = SamplingConfig(guidance_scale=cfg.guidance_scale, top_k=cfg.top_k, temperature=cfg.temperature)
    return make_backend(cfg.decoder or "engine", ctx.refs.musicgen, res.device, sampling, slots=res.slots,
                        dtype=cfg.decoder_dtype, full=res.engine_width == "full")


class Music(Stage):
    name = "music"
    takes = VideoJob

    @classmethod
    def placement(cls, ctx: RunContext) -> Place:
        """Its own actors, CPUs and GPU share (``--music-*``); ``videos_in_flight`` videos per
        actor: continuously fed, one video per call and that many calls; batched, that many
        videos per call, one call at a time."""
        res = ctx.res
        if continuous_feed(ctx):
            return Place(*res.stage("music"), calls=res.videos_in_flight)
        return Place(*res.stage("music"), batch=res.videos_in_flight)

    def __init__(self, ctx: RunContext):
        from cotvtm.music.compose import Composer
        from cotvtm.music.scheduler import Scheduler

        use_threads(ctx.res.music_cpus)
        self.independent = ctx.cfg.mode == "independent"
        backend = _decoder(ctx)
        self.composer = Composer(backend, compose_config(ctx))
        self.scheduler = Scheduler(backend)
        self.ctx, self.continuous = ctx, continuous_feed(ctx)
        self.styles = StyleCache()  # the most recent styles' states, not every style the run has

    async def run(self, jobs: list[VideoJob]):
        """The call's videos, each with its music saved segment by segment."""
        opened = [self._open(job) for job in jobs]
        streams = [stream for _, streams in opened for stream in streams]
        if self.continuous:
            await self.scheduler.feed(streams)
        else:
            self.scheduler.lockstep(streams)
        decoder = self.composer.backend.describe()  # what made the music: precision, graphs or why none
        yield [video.record(decoder) if isinstance(video, _Video) else video for video, _ in opened]

    def _open(self, job: VideoJob) -> tuple:
        """The video (its ``Composed`` record to be) and its streams (none left when all are
        saved), or the job failed; the plan is read here, once."""
        progress = self.ctx.video(job.key, job.variant)
        try:
            self.style(job.style)  # encoded once per actor and style; the streams find it cached
        except Exception as exc:
            return job.failed(self.name, f"the style could not be encoded: {type(exc).__name__}: {exc}"), []
        try:
            plan = progress.load_plan()
            composed = frozenset(s for s in job.composed if s < len(plan.segments))
            spans = self.composer.cfg.stream_ranges(len(plan.segments), plan.info.duration, starts_on_cut(plan))
            firsts = [plan.segments[first][0] for first, _ in spans]
            streams = [{"segments": list(span), "first_window": w.index, "start": w.start}
                       for span, w in zip(spans, firsts)]
            video = _Video(Composed(job, plan, streams, len(composed), self.composer.backend.sample_rate))
            return video, [_Stream(self, video, progress, span, self._start(plan, span[0])).resume(composed)
                           for span in spans]
        except Exception as exc:
            return job.failed(self.name, self.damaged(progress, exc)), []

    def style(self, text: str | None) -> StyleStates | None:
        """A style's states from the decoder's T5, computed once per actor while the style is among
        its most recent ones."""
        if text is None:
            return None
        return self.styles.get(text, self.composer.backend.encode_text)

    def _start(self, plan, segment: int) -> TrackState:
        first = plan.segments[segment][0].index
        elapsed = 0.0
        for window in plan.windows[:first]:  # summed as the composer sums them
            elapsed += window.duration
        return self.composer.stream_state(first, elapsed)

    def damaged(self, progress: VideoProgress, exc: Exception) -> str:
        """Why a video failed on its saved progress. A storage failure may pass: keep the saved
        work. Damaged saved work is thrown away, so that the next run makes it again instead of
        failing the same way."""
        if isinstance(exc, StorageError):
            return f"progress storage failed: {exc.reason}"
        try:
            progress.clear()
        except StorageError:
            pass
        return f"saved progress damaged ({type(exc).__name__}: {exc}); it was removed, run again to redo this input"
