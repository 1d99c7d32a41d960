"""Pass 2 of the soundtrack job: from saved conditioning to finished outputs.

    VideoJob -> Music (pipelines/music.py: MusicGen from E_m, continuous across windows, many
                       videos feeding one decode engine; each segment's music saved when made)
    Composed -> Mux (CPU: streams the saved music into one WAV, joining a long video's streams
                     with a crossfade; ffmpeg stream-copies the video and adds it; sidecar JSON;
                     the video's progress folder is removed) -> Outcome

A row is one record of a video, no media. Music holds one segment's conditioning and a short
working tail per stream, and Mux one segment's samples, so memory does not grow with video
length. A video whose music was partly saved by an interrupted run resumes each stream after
its last saved segment, from the saved composer state: the music continues from where it was
(the same tokens as an uninterrupted run).
"""

import itertools
import json
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path, PurePosixPath

import numpy as np

from cotvtm.errors import CotvtmError
from cotvtm.music.compose import join_streams
from cotvtm.music.beats import BeatGrid, cut_offsets, warm_up
from cotvtm.music.channels import channels_of
from cotvtm.music.ending import EndingChunks
from cotvtm.pipelines.context import RunContext
from cotvtm.pipelines.editor import Edit, Sound, publish_editor_files
from cotvtm.pipelines.job import Composed, Outcome, VideoJob
from cotvtm.pipelines.music import Music, compose_config
from cotvtm.pipelines.progress import DamagedProgress, VideoProgress
from cotvtm.provenance import Marking, Signer
from cotvtm.stage import Place, Stage, add_stage, dataset
from cotvtm.storage.scratch import Scratch
from cotvtm.music.ducking import Ducking, duck
from cotvtm.video.delivery import Delivery, Original, audio_format
from cotvtm.video.image import write_audio, write_still_video
from cotvtm.video.media import is_image
from cotvtm.video.mux import (Loudness, Mix, fit_length, kept_mix, music_mix, mux_wav, normalise, rewrite_wav,
                              write_wav)
from cotvtm.video.types import VideoInfo
from cotvtm.video.voice import Bed, find_speech, set_bed_gain


