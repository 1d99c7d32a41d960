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
from dataclasses import asdict, dataclass, field
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
from cotvtm.video.voice import Bed, find_speech, set_bed_gain


@dataclass
class Finishing:
    """One record on its way through Mux, made per record and handed down Mux's helpers: what
    Mux learns of it (its outputs' marks, its music's channels, ending and beats, ...) for its
    sidecar and its ``Outcome``. The actor keeps nothing of one record for the next."""

    record: Composed
    progress: VideoProgress
    marks: dict[str, dict] = field(default_factory=dict)  # its outputs' provenance, by name
    channels: int = 1  # its music's channels, as saved
    ended: EndingChunks | None = None  # how its music ends (where a fade starts)
    grid: BeatGrid | None = None  # its beats, tracked as it streams (None: not tracked)
    editor: dict | None = None  # with --timeline, its stems and timelines
    warp: object = None  # with --sync cuts, how its music was bent (music/sync.py's Warp)
    synced: dict | None = None  # ... and what the sidecar says of it
    tracked_beats: list[float] | None = None  # its beats as tracked, once asked for
    audio: dict | None = None  # its output's audio format
    speech: dict | None = None  # with --audio voice, the speech and the bed
    warnings: list[str] = field(default_factory=list)  # what went less well than asked without failing it

    @property
    def ending(self) -> dict | None:
        """How the music ended (``music/ending.py``)."""
        return self.ended.info if self.ended is not None else None

    def tracked(self) -> list[float]:
        """The beats as tracked (once: tracking runs librosa over the whole envelope)."""
        if self.grid is None:
            return []
        if self.tracked_beats is None:
            self.tracked_beats = self.grid.beats()
        return self.tracked_beats

    def beats(self) -> list[float] | None:
        """The output music's beats: as tracked, moved by ``--sync cuts`` where it bent them;
        None when they were not tracked."""
        if self.grid is None:
            return None
        beats = self.tracked()
        return [round(float(t), 3) for t in self.warp.map(np.asarray(beats))] if self.warp and beats else beats


