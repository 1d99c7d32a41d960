"""Pass 2 of the soundtrack job: from saved conditioning to finished outputs.

    jobs -> Music (MusicGen from E_m, continuous across windows, batched across videos;
                   each segment's music is saved as soon as it is made)
         -> Mux (CPU: streams the saved music into one WAV, ffmpeg stream-copies the video
                 and adds it; sidecar JSON; the video's progress folder is removed)

A row is one ``VideoJob``: a key and its plan, no media. Music holds one segment's
conditioning and a short working tail per video, and Mux one segment's samples, so memory
does not grow with video length. A video whose music was partly saved by an interrupted
run resumes after its last saved segment, from the saved composer state: the music continues
from where it was (and is the uninterrupted music when the batches are the same).
"""

import json
import os
import time
from dataclasses import asdict
from pathlib import Path, PurePosixPath

import numpy as np

from cotvtm.errors import CotvtmError
from cotvtm.music.compose import TrackState
from cotvtm.pipelines.context import RunContext
from cotvtm.pipelines.job import Outcome, VideoJob
from cotvtm.pipelines.progress import Plan, VideoProgress
from cotvtm.pipelines.rows import records, row_of, use_threads
from cotvtm.pipelines.stages import Stage, add_stage
from cotvtm.storage import StorageError
from cotvtm.storage.scratch import Scratch
from cotvtm.video.image import write_audio, write_still_video
from cotvtm.video.media import is_image
from cotvtm.video.mux import fit_length, mux_wav, write_wav