class Mux(Stage):
    """Write the soundtracked video and its sidecar; return the video's ``Outcome``.

    The input's picture is read pinned to the content pass 1 prepared (``storage/pin.py``): an
    input replaced in between fails with that reason, never muxed from the new file. Local
    outputs are muxed inside the progress folder and renamed into place; remote ones
    are muxed in scratch and uploaded (an S3 object is never visible half-written). The
    sidecar goes last, so a video without its sidecar is an unfinished output that a rerun
    redoes; then the video's progress folder is removed. Every output carries the run's
    AI-generated tags, written by the call that makes it, and with ``--sign-cert`` a C2PA
    manifest, signed before it is published (``cotvtm/provenance.py``).
    """

    name = "mux"
    takes = Composed

    @classmethod
    def placement(cls, ctx: RunContext) -> Place:
        return Place(ctx.res.mux_actors, ctx.res.mux_cpus)

    def __init__(self, ctx: RunContext):
        self.ctx, self.src, self.out, self.max_bytes = ctx, ctx.src, ctx.out, ctx.res.max_input_bytes
        self.progress = ctx.progress
        self.scratch = Scratch()
        self.compose = compose_config(ctx)
        cfg = ctx.cfg
        self.delivery = Delivery(cfg.audio_rate, cfg.audio_channels, cfg.audio_bitrate)
        self.ducking = Ducking(cfg.duck_depth, cfg.duck_attack, cfg.duck_release)
        self.loudness = Loudness(cfg.loudness, cfg.true_peak) if cfg.loudness is not None else None
        self.marking = Marking.of(ctx.sidecar)  # the same tags on every output of the run
        # the signing credentials are read here, on this node, into this process only
        self.signer = Signer.load(ctx.signing, self.marking) if ctx.signing is not None else None
        self.marks: dict[str, dict] = {}  # the record being finished: its outputs' provenance, by name
        self.channels = 1  # the record being finished: its music's channels, as saved
        self.ending: EndingChunks | None = None  # ... how its music ends (where a fade starts)
        self.grid: BeatGrid | None = None  # ... its beats, tracked as it streams (None: not tracked)
        self.editor: dict | None = None  # ... with --timeline, its stems and timelines
        self.warp = None  # ... with --sync cuts, how its music was bent (music/sync.py's Warp)
        self.synced: dict | None = None  # ... and what the sidecar says of it
        self.tracked_beats: list[float] | None = None  # ... its beats as tracked, once asked for
        self.audio: dict | None = None  # ... its output's audio format
        self.speech: dict | None = None  # ... with --audio voice, the speech and the bed
        threading.Thread(target=warm_up, name="beats-warm-up", daemon=True).start()
        if cfg.audio == "voice":  # a detector that cannot load stops the run once, not every input after its music
            from cotvtm.video.speech import load_detector

            load_detector()

    def run(self, records: list[Composed]):
        for record in records:
            yield self.finish(record)

    def finish(self, record: Composed) -> Composed | Outcome:
        """The video's outcome; the record itself, failed, when it could not be finished."""
        job, progress = record.job, self.ctx.video(record.key, record.job.variant)
        self.marks, self.editor, self.warp, self.synced, self.tracked_beats = {}, None, None, None, None
        started = time.perf_counter()
        try:
            loudness = self.write(record, progress)
            record.seconds[self.name] = time.perf_counter() - started
            sidecar = self.sidecar(record, progress, loudness)
            self.out.put_bytes(job.out_sidecar, json.dumps(sidecar, indent=2).encode())
        except DamagedProgress as exc:  # thrown away: the next run makes it again instead of failing alike
            record.fail(self.name, f"saved progress damaged ({exc}); it is removed, run again to redo this input")
            progress.discard()
            return record
        except (CotvtmError, ValueError) as exc:
            record.fail(self.name, getattr(exc, "reason", str(exc)))
            return record
        except Exception as exc:
            record.fail(self.name, f"unexpected mux failure: {type(exc).__name__}: {exc}")
            return record
        if self.ctx.cfg.variants == 1:  # else the driver, once every variant is done
            progress.discard()
        return Outcome(job.key, "ok", output=self.out.uri(job.out_video), sidecar=self.out.uri(job.out_sidecar),
                       windows=len(record.plan.windows), duration=record.plan.info.duration, variant=job.variant)

    def write(self, record: Composed, progress: VideoProgress) -> dict | None:
        """Publish the output(s), the saved music joined, cut to the video's length and ended as
        ``--ending`` says (``record.ending``), its beats tracked on the way (``record.beats``; not with a
        ``cut`` ending, unless shot windows need each cut's offset from a beat);
        what the sidecar says of their loudness."""
        info, rate = record.plan.info, record.sample_rate
        starts = {stream["segments"][0] for stream in record.streams[1:]}
        fade = int(round(self.compose.crossfade_s * rate))
        joined = join_streams(self.saved_music(record, progress), starts, fade)
        cfg = self.ctx.cfg
        ended = self.ending = EndingChunks(joined, round(info.duration * rate), rate, cfg.ending)
        self.grid = None
        if cfg.ending == "cut" and cfg.windows != "shots" and not cfg.timeline:  # nothing uses the beats
            loudness = self._write(record, progress, ended)
            record.ending, record.beats = ended.info, None
            return loudness
        grid = self.grid = BeatGrid(ended, rate)
        loudness = self._write(record, progress, grid)
        record.ending, record.beats = ended.info, self.beats()
        record.warnings += [w for w in (ended.info.get("warning"), grid.warning) if w]
        return loudness

    def saved_music(self, record: Composed, progress: VideoProgress):
        """The saved music, segment by segment (channels-last); notes its channels from the first."""
        segments = (progress.load_audio(s) for s in range(len(record.plan.segments)))
        first = next(segments, None)
        self.channels = 1 if first is None else channels_of(first)
        return itertools.chain([] if first is None else [first], segments)

    def _write(self, record: Composed, progress: VideoProgress, chunks) -> dict | None:
        """The output(s) of ``chunks``: a video, an image's music, its still video."""
        job, info, rate = record.job, record.plan.info, record.sample_rate
        if is_image(job.key) and self.ctx.cfg.timeline:
            record.warnings.append("--timeline: an image gets no timeline (its music is the output)")
        if is_image(job.key) and not job.out_still:  # the music alone: the image is not needed
            return self.write_music(record, progress, chunks)[2]
        with self.scratch.pinned(self.src, job.key, job.identity, self.max_bytes) as source:
            if is_image(job.key):
                audio, rate, loudness = self.write_music(record, progress, chunks)
                self.publish(job.out_still, progress, lambda path: write_still_video(
                    source.path, audio, rate, path, self.marking, audio_format(self.delivery, "aac", None)),
                    source.verify)
                return loudness
            wav = self.scratch.path_for(job.key + ".wav")
            voice = self.ctx.cfg.audio == "voice"
            try:
                bed = find_speech(source.path, info.has_audio, info.duration) if voice else None
                write_wav(chunks, rate, info.duration, wav)
                if self.ctx.cfg.sync == "cuts":
                    self.bend(record, wav)
                if bed and bed.spans:  # after bending: the speech is where the video has it
                    rewrite_wav(wav, lambda music: duck(music, bed.spans, rate, self.ducking))
                mix, bed = self.mix(job.out_video, info, source.path, wav, bed)
                anchor = bed.spans if bed and bed.spans else None
                fitted = self.publish(job.out_video, progress, lambda path: mux_wav(
                    source.path, wav, path, mix, self.loudness, self.marking, anchor), source.verify)
                if self.ctx.cfg.timeline:
                    self.editor = publish_editor_files(self, record, progress, Sound(source, wav, mix),
                                                       self.edit(record))
            finally:
                wav.unlink(missing_ok=True)
            return self.loudness_of(fitted)

    def mix(self, out_key: str, info: VideoInfo, video_path, wav, bed: Bed | None) -> tuple[Mix, Bed | None]:
        """How the output's audio is made (``--audio``), and with ``voice`` the bed set under the
        speech; noted on the record for the sidecar."""
        cfg, record_audio = self.ctx.cfg, {"mode": self.ctx.cfg.audio}
        if cfg.audio == "replace" or not info.has_audio:
            mix = music_mix(out_key, self.channels, self.delivery)
        else:
            mix = kept_mix(out_key, self.channels, Original.of(info), cfg.duck_gain if cfg.audio == "duck" else 1.0,
                           self.delivery)
        if bed is not None:
            fade = (self.ending.info or {}).get("starts_at") if self.ending is not None else None
            if fade is not None and self.warp is not None:  # where the bent music's fade starts
                fade = float(self.warp.map(fade))
            until = fade if fade is not None else info.duration
            bed = set_bed_gain(bed, video_path, wav, mix, cfg.bed_level, self.ducking, until)
            mix = Mix(mix.fmt, mix.music_channels, mix.original, mix.original_gain, bed.gain_db)
        self.audio = {**record_audio, **mix.fmt.describe()}
        self.speech = bed.describe(cfg.bed_level, self.ducking) if bed is not None else None
        return mix, bed

    def bend(self, record: Composed, wav: Path) -> None:
        """``--sync cuts``: the music in ``wav`` bent so that a beat lands on each shot cut
        (``music/sync.py``), once its beats are known."""
        from cotvtm.music.sync import bend_wav, plan

        beats, cuts = self.tracked(), list(record.plan.cuts or [])
        self.warp = plan(beats, cuts, record.plan.info.duration)
        bent = wav.with_name(f"bent-{wav.name}")
        try:
            bend_wav(str(wav), str(bent), self.warp)
            os.replace(bent, wav)
        finally:
            bent.unlink(missing_ok=True)
        self.synced = {**self.warp.describe(), "cut_beats_before": cut_offsets(cuts, beats)}

    def tracked(self) -> list[float]:
        """The beats as tracked (once: tracking runs librosa over the whole envelope)."""
        if self.grid is None:
            return []
        if self.tracked_beats is None:
            self.tracked_beats = self.grid.beats()
        return self.tracked_beats

    def beats(self) -> list[float]:
        """The output music's beats: as tracked, moved by ``--sync cuts`` where it bent them."""
        beats = self.tracked()
        return [round(float(t), 3) for t in self.warp.map(np.asarray(beats))] if self.warp and beats else beats

    def edit(self, record: Composed) -> Edit:
        """What the record's timelines mark, and the run's settings they carry."""
        shared = self.ctx.sidecar
        return Edit(list(record.plan.cuts or []), [(w.start, w.end) for w in record.plan.windows],
                    self.beats(),
                    {"input": record.job.key, "output": PurePosixPath(record.job.out_video).name,
                     "cotvtm": shared.get("cotvtm"), "config_digest": shared.get("config_digest"),
                     "config": shared.get("config"), "ai_generated": self.marking.comment})

    def loudness_of(self, fitted: dict | None) -> dict | None:
        """What the sidecar says of the output's loudness: the target, what was measured before,
        the gain that reached it (``mux.fit_loudness``)."""
        if fitted is None:
            return None
        return {"target_lufs": self.loudness.lufs, "true_peak_ceiling": self.loudness.true_peak, **fitted}

    def write_music(self, record: Composed, progress: VideoProgress, chunks) -> tuple[np.ndarray, int, dict | None]:
        """An image's music as audio: a clip of image_seconds, small enough to hold, in the
        delivery format; that audio, its rate, and what the sidecar says of its loudness."""
        rate, fitted, fmt = record.sample_rate, None, audio_format(self.delivery, "aac", None)
        audio = fit_length(np.concatenate(list(chunks)), rate, record.plan.info.duration)
        self.audio, self.speech = {"mode": "music", **fmt.describe()}, None
        if self.loudness is not None:
            audio, fitted = normalise(audio, rate, self.loudness, fmt)
            rate = fmt.sample_rate
        self.publish(record.job.out_video, progress, lambda path: write_audio(audio, rate, path, self.marking, fmt))
        return audio, rate, self.loudness_of(fitted)

    def publish(self, key: str, progress: VideoProgress, make, check=None, mark: bool = True):
        """Make the file somewhere private (with ``--sign-cert``, signed once it is made: a
        retry makes and signs it anew; ``mark``: whether it is AI-generated, so tagged and
        signed), ``check`` that what it was made from is still the pinned input, then move it
        into place whole; what ``make`` returned."""
        local = self.out.local_path(key)
        staged = (self.progress.local_path(progress.prefix + progress.staging) if local is not None
                  else self.scratch.dir / "staged")
        staged.mkdir(parents=True, exist_ok=True)
        path = staged / ("out" + PurePosixPath(key).suffix.lower())
        try:
            made = make(path)
            if mark:
                self.mark(path, key)
            if check is not None:
                check()
            if local is None:
                self.out.upload(path, key)
            else:
                local.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, local)
        finally:
            Path(path).unlink(missing_ok=True)
        return made

    def mark(self, path: Path, key: str) -> None:
        """Sign the file just made at ``path`` (with ``--sign-cert``); note what marks it."""
        name = PurePosixPath(key).name
        signed = self.signer.sign(path) if self.signer is not None else None
        self.marks[name] = {"metadata": self.marking.tags(PurePosixPath(key).suffix), "c2pa": signed}

    def provenance(self) -> dict:
        """What the sidecar says marks the outputs as AI-generated: each one's container tags,
        and with ``--sign-cert`` its C2PA manifest (by whom signed; never the key)."""
        metadata = {name: mark["metadata"] for name, mark in self.marks.items()}
        if self.signer is None:
            return {"metadata": metadata, "c2pa": None}
        return {"metadata": metadata,
                "c2pa": {**self.signer.describe(), "outputs": {name: m["c2pa"] for name, m in self.marks.items()}}}

    def sidecar(self, record: Composed, progress: VideoProgress, loudness: dict | None) -> dict:
        job, plan = record.job, record.plan
        segments = range(len(plan.segments))
        metas = [progress.load_meta(s) for s in segments]
        explanations = [e for meta in metas for e in meta["explanations"]]
        digests = [d for s in segments for d in progress.load_digests(s)]
        seconds = dict(record.seconds)
        for meta in metas:
            for stage, value in meta["seconds"].items():
                seconds[stage] = seconds.get(stage, 0.0) + value
        return {
            **self.ctx.sidecar,
            "input": job.key,
            "style": job.style,  # --style, or this input's line of --styles
            "variant": job.variant,  # which of the input's --variants tracks this is
            "output": PurePosixPath(job.out_video).name,
            "video": asdict(plan.info),
            "windows": [{"index": w.index, "start": w.start, "end": w.end, "tokens_digest": digests[w.index],
                         **({"explanations": explanations[w.index]} if explanations else {})}
                        for w in plan.windows],
            "loudness": loudness,  # with --loudness: the target, and the music (or mix) as measured before
            "ending": record.ending,  # --ending: where the fade starts, on which beat
            "beats": record.beats,  # the music's beats (seconds), as librosa tracks them; None: not tracked
            "warnings": record.warnings,  # what went less well than asked without failing the input
            "cut_beats": cut_offsets(plan.cuts, record.beats),  # each shot cut's offset from its nearest beat
            "sync": self.synced,  # --sync cuts: the stretches, the cuts left as they were, the offsets before
            "cuts": plan.cuts,  # shot cuts the windows follow (--windows shots)
            "segments": len(plan.segments),
            "streams": record.streams,  # where the video's streams begin (each joins the one before)
            "resumed_at_segment": record.resumed_at,
            "sample_rate": record.sample_rate,
            "channels": self.channels,  # the music's: 1 from MusicGen, 2 from a stereo decoder
            "audio": self.audio,  # the output's audio: --audio mode, rate, layout, codec, what of the original changed
            "speech": self.speech,  # --audio voice: the speech spans, the bed's level and gain, the ducking
            "editor": self.editor,  # --timeline: the music and original stems and the timelines, by name
            "decoder": record.decoder,  # its name, precision, device, and CUDA graphs (or why it ran eagerly)
            "still_video": PurePosixPath(job.out_still).name if job.out_still else None,
            "seconds": {k: round(v, 3) for k, v in seconds.items()},
            "provenance": self.provenance(),  # AI-generated: the outputs' tags, and their C2PA manifests
        }


def music_and_mux(ctx: RunContext, jobs: list[VideoJob]):
    """The Ray Data plan of pass 2 over ``jobs``; its rows are ``Outcome``s, and the records
    that failed on the way."""
    ds = dataset(jobs)
    for stage in (Music, Mux):
        ds = add_stage(ds, stage, ctx, ctx=ctx)
    return ds
