"""Pass 2 of the soundtrack job: from saved conditioning to finished outputs.

    jobs -> Music (pipelines/music.py: MusicGen from E_m, continuous across windows, many
                   videos feeding one decode engine; each segment's music saved when made)
         -> Mux (CPU: streams the saved music into one WAV, joining a long video's streams
                 with a crossfade; ffmpeg stream-copies the video and adds it; sidecar JSON;
                 the video's progress folder is removed)

A row is one ``VideoJob``: a key and its plan, no media. Music holds one segment's
conditioning and a short working tail per stream, and Mux one segment's samples, so memory
does not grow with video length. A video whose music was partly saved by an interrupted
run resumes each stream after its last saved segment, from the saved composer state: the
music continues from where it was (the same tokens as an uninterrupted run).
"""

import json
import os
import time
from dataclasses import asdict
from pathlib import Path, PurePosixPath

import numpy as np

from cotvtm.errors import CotvtmError
from cotvtm.music.compose import join_streams
from cotvtm.pipelines.context import RunContext
from cotvtm.pipelines.job import Outcome, VideoJob
from cotvtm.pipelines.music import Music, compose_config, continuous_feed
from cotvtm.pipelines.progress import DamagedProgress, VideoProgress
from cotvtm.pipelines.rows import records, row_of
from cotvtm.pipelines.stages import Stage, add_stage
from cotvtm.storage import StorageError
from cotvtm.storage.scratch import Scratch
from cotvtm.video.image import write_audio, write_still_video
from cotvtm.video.media import is_image
from cotvtm.video.mux import Loudness, fit_length, mux_wav, normalise, write_wav


class Mux(Stage):
    """Write the soundtracked video and its sidecar; emit one manifest row per job.

    The input's picture is read pinned to the content pass 1 prepared (``storage/pin.py``): an
    input replaced in between fails with that reason, never muxed from the new file. Local
    outputs are muxed inside the progress folder and renamed into place; remote ones
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
        self.compose = compose_config(ctx)
        cfg = ctx.cfg
        self.loudness = Loudness(cfg.loudness, cfg.true_peak) if cfg.loudness is not None else None

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
            except DamagedProgress as exc:  # thrown away: the next run makes it again instead of failing alike
                job.fail("mux", f"saved progress damaged ({exc}); it is removed, run again to redo this input")
                _clear(progress)
            except (CotvtmError, ValueError) as exc:
                job.fail("mux", getattr(exc, "reason", str(exc)))
            except Exception as exc:
                job.fail("mux", f"unexpected mux failure: {type(exc).__name__}: {exc}")
        if job.error is not None:
            return Outcome(job.key, "error", reason=f"{job.error_stage}: {job.error}")
        _clear(progress)
        return Outcome(job.key, "ok", output=self.out.uri(job.out_video), sidecar=self.out.uri(job.out_sidecar),
                       windows=len(job.windows), duration=job.info.duration)

    def write(self, job: VideoJob, progress: VideoProgress) -> None:
        starts = {stream["segments"][0] for stream in job.streams[1:]}
        fade = int(round(self.compose.crossfade_s * job.sample_rate))
        chunks = join_streams((progress.load_audio(s) for s in range(job.segments)), starts, fade)
        if is_image(job.key) and not job.out_still:  # the music alone: the image is not needed
            self.write_music(job, progress, chunks)
            return
        with self.scratch.pinned(self.src, job.key, job.identity, self.max_bytes) as source:
            if is_image(job.key):
                audio = self.write_music(job, progress, chunks)
                self.publish(job.out_still, progress,
                             lambda path: write_still_video(source.path, audio, job.sample_rate, path), source.verify)
                return
            wav = self.scratch.path_for(job.key + ".wav")
            keep = self.duck_gain if job.info.has_audio else 0.0
            try:
                write_wav(chunks, job.sample_rate, job.info.duration, wav)
                self.publish(job.out_video, progress, lambda path: self.loudness_of(job, mux_wav(
                    source.path, wav, path, keep_original=keep, loudness=self.loudness)), source.verify)
            finally:
                wav.unlink(missing_ok=True)

    def loudness_of(self, job: VideoJob, fitted: dict | None) -> None:
        """What the sidecar says of the output's loudness: the target, what was measured before,
        the gain that reached it (``mux.fit_loudness``)."""
        if fitted is not None:
            job.loudness = {"target_lufs": self.loudness.lufs, "true_peak_ceiling": self.loudness.true_peak, **fitted}

    def write_music(self, job: VideoJob, progress: VideoProgress, chunks) -> np.ndarray:
        """An image's music as audio: a clip of image_seconds, small enough to hold."""
        audio = fit_length(np.concatenate(list(chunks)), job.sample_rate, job.info.duration)
        if self.loudness is not None:
            audio, fitted = normalise(audio, job.sample_rate, self.loudness)
            self.loudness_of(job, fitted)
        self.publish(job.out_video, progress, lambda path: write_audio(audio, job.sample_rate, path))
        return audio

    def publish(self, key: str, progress: VideoProgress, make, check=None) -> None:
        """Make the file somewhere private, ``check`` that what it was made from is still the
        pinned input, then move it into place whole."""
        local = self.out.local_path(key)
        staged = (self.progress.local_path(progress.prefix + "staged") if local is not None
                  else self.scratch.dir / "staged")
        staged.mkdir(parents=True, exist_ok=True)
        path = staged / ("out" + PurePosixPath(key).suffix.lower())
        try:
            make(path)
            if check is not None:
                check()
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
            "loudness": job.loudness,  # with --loudness: the target, and the music (or mix) as measured before
            "cuts": job.cuts,  # shot cuts the windows follow (--windows shots)
            "segments": job.segments,
            "streams": job.streams,  # where the video's streams begin (each joins the one before)
            "resumed_at_segment": job.resumed_at,
            "sample_rate": job.sample_rate,
            "still_video": PurePosixPath(job.out_still).name if job.out_still else None,
            "seconds": {k: round(v, 3) for k, v in seconds.items()},
        }


def _clear(progress: VideoProgress) -> None:
    try:
        progress.clear()
    except StorageError as exc:  # leftovers only cost space
        print(f"warning  progress folder {progress.prefix} not removed: {exc.reason}", flush=True)


def build(ctx: RunContext, jobs: list[VideoJob]):
    """The Ray Data plan of pass 2; its rows are manifest ``Outcome``s.

    Continuously fed, Music takes one video per batch and many batches per actor (each leaves
    as soon as its video is done); batched, ``video_batch`` videos per batch, one at a time.
    """
    import ray.data

    ds = ray.data.from_items([row_of(job) for job in jobs], override_num_blocks=max(1, len(jobs)))
    if continuous_feed(ctx):
        ds = add_stage(ds, Music, ctx.res.place(Music.role), 1, ctx=ctx)
    else:
        ds = add_stage(ds, Music, ctx.res.place("model"), ctx.res.video_batch, ctx=ctx)
    return add_stage(ds, Mux, ctx.res.place(Mux.role), 1, ctx=ctx)