class _Cursor:
    """One video's place in the compose pass: its plan, composer state and current segment."""

    def __init__(self, job: VideoJob, progress: VideoProgress):
        self.job, self.progress = job, progress
        self.plan: Plan = progress.load_plan()
        self.segment = progress.done().composed_prefix()
        self.state = progress.load_state(self.segment - 1) if self.segment else TrackState()
        self.pieces: list[np.ndarray] = []
        self.digests: list[str] = []  # tokens digests of the current segment's windows
        self.e_m = self.mask = None
        job.info, job.windows, job.segments = self.plan.info, self.plan.windows, len(self.plan.segments)
        job.resumed_at = self.segment

    @property
    def pending(self) -> bool:
        return self.segment < len(self.plan.segments)

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
    name = "music"

    def __init__(self, ctx: RunContext):
        from cotvtm.music.compose import ComposeConfig, Composer
        from cotvtm.music.musicgen import SamplingConfig, make_backend

        use_threads(ctx.res.model_cpus)
        cfg, res = ctx.cfg, ctx.res
        sampling = SamplingConfig(guidance_scale=cfg.guidance_scale, top_k=cfg.top_k, temperature=cfg.temperature)
        compose = ComposeConfig(mode=cfg.mode, prompt_s=cfg.prompt_s, crossfade_s=cfg.crossfade_s, seed=cfg.seed)
        windows = res.video_batch * (res.segment_windows if cfg.mode == "independent" else 1)  # per step
        self.backend = make_backend(cfg.decoder, ctx.refs.musicgen, res.device, sampling,
                                    slots=min(windows, compose.max_batch))
        self.composer = Composer(self.backend, compose)
        self.ctx = ctx

    def process(self, jobs: list[VideoJob]) -> None:
        """The batch's music, every video's saved segment by segment. The batch leaves the stage
        whole: a retried batch (a lost actor) redoes its videos from their saved progress."""
        for _ in self._music(jobs):
            pass

    def _music(self, jobs: list[VideoJob]):
        """Yields each video's job once its music is saved (or it failed)."""
        for job in jobs:
            job.sample_rate = self.backend.sample_rate
        cursors = [c for c in (self._open(job) for job in jobs) if c is not None]
        engine = getattr(self.backend, "engine", None)
        before = (engine.steps, engine.slot_steps) if engine else None
        if engine and self.ctx.res.music_feed == "continuous" and self.composer.cfg.mode == "continuous":
            yield from self._feed(cursors)
        else:
            yield from self._lockstep(cursors)
        if engine and engine.steps > before[0]:
            steps, useful = engine.steps - before[0], engine.slot_steps - before[1]
            print(f"music    engine: {steps} steps, {useful} slot-steps of {steps * engine.slots} "
                  f"({100 * useful / (steps * engine.slots):.1f} % occupancy)", flush=True)

    def _feed(self, cursors: list[_Cursor]):
        """Continuous feeding: each video has its next window in the engine; as one finishes,
        that video's following window goes in, so a free slot never waits for the batch."""
        flight: dict[int, tuple[_Cursor, float]] = {}

        def send(cursor: _Cursor) -> bool:
            """The video's next window into the engine; False when the video is done."""
            if cursor.pending and cursor.job.error is None:
                for e_m, mask, duration in self._guard(cursor, cursor.next_windows, False) or ():
                    flight[id(cursor)] = (cursor, duration)
                    self.backend.submit(id(cursor), self.composer.request(cursor.state, e_m, mask, duration,
                                                                          cursor.job.key))
                    return True
            return False

        for cursor in cursors:
            if not send(cursor):
                yield cursor.job
        while flight:
            for tag, music in self.backend.poll():
                cursor, duration = flight.pop(tag)
                self.composer.join(cursor.state, music, duration)
                cursor.digests.append(music.digest)
                self._took(cursor)
                if not send(cursor):
                    yield cursor.job

    def _took(self, cursor: _Cursor) -> None:
        last = cursor.state.window == len(cursor.plan.windows)
        if self._guard(cursor, cursor.took, self.composer.take(cursor.state, last=last)) and cursor.job.segments > 1:
            print(f"music    {cursor.job.key}: segment {cursor.segment}/{cursor.job.segments}", flush=True)

    def _lockstep(self, cursors: list[_Cursor]):
        """The videos of the batch go window by window together (independent mode: a segment's
        windows at once); a step waits for its slowest window."""
        whole_segment = self.composer.cfg.mode == "independent"
        given = set()
        while True:
            for c in cursors:
                if id(c) not in given and (not c.pending or c.job.error is not None):
                    given.add(id(c))
                    yield c.job
            active = [c for c in cursors if id(c) not in given]
            if not active:
                return
            todo = [(c, window) for c in active for window in self._guard(c, c.next_windows, whole_segment) or ()]
            if not todo:
                continue
            e_m, mask, durations = zip(*(window for _, window in todo))
            digests = self.composer.step([c.state for c, _ in todo], np.stack(e_m), np.stack(mask), list(durations),
                                         [c.job.key for c, _ in todo])
            for (c, _), digest in zip(todo, digests):
                c.digests.append(digest)
            for c in {id(c): c for c, _ in todo}.values():
                self._took(c)

    def _open(self, job: VideoJob) -> "_Cursor | None":
        progress = self.ctx.video(job.key)
        try:
            return _Cursor(job, progress)
        except Exception as exc:
            self._damaged(job, progress, exc)
            return None

    def _guard(self, cursor: _Cursor, step, *args):
        """Run one video's own reading or saving; its failure fails that video only."""
        try:
            return step(*args)
        except Exception as exc:
            self._damaged(cursor.job, cursor.progress, exc)
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


