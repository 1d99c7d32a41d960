"""The Music stage of pass 2: each video's saved conditioning in, its music saved segment by segment.

A video is composed as one or more *streams*: stretches of consecutive segments, each one
continuous track inside (``ComposeConfig.stream_ranges``: a long video gets several, so that
it fills several decoder slots; they meet with a crossfade at Mux).

Continuous feeding (the default, with the engine decoder): the stage's ``__call__`` is async,
so Ray Data keeps several one-video batches in flight on each actor (``Resources.place
("music").calls``); they all feed the actor's one decode engine through ``_Feed``. When a
window finishes, its stream's next window is queued at once, and a free slot takes the queued
window of the stream with the most music left: a short video's slot is refilled by any other
video in flight, and the next batches' videos are admitted while the current ones drain.

Batched feeding (``--music-feed batched``, and the ``generate`` decoder): a batch of videos goes
window by window in lockstep, one batch at a time.

A batch leaves the stage whole, when all its videos' music is saved: a batch retried after a
lost actor redoes its videos from their saved segments and is emitted once.
"""

import asyncio
import time

import numpy as np

from cotvtm.music.compose import ComposeConfig, TrackState
from cotvtm.pipelines.context import RunContext
from cotvtm.pipelines.job import VideoJob
from cotvtm.pipelines.progress import Plan, VideoProgress
from cotvtm.pipelines.rows import batch_of, records, use_threads
from cotvtm.pipelines.stages import Stage
from cotvtm.storage import StorageError


def compose_config(ctx: RunContext) -> ComposeConfig:
    cfg = ctx.cfg
    return ComposeConfig(mode=cfg.mode, prompt_s=cfg.prompt_s, crossfade_s=cfg.crossfade_s, seed=cfg.seed,
                         streams=cfg.streams_per_video, stream_min_s=cfg.stream_min_s)


def continuous_feed(ctx: RunContext) -> bool:
    """Whether Music runs continuously fed (one video per batch, many batches per actor)."""
    return ctx.res.music_feed == "continuous" and ctx.cfg.decoder == "engine"


class _Stream:
    """One stream of a video: its segments [first, end), composer state and current segment."""

    def __init__(self, job: VideoJob, progress: VideoProgress, plan: Plan, span: tuple[int, int],
                 start: TrackState):
        self.job, self.progress, self.plan = job, progress, plan
        self.first, self.end = span
        self.segment = self.first
        self.state = start
        self.last_window = plan.segments[self.end - 1][-1].index
        self.pieces: list[np.ndarray] = []
        self.digests: list[str] = []  # tokens digests of the current segment's windows
        self.e_m = self.mask = None
        self.windows: list = []  # the windows in the engine: (E_m, mask, duration)
        self.arrived: dict = {}  # their music, by position, as it finishes
        self.finished: asyncio.Future | None = None

    def resume(self, composed: frozenset) -> "_Stream":
        """Skip the stream's segments an earlier run saved; continue from the last one's state."""
        while self.segment < self.end and self.segment in composed:
            self.segment += 1
        if self.segment > self.first:
            self.state = self.progress.load_state(self.segment - 1)
        return self

    @property
    def pending(self) -> bool:
        return self.segment < self.end and self.job.error is None

    @property
    def remaining(self) -> int:
        """Windows left to make."""
        return self.last_window + 1 - self.state.window

    @property
    def last(self) -> bool:
        return self.state.window == self.last_window + 1

    def next_windows(self, whole_segment: bool) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """E_m, mask and duration of the next window, or of every window left in the segment
        (independent windows need no order), loading the segment's conditioning once."""
        windows = self.plan.segments[self.segment]
        if self.e_m is None:
            self.e_m, self.mask = self.progress.load_conditioning(self.segment)
        first = self.state.window - windows[0].index
        last = len(windows) if whole_segment else first + 1
        return [(self.e_m[i], self.mask[i], windows[i].duration) for i in range(first, last)]

    def took(self, audio: np.ndarray) -> bool:
        """Keep the final samples; save the segment when its last window is done."""
        self.pieces.append(audio)
        if self.state.window <= self.plan.segments[self.segment][-1].index:
            return False
        self.progress.save_audio(self.segment, np.concatenate(self.pieces), self.state, self.digests)
        self.segment, self.pieces, self.digests, self.e_m, self.mask = self.segment + 1, [], [], None, None
        return True