class Mux(Stage):
    """Write the soundtracked video and its sidecar; return the video's ``Outcome``.

    The input's picture is read pinned to the content pass 1 prepared (``storage/pin.py``): an
    input replaced in between fails with that reason, never muxed from the new file. Local
    outputs are muxed inside the progress folder and renamed into place; remote ones
    are muxed in scratch and uploaded (an S3 object is never visible half-written). The
    sidecar goes last, so a video without its sidecar is an unfinished output that a rerun
    redoes; then the video's progress folder is removed. Every output carries the run's
    AI-generated tags, written by the call that makes it, and with ``--sign-cert`` a C2PA
    manifest, signed before it is published (``cotvtm/provenance.py``). The ``Composed`` it is
    given stays as it was: what Mux learns of a record is on its ``Finishing``, then its
    ``Outcome`` (or the new, failed record).
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
        threading.Thread(target=warm_up, name="beats-warm-up", daemon=True).start()
        if cfg.audio == "voice":  # a detector that cannot load stops the run once, not every input after its music
            from cotvtm.video.speech import load_detector

            load_detector()

    def run(self, records: list[Composed]):
        for record in records:
            yield self.finish(record)

    def finish(self, record: Composed) -> Composed | Outcome:
        """The video's outcome; the record failed (a new record) when it could not be finished."""
        job = record.job
        fin = Finishing(record, self.ctx.video(record.key, job.variant))
        started = time.perf_counter()
        try:
            loudness = self.write(fin)
            sidecar = self.sidecar(fin, loudness, {**record.seconds, self.name: time.perf_counter() - started})
            self.out.put_bytes(job.out_sidecar, json.dumps(sidecar, indent=2).encode())
        except DamagedProgress as exc:  # thrown away: the next run makes it again instead of failing alike
            failed = record.failed(self.name, f"saved progress damaged ({exc}); it is removed, run again to redo "
                                              "this input")
            fin.progress.discard()
            return failed
        except (CotvtmError, ValueError) as exc:
            return record.failed(self.name, getattr(exc, "reason", str(exc)))
        except Exception as exc:
            return record.failed(self.name, f"unexpected mux failure: {type(exc).__name__}: {exc}")
        if self.ctx.cfg.variants == 1:  # else the driver, once every variant is done
            fin.progress.discard()
        return Outcome(job.key, "ok", output=self.out.uri(job.out_video), sidecar=self.out.uri(job.out_sidecar),
                       windows=len(record.plan.windows), duration=record.plan.info.duration, variant=job.variant,
                       ending=fin.ending, beats=fin.beats(), warnings=fin.warnings)

    def write(self, fin: Finishing) -> dict | None:
        """Publish the output(s), the saved music joined, cut to the video's length and ended as
        ``--ending`` says (``fin.ended``), its beats tracked on the way (``fin.grid``; not with a
        ``cut`` ending, unless shot windows need each cut's offset from a beat);
        what the sidecar says of their loudness."""
        record = fin.record
        info, rate = record.plan.info, record.sample_rate
        starts = {stream["segments"][0] for stream in record.streams[1:]}
        fade = int(round(self.compose.crossfade_s * rate))
        joined = join_streams(self.saved_music(fin), starts, fade)
        cfg = self.ctx.cfg
        ended = fin.ended = EndingChunks(joined, round(info.duration * rate), rate, cfg.ending)
        if cfg.ending == "cut" and cfg.windows != "shots" and not cfg.timeline:  # nothing uses the beats
            return self._write(fin, ended)
        grid = fin.grid = BeatGrid(ended, rate)
        loudness = self._write(fin, grid)
        fin.warnings += [w for w in (ended.info.get("warning"), grid.warning) if w]
        return loudness

    def saved_music(self, fin: Finishing):
        """The saved music, segment by segment (channels-last); notes its channels from the first."""
        segments = (fin.progress.load_audio(s) for s in range(len(fin.record.plan.segments)))
        first = next(segments, None)
        fin.channels = 1 if first is None else channels_of(first)
        return itertools.chain([] if first is None else [first], segments)

    def _write(self, fin: Finishing, chunks) -> dict | None:
        """The output(s) of ``chunks``: a video, an image's music, its still video."""
        record = fin.record
        job, info, rate = record.job, record.plan.info, record.sample_rate
        if is_image(job.key) and self.ctx.cfg.timeline:
            fin.warnings.append("--timeline: an image gets no timeline (its music is the output)")
        if is_image(job.key) and not job.out_still:  # the music alone: the image is not needed
            return self.write_music(fin, chunks)[2]
        with self.scratch.pinned(self.src, job.key, job.identity, self.max_bytes) as source:
            if is_image(job.key):
                audio, rate, loudness = self.write_music(fin, chunks)
                self.publish(job.out_still, fin, lambda path: write_still_video(
                    source.path, audio, rate, path, self.marking, audio_format(self.delivery, "aac", None)),
                    source.verify)
                return loudness
            wav = self.scratch.path_for(job.key + ".wav")
            voice = self.ctx.cfg.audio == "voice"
            try:
                bed = find_speech(source.path, info.has_audio, info.duration) if voice else None
                write_wav(chunks, rate, info.duration, wav)
                if self.ctx.cfg.sync == "cuts":
                    self.bend(fin, wav)
                if bed and bed.spans:  # after bending: the speech is where the video has it
                    rewrite_wav(wav, lambda music: duck(music, bed.spans, rate, self.ducking))
                mix, bed = self.mix(fin, source.path, wav, bed)
                anchor = bed.spans if bed and bed.spans else None
                fitted = self.publish(job.out_video, fin, lambda path: mux_wav(
                    source.path, wav, path, mix, self.loudness, self.marking, anchor), source.verify)
                if self.ctx.cfg.timeline:
                    fin.editor = publish_editor_files(self, record, fin, Sound(source, wav, mix), self.edit(fin))
            finally:
                wav.unlink(missing_ok=True)
            return self.loudness_of(fitted)

    def mix(self, fin: Finishing, video_path, wav, bed: Bed | None) -> tuple[Mix, Bed | None]:
        """How the output's audio is made (``--audio``), and with ``voice`` the bed set under the
        speech; noted on ``fin`` for the sidecar."""
        cfg, record_audio = self.ctx.cfg, {"mode": self.ctx.cfg.audio}
        out_key, info = fin.record.job.out_video, fin.record.plan.info
        if cfg.audio == "replace" or not info.has_audio:
            mix = music_mix(out_key, fin.channels, self.delivery)
        else:
            mix = kept_mix(out_key, fin.channels, Original.of(info), cfg.duck_gain if cfg.audio == "duck" else 1.0,
                           self.delivery)
        if bed is not None:
            fade = (fin.ended.info or {}).get("starts_at") if fin.ended is not None else None
            if fade is not None and fin.warp is not None:  # where the bent music's fade starts
                fade = float(fin.warp.map(fade))
            until = fade if fade is not None else info.duration
            bed = set_bed_gain(bed, video_path, wav, mix, cfg.bed_level, self.ducking, until)
            mix = Mix(mix.fmt, mix.music_channels, mix.original, mix.original_gain, bed.gain_db)
        fin.audio = {**record_audio, **mix.fmt.describe()}
        fin.speech = bed.describe(cfg.bed_level, self.ducking) if bed is not None else None
        return mix, bed

    def bend(self, fin: Finishing, wav: Path) -> None:
        """``--sync cuts``: the music in ``wav`` bent so that a beat lands on each shot cut
        (``music/sync.py``), once its beats are known."""
        from cotvtm.music.sync import bend_wav, plan

        beats, cuts = fin.tracked(), list(fin.record.plan.cuts or [])
        fin.warp = plan(beats, cuts, fin.record.plan.info.duration)
        bent = wav.with_name(f"bent-{wav.name}")
        try:
            bend_wav(str(wav), str(bent), fin.warp)
            os.replace(bent, wav)
        finally:
            bent.unlink(missing_ok=True)
        fin.synced = {**fin.warp.describe(), "cut_beats_before": cut_offsets(cuts, beats)}

    def edit(self, fin: Finishing) -> Edit:
        """What the record's timelines mark, and the run's settings they carry."""
        shared, record = self.ctx.sidecar, fin.record
        return Edit(list(record.plan.cuts or []), [(w.start, w.end) for w in record.plan.windows],
                    fin.beats(),
                    {"input": record.job.key, "output": PurePosixPath(record.job.out_video).name,
                     "cotvtm": shared.get("cotvtm"), "config_digest": shared.get("config_digest"),
                     "config": shared.get("config"), "ai_generated": self.marking.comment})

    def loudness_of(self, fitted: dict | None) -> dict | None:
        """What the sidecar says of the output's loudness: the target, what was measured before,
        the gain that reached it (``mux.fit_loudness``)."""
        if fitted is None:
            return None
        return {"target_lufs": self.loudness.lufs, "true_peak_ceiling": self.loudness.true_peak, **fitted}

    def write_music(self, fin: Finishing, chunks) -> tuple[np.ndarray, int, dict | None]:
        """An image's music as audio: a clip of image_seconds, small enough to hold, in the
        delivery format; that audio, its rate, and what the sidecar says of its loudness."""
        record = fin.record
        rate, fitted, fmt = record.sample_rate, None, audio_format(self.delivery, "aac", None)
        audio = fit_length(np.concatenate(list(chunks)), rate, record.plan.info.duration)
        fin.audio, fin.speech = {"mode": "music", **fmt.describe()}, None
        if self.loudness is not None:
            audio, fitted = normalise(audio, rate, self.loudness, fmt)
            rate = fmt.sample_rate
        self.publish(record.job.out_video, fin, lambda path: write_audio(audio, rate, path, self.marking, fmt))
        return audio, rate, self.loudness_of(fitted)

    def publish(self, key: str, fin: Finishing, make, check=None, mark: bool = True):
        """Make the file somewhere private (with ``--sign-cert``, signed once it is made: a
        retry makes and signs it anew; ``mark``: whether it is AI-generated, so tagged and
        signed), ``check`` that what it was made from is still the pinned input, then move it
        into place whole; what ``make`` returned."""
        local, progress = self.out.local_path(key), fin.progress
        staged = (self.progress.local_path(progress.prefix + progress.staging) if local is not None
                  else self.scratch.dir / "staged")
        staged.mkdir(parents=True, exist_ok=True)
        path = staged / ("out" + PurePosixPath(key).suffix.lower())
        try:
            made = make(path)
            if mark:
                self.mark(fin, path, key)
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

    def mark(self, fin: Finishing, path: Path, key: str) -> None:
        """Sign the file just made at ``path`` (with ``--sign-cert``); note what marks it."""
        name = PurePosixPath(key).name
        signed = self.signer.sign(path) if self.signer is not None else None
        fin.marks[name] = {"metadata": self.marking.tags(PurePosixPath(key).suffix), "c2pa": signed}

    def provenance(self, fin: Finishing) -> dict:
        """What the sidecar says marks the outputs as AI-generated: each one's container tags,
        and with ``--sign-cert`` its C2PA manifest (by whom signed; never the key)."""
        metadata = {name: mark["metadata"] for name, mark in fin.marks.items()}
        if self.signer is None:
            return {"metadata": metadata, "c2pa": None}
        return {"metadata": metadata,
                "c2pa": {**self.signer.describe(), "outputs": {name: m["c2pa"] for name, m in fin.marks.items()}}}

    def sidecar(self, fin: Finishing, loudness: dict | None, seconds: dict[str, float]) -> dict:
        """What the sidecar says: the run's shared fields, the record's, what Mux learned of it,
        and the seconds each stage spent on it (``seconds``: the passes', with pass 1's saved per segment)."""
        record, progress = fin.record, fin.progress
        job, plan = record.job, record.plan
        segments = range(len(plan.segments))
        metas = [progress.load_meta(s) for s in segments]
        explanations = [e for meta in metas for e in meta["explanations"]]
        digests = [d for s in segments for d in progress.load_digests(s)]
        seconds = dict(seconds)
        for meta in metas:
            for stage, value in meta["seconds"].items():
                seconds[stage] = seconds.get(stage, 0.0) + value
        beats = fin.beats()
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
            "ending": fin.ending,  # --ending: where the fade starts, on which beat
            "beats": beats,  # the music's beats (seconds), as librosa tracks them; None: not tracked
            "warnings": fin.warnings,  # what went less well than asked without failing the input
            "cut_beats": cut_offsets(plan.cuts, beats),  # each shot cut's offset from its nearest beat
            "sync": fin.synced,  # --sync cuts: the stretches, the cuts left as they were, the offsets before
            "cuts": plan.cuts,  # shot cuts the windows follow (--windows shots)
            "segments": len(plan.segments),
            "streams": record.streams,  # where the video's streams begin (each joins the one before)
            "resumed_at_segment": record.resumed_at,
            "sample_rate": record.sample_rate,
            "channels": fin.channels,  # the music's: 1 from MusicGen, 2 from a stereo decoder
            "audio": fin.audio,  # the output's audio: --audio mode, rate, layout, codec, what of the original changed
            "speech": fin.speech,  # --audio voice: the speech spans, the bed's level and gain, the ducking
            "editor": fin.editor,  # --timeline: the music and original stems and the timelines, by name
            "decoder": record.decoder,  # its name, precision, device, and CUDA graphs (or why it ran eagerly)
            "still_video": PurePosixPath(job.out_still).name if job.out_still else None,
            "seconds": {k: round(v, 3) for k, v in seconds.items()},
            "provenance": self.provenance(fin),  # AI-generated: the outputs' tags, and their C2PA manifests
        }


def music_and_mux(ctx: RunContext, jobs: list[VideoJob]):
    """The Ray Data plan of pass 2 over ``jobs``; its rows are ``Outcome``s, and the records
    that failed on the way."""
    ds = dataset(jobs)
    for stage in (Music, Mux):
        ds = add_stage(ds, stage, ctx, ctx=ctx)
    return ds