class Mux(Stage):
    """Write the soundtracked video and its sidecar; emit one manifest row per job.

    Local outputs are muxed inside the progress folder and renamed into place; remote ones
    are muxed in scratch and uploaded (an S3 object is never visible half-written). The
    sidecar goes last, so a video without its sidecar is an unfinished output that a rerun
    redoes; then the video's progress folder is removed.
    """

    name, role = "mux", "mux"

    def __init__(self, ctx: RunContext):
        self.ctx, self.src, self.out, self.max_bytes = ctx, ctx.src, ctx.out, ctx.res.max_input_bytes
        self.progress = ctx.progress
        self.duck_gain = ctx.cfg.duck_gain if ctx.cfg.audio == "duck" else 0.0
        self.scratch = Scratch()

    def __call__(self, batch) -> dict:
        rows = [asdict(self.finish(job)) for job in records(batch)]
        return {key: np.array([row[key] for row in rows]) for key in asdict(Outcome("", "")).keys()}

    def finish(self, job: VideoJob) -> Outcome:
        progress = self.ctx.video(job.key)
        if job.error is None:
            started = time.perf_counter()
            try:
                self.write(job, progress)
                job.seconds["mux"] = time.perf_counter() - started
                self.out.put_bytes(job.out_sidecar, json.dumps(self.sidecar(job, progress), indent=2).encode())
            except (CotvtmError, ValueError) as exc:
                job.fail("mux", getattr(exc, "reason", str(exc)))
            except Exception as exc:
                job.fail("mux", f"unexpected mux failure: {type(exc).__name__}: {exc}")
        if job.error is not None:
            return Outcome(job.key, "error", reason=f"{job.error_stage}: {job.error}")
        try:
            progress.clear()
        except StorageError as exc:  # the output is complete; leftovers only cost space
            print(f"warning  {job.key}: progress folder not removed: {exc.reason}", flush=True)
        return Outcome(job.key, "ok", output=self.out.uri(job.out_video), sidecar=self.out.uri(job.out_sidecar),
                       windows=len(job.windows), duration=job.info.duration)

    def write(self, job: VideoJob, progress: VideoProgress) -> None:
        chunks = (progress.load_audio(s) for s in range(job.segments))
        if is_image(job.key) and not job.out_still:  # the music alone: the image is not needed
            self.write_music(job, progress, chunks)
            return
        source, temporary = self.scratch.fetch(self.src, job.key, self.max_bytes)
        try:
            if is_image(job.key):
                audio = self.write_music(job, progress, chunks)
                self.publish(job.out_still, progress,
                             lambda path: write_still_video(source, audio, job.sample_rate, path))
                return
            wav = self.scratch.path_for(job.key + ".wav")
            keep = self.duck_gain if job.info.has_audio else 0.0
            try:
                write_wav(chunks, job.sample_rate, job.info.duration, wav)
                self.publish(job.out_video, progress, lambda path: mux_wav(source, wav, path, keep_original=keep))
            finally:
                wav.unlink(missing_ok=True)
        finally:
            if temporary:
                source.unlink(missing_ok=True)

    def write_music(self, job: VideoJob, progress: VideoProgress, chunks) -> np.ndarray:
        """An image's music as audio: a clip of image_seconds, small enough to hold."""
        audio = fit_length(np.concatenate(list(chunks)), job.sample_rate, job.info.duration)
        self.publish(job.out_video, progress, lambda path: write_audio(audio, job.sample_rate, path))
        return audio

    def publish(self, key: str, progress: VideoProgress, make) -> None:
        """Make the file somewhere private, then move it into place whole."""
        local = self.out.local_path(key)
        staged = (self.progress.local_path(progress.prefix + "staged") if local is not None
                  else self.scratch.dir / "staged")
        staged.mkdir(parents=True, exist_ok=True)
        path = staged / ("out" + PurePosixPath(key).suffix.lower())
        try:
            make(path)
            if local is None:
                self.out.upload(path, key)
            else:
                local.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, local)
        finally:
            Path(path).unlink(missing_ok=True)

    def sidecar(self, job: VideoJob, progress: VideoProgress) -> dict:
        metas = [progress.load_meta(s) for s in range(job.segments)]
        explanations = [e for meta in metas for e in meta["explanations"]]
        digests = [d for s in range(job.segments) for d in progress.load_digests(s)]
        seconds = dict(job.seconds)
        for meta in metas:
            for stage, value in meta["seconds"].items():
                seconds[stage] = seconds.get(stage, 0.0) + value
        return {
            **self.ctx.sidecar,
            "input": job.key,
            "output": PurePosixPath(job.out_video).name,
            "video": asdict(job.info),
            "windows": [{"index": w.index, "start": w.start, "end": w.end, "tokens_digest": digests[w.index],
                         **({"explanations": explanations[w.index]} if explanations else {})}
                        for w in job.windows],
            "segments": job.segments,
            "resumed_at_segment": job.resumed_at,
            "sample_rate": job.sample_rate,
            "still_video": PurePosixPath(job.out_still).name if job.out_still else None,
            "seconds": {k: round(v, 3) for k, v in seconds.items()},
        }


def build(ctx: RunContext, jobs: list[VideoJob]):
    """The Ray Data plan of pass 2; its rows are manifest ``Outcome``s."""
    import ray.data

    ds = ray.data.from_items([row_of(job) for job in jobs], override_num_blocks=max(1, len(jobs)))
    ds = add_stage(ds, Music, ctx.res.place(Music.role), ctx.res.video_batch, ctx=ctx)
    return add_stage(ds, Mux, ctx.res.place(Mux.role), 1, ctx=ctx)