class Music(Stage):
    name, role = "music", "music"

    def __init__(self, ctx: RunContext):
        from cotvtm.music.compose import Composer
        from cotvtm.music.musicgen import SamplingConfig, make_backend

        use_threads(ctx.res.model_cpus)
        cfg, res = ctx.cfg, ctx.res
        sampling = SamplingConfig(guidance_scale=cfg.guidance_scale, top_k=cfg.top_k, temperature=cfg.temperature)
        compose = compose_config(ctx)
        windows = res.video_batch * (res.segment_windows if cfg.mode == "independent" else 1)  # per step
        self.backend = make_backend(cfg.decoder, ctx.refs.musicgen, res.device, sampling,
                                    slots=min(windows, compose.max_batch))
        self.composer = Composer(self.backend, compose)
        self.whole_segment = cfg.mode == "independent"
        self.ctx = ctx
        self.feed = _Feed(self) if continuous_feed(ctx) else None

    async def __call__(self, batch) -> dict:
        """The batch's music, every video's saved segment by segment (async: the actor runs
        several batches at once, all feeding one engine)."""
        items = records(batch)
        live = [job for job in items if job.error is None]
        started = time.perf_counter()
        try:
            for job in live:
                job.sample_rate = self.backend.sample_rate
            streams = [stream for job in live for stream in self._open(job)]
            if self.feed is not None:
                await self.feed.compose(streams)
            else:
                self._lockstep(streams)
        except Exception as exc:  # one broken batch fails its videos, not the run
            self.fail_unfinished(live, exc)
        self.timed(live, started)
        return batch_of(items)

    def _open(self, job: VideoJob) -> list[_Stream]:
        progress = self.ctx.video(job.key)
        try:
            plan = progress.load_plan()
            composed = frozenset(s for s in progress.done().composed if s < len(plan.segments))
            job.info, job.windows, job.segments, job.cuts = plan.info, plan.windows, len(plan.segments), plan.cuts
            job.resumed_at = len(composed)
            spans = self.composer.cfg.stream_ranges(len(plan.segments), plan.info.duration)
            firsts = [plan.segments[first][0] for first, _ in spans]
            job.streams = [{"segments": list(span), "first_window": w.index, "start": w.start}
                           for span, w in zip(spans, firsts)]
            return [_Stream(job, progress, plan, span, self._start(plan, span[0])).resume(composed) for span in spans]
        except Exception as exc:
            self._damaged(job, progress, exc)
            return []

    def _start(self, plan: Plan, segment: int) -> TrackState:
        first = plan.segments[segment][0].index
        elapsed = 0.0
        for window in plan.windows[:first]:  # summed as the composer sums them
            elapsed += window.duration
        return self.composer.stream_state(first, elapsed)

    def joined(self, stream: _Stream, music: list, durations: list[float]) -> None:
        """Join a stream's finished windows (in order) and save what became final."""
        for window, duration in zip(music, durations):
            self.composer.join(stream.state, window, duration)
            stream.digests.append(window.digest)
        self._take(stream)

    def _take(self, stream: _Stream) -> None:
        if self.guard(stream, stream.took, self.composer.take(stream.state, last=stream.last)):
            if stream.job.segments > 1:
                print(f"music    {stream.job.key}: segment {stream.segment}/{stream.job.segments}", flush=True)

    def _lockstep(self, streams: list[_Stream]) -> None:
        """The batch's streams go window by window together (independent mode: a segment's
        windows at once); a step waits for its slowest window."""
        engine = getattr(self.backend, "engine", None)
        before, started = ((engine.steps, engine.slot_steps) if engine else None), time.perf_counter()
        while True:
            todo = [(s, window) for s in streams if s.pending
                    for window in self.guard(s, s.next_windows, self.whole_segment) or ()]
            if not todo:
                break
            e_m, mask, durations = zip(*(window for _, window in todo))
            digests = self.composer.step([s.state for s, _ in todo], np.stack(e_m), np.stack(mask), list(durations),
                                         [s.job.key for s, _ in todo])
            for (s, _), digest in zip(todo, digests):
                s.digests.append(digest)
            for s in {id(s): s for s, _ in todo}.values():
                self._take(s)
        if engine:
            report(engine, before, started)

    def guard(self, stream: _Stream, step, *args):
        """Run one video's own reading or saving; its failure fails that video only."""
        try:
            return step(*args)
        except Exception as exc:
            self._damaged(stream.job, stream.progress, exc)
            return None

    def _damaged(self, job: VideoJob, progress: VideoProgress, exc: Exception) -> None:
        """A storage failure may pass: keep the saved work. Damaged saved work is thrown away,
        so that the next run makes it again instead of failing the same way."""
        if isinstance(exc, StorageError):
            job.fail(self.name, f"progress storage failed: {exc.reason}")
            return
        job.fail(self.name, f"saved progress damaged ({type(exc).__name__}: {exc}); "
                            "it was removed, run again to redo this input")
        try:
            progress.clear()
        except StorageError:
            pass


def report(engine, before: tuple[int, int], started: float) -> None:
    """The engine's line since ``before`` (steps, slot-steps) and ``started``: what the
    occupancy and GPU benches sum."""
    steps, useful = engine.steps - before[0], engine.slot_steps - before[1]
    if steps:
        print(f"music    engine: {steps} steps, {useful} slot-steps of {steps * engine.slots} "
              f"({100 * useful / (steps * engine.slots):.1f} % occupancy) in {time.perf_counter() - started:.2f} s",
              flush=True)


class _Feed:
    """One actor's engine, fed by the streams of every batch in flight on the actor.

    Everything runs on the actor's event loop: a batch's call adds its streams and waits; one
    driver task steps the engine while any stream has work, yielding to the loop between steps
    so that new batches join the running engine.
    """

    def __init__(self, music: Music):
        self.music, self.backend, self.composer = music, music.backend, music.composer
        self.engine = self.backend.engine
        self.ready: list[_Stream] = []  # streams with no window in the engine
        self.flight: dict[tuple[int, int], _Stream] = {}
        self.driver: asyncio.Task | None = None

    async def compose(self, streams: list[_Stream]) -> None:
        loop = asyncio.get_running_loop()
        for stream in streams:
            stream.finished = loop.create_future()
        self.ready += streams
        if self.driver is None or self.driver.done():
            self.driver = loop.create_task(self._drive())
        await asyncio.gather(*(stream.finished for stream in streams))

    async def _drive(self) -> None:
        before, started = (self.engine.steps, self.engine.slot_steps), time.perf_counter()
        while self.ready or self.flight:
            self._send()
            try:
                finished = self.backend.poll()
            except Exception as exc:  # the engine broke: its windows' videos fail, the rest go on
                self._lost(exc)
                continue
            for (stream_id, position), music in finished:
                stream = self.flight.pop((stream_id, position))
                stream.arrived[position] = music
                if len(stream.arrived) == len(stream.windows):
                    self._joined(stream)
            await asyncio.sleep(0)
        report(self.engine, before, started)

    def _send(self) -> None:
        """Queue the next window(s) of ready streams while slots are free, the streams with the
        most music left first: a long video does not end the run alone."""
        free = self.engine.slots - len(self.engine.busy) - len(self.engine.waiting)
        self.ready.sort(key=lambda s: -s.remaining)
        waiting = []
        for stream in self.ready:
            if free <= 0 and stream.pending:
                waiting.append(stream)
                continue
            windows = stream.pending and self.music.guard(stream, stream.next_windows, self.music.whole_segment)
            if not windows:
                self._done(stream)
                continue
            stream.windows, stream.arrived = windows, {}
            for position, (e_m, mask, duration) in enumerate(windows):
                request = self.composer.request(stream.state, e_m, mask, duration, stream.job.key,
                                                stream.state.window + position)
                self.flight[id(stream), position] = stream
                self.backend.submit((id(stream), position), request)
            free -= len(windows)
        self.ready = waiting

    def _joined(self, stream: _Stream) -> None:
        music = [stream.arrived[i] for i in range(len(stream.windows))]
        self.music.joined(stream, music, [duration for _, _, duration in stream.windows])
        stream.windows, stream.arrived = [], {}
        self.ready.append(stream)

    def _done(self, stream: _Stream) -> None:
        if not stream.finished.done():
            stream.finished.set_result(None)

    def _lost(self, exc: Exception) -> None:
        self.engine.clear()
        self.backend.forget()
        for stream in {id(s): s for s in self.flight.values()}.values():
            stream.job.fail(self.music.name, f"music stage failed: {type(exc).__name__}: {exc}")
            self._done(stream)
        self.flight = {}
