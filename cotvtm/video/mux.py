"""Put the generated music into the original video: stream-copy the picture, encode the audio.

One ffmpeg call per video, written next to the output under a temporary name and renamed into
place, so an output either is complete or does not exist.

The output's audio (``Mix``) is the music brought to the delivery format (``delivery.py``: 48 kHz
stereo by default), alone or over the input's own audio track: quietly under it with ``--audio
duck``, or with ``--audio voice`` the original as it was, the music a bed under it (its gain
set by ``pipelines/finish.py`` from the speech's loudness, its ducking already in the WAV).

Loudness (``Loudness``): the audio the output will carry is measured by ffmpeg's ``ebur128`` (ITU-R BS.1770
integrated loudness and true peak) in audio-only passes, which find the gain that, followed by
a peak limiter at 4x the sample rate (true peaks), reaches the target (``fit_loudness``); the
mux call then applies that gain and limiter. The limiter sits ``AAC_HEADROOM_DB`` below the
ceiling, since lossy encoding adds inter-sample peaks.

With ``--audio voice`` the target anchors on the dialogue, as dialogue-gated delivery
specifications measure it: the loudness measured is the mix's over the speech spans, so a
voice-over lands at the target whatever the music does between sentences.

Audio is channels-last (``music/decoder.py``).
"""

from __future__ import annotations

import itertools
import math
import os
import re
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from cotvtm.errors import MediaError
from cotvtm.music.channels import channels_of, silence
from cotvtm.provenance import Marking
from cotvtm.video import ffmpeg, levels
from cotvtm.video.delivery import (AudioFormat, Delivery, Original, audio_format, exact_format, music_filter,
                                   original_filter)
from cotvtm.video.ffmpeg import FFMPEG, ffmpeg_url

MUX_TIMEOUT_S = 600
AUDIO_CODECS = {  # by output container; the video stream is always copied as is
    ".mp4": "aac", ".m4v": "aac", ".mov": "aac", ".mkv": "aac", ".ts": "aac", ".avi": "aac",
    ".webm": "libopus",
}
FASTSTART = {".mp4", ".m4v", ".mov"}  # index first, so players can start before the download ends
AAC_HEADROOM_DB = 1.0  # lossy encoding adds inter-sample peaks (up to 0.6 dB measured at 48 kHz): limit this far below
LOUDNESS_TOLERANCE_LU = 0.3  # a measurement this close to the target ends the search for the gain
LOUDNESS_PASSES = 5
_TRUE_PEAK = re.compile(r"Peak:\s+(-?[\d.]+|-inf) dBFS")


@dataclass(frozen=True)
class Loudness:
    """A loudness target: integrated ``lufs`` (e.g. -14 for social platforms, -23 for EBU R128
    broadcast) under a true-peak ceiling ``true_peak`` (dBTP)."""

    lufs: float
    true_peak: float = -1.0

    def chain(self, gain_db: float, fmt: AudioFormat) -> str:
        """DC and sub-sonic rumble out (they carry peaks but no loudness), the gain, then a peak
        limiter at 4x the sample rate (so it limits true peaks, as BS.1770 measures them)."""
        limit = 10 ** ((self.true_peak - AAC_HEADROOM_DB) / 20)
        return (f"highpass=f=20,volume={gain_db:.3f}dB,aresample={4 * fmt.sample_rate},alimiter=limit={limit:.5f}:"
                f"attack=1:release=50:level=disabled:latency=1,aresample={fmt.sample_rate},{exact_format(fmt)}")


@dataclass(frozen=True)
class Mix:
    """How an output's audio is made: the music (input 1, ``music_channels``) at
    ``music_gain_db``, brought to ``fmt``; with ``original``, the input's first audio track
    (input 0) at ``original_gain`` mixed with it (``--audio duck``: 0.25 under the music;
    ``--audio voice``: 1, as it was, the music under it)."""

    fmt: AudioFormat
    music_channels: int
    original: Original | None = None
    original_gain: float = 1.0
    music_gain_db: float = 0.0

    def graph(self, chain: str | None = None) -> str:
        """The output's audio as a filter graph ending in ``[out]``, then ``chain`` when given.
        Both inputs are brought to ``fmt`` first, so ``amix`` sums like with like (it would
        otherwise take one input's layout), the music first so that it sets the length."""
        gain = f"volume={self.music_gain_db:.3f}dB," if self.music_gain_db else ""
        graph = f"[1:a:0]{gain}{music_filter(self.fmt, self.music_channels)}"
        if self.original is not None:
            kept = f"volume={self.original_gain:.4f}," if self.original_gain != 1 else ""
            graph = (f"{graph}[music];[0:a:0]{kept}{original_filter(self.fmt, self.original)}[orig];"
                     "[music][orig]amix=inputs=2:duration=first:dropout_transition=0:normalize=0")
        return graph + (f",{chain}" if chain else "") + "[out]"


def music_mix(out_path, music_channels: int, delivery: Delivery = Delivery()) -> Mix:
    """The music alone, in ``delivery``'s format, for an output named ``out_path``."""
    return Mix(audio_format(delivery, AUDIO_CODECS[_check_container(Path(out_path))], None), music_channels)


def kept_mix(out_path, music_channels: int, original: Original, original_gain: float,
             delivery: Delivery = Delivery(), music_gain_db: float = 0.0) -> Mix:
    """The music with the input's own audio kept at ``original_gain``, in its rate and layout
    where the output's codec carries them (``delivery.audio_format``)."""
    fmt = audio_format(delivery, AUDIO_CODECS[_check_container(Path(out_path))], original)
    return Mix(fmt, music_channels, original, original_gain, music_gain_db)


def fit_length(audio: np.ndarray, sample_rate: int, duration: float) -> np.ndarray:
    """Trim or zero-pad ``audio`` (``(n,)`` or ``(n, channels)``) to exactly
    ``round(duration * sample_rate)`` samples, the length ``mux_audio`` expects."""
    audio = np.asarray(audio)
    target = round(duration * sample_rate)
    if len(audio) >= target:
        return audio[:target]
    return np.pad(audio, [(0, target - len(audio))] + [(0, 0)] * (audio.ndim - 1))


def mux_audio(
    video_path: str | os.PathLike,
    audio: np.ndarray,
    sample_rate: int,
    out_path: str | os.PathLike,
    duration: float,
    mix: Mix | None = None,
) -> Path:
    """Write ``out_path``: the first video stream of ``video_path`` copied bit for bit (codec,
    frames, rotation and metadata kept) plus ``audio`` as its only audio track.

    ``audio`` is float mono ``(n,)`` or ``(n, channels)`` and must already be ``duration`` long
    (see ``fit_length``), so no ``-t``/``-shortest`` is needed and the tracks end together.
    ``mix``: how the output's audio is made (default: the music alone, 48 kHz stereo).
    """
    samples = _channels_last(audio)
    expected = round(duration * sample_rate)
    if len(samples) != expected:
        raise ValueError(f"audio has {len(samples)} samples, expected {expected} "
                         f"({duration} s at {sample_rate} Hz): call fit_length first")
    _check_container(Path(out_path))
    fd, wav = tempfile.mkstemp(prefix="cotvtm-", suffix=".wav")
    os.close(fd)
    try:
        sf.write(wav, samples, sample_rate, subtype="FLOAT")
        mux_wav(video_path, wav, out_path, mix)
        return Path(out_path)
    finally:
        os.remove(wav)


def write_wav(chunks: Iterable[np.ndarray], sample_rate: int, duration: float, path: str | os.PathLike) -> Path:
    """Stream float ``chunks`` (channels-last, the first one's channels) into a WAV of exactly
    ``duration`` (cut or zero-padded), holding one chunk in memory at a time: an hour of music
    never sits in RAM."""
    target, written = round(duration * sample_rate), 0
    chunks = iter(chunks)
    first = np.asarray(next(chunks, np.zeros(0, np.float32)), np.float32)
    with sf.SoundFile(path, "w", samplerate=sample_rate, channels=channels_of(first), subtype="FLOAT") as out:
        for chunk in itertools.chain([first], chunks):
            piece = np.asarray(chunk, np.float32)[: target - written]
            out.write(piece)
            written += len(piece)
        if written < target:
            out.write(silence(target - written, first))
    return Path(path)


def rewrite_wav(path: str | os.PathLike, transform, block_s: float = 10.0) -> Path:
    """The WAV at ``path`` streamed through ``transform`` (chunks in, chunks out, the same
    length) in blocks of ``block_s``, and replaced: an hour of music never sits in memory."""
    path = Path(path)
    info = sf.info(str(path))
    done = path.with_name(f"rewritten-{path.name}")
    try:
        blocks = sf.blocks(str(path), blocksize=int(block_s * info.samplerate), dtype="float32")
        write_wav(transform(block if info.channels > 1 else block.reshape(-1) for block in blocks),
                  info.samplerate, info.frames / info.samplerate, done)
        os.replace(done, path)
    finally:
        done.unlink(missing_ok=True)
    return path


def mux_wav(video_path: str | os.PathLike, wav: str | os.PathLike, out_path: str | os.PathLike,
            mix: Mix | None = None, loudness: Loudness | None = None, marking: Marking | None = None,
            anchor: list[tuple[float, float]] | None = None) -> dict | None:
    """``mux_audio`` for music already in a WAV file as long as the video; ``mix`` says how the
    audio is made (default: the music alone, in the delivery format); with ``loudness``, brought to
    it (returns what was measured and the gain: ``fit_loudness``), anchored on the ``anchor``
    spans when given (the speech); with ``marking``, its tags written by the same call
    (``provenance.Marking``)."""
    out_path = Path(out_path)
    ext = _check_container(out_path)
    mix = mix or music_mix(out_path, sf.info(str(wav)).channels)
    chain, fitted = fit_loudness(video_path, wav, mix, loudness, anchor) if loudness else (None, None)
    tmp_out = out_path.with_name(f".{out_path.name}.tmp-{secrets.token_hex(4)}{ext}")
    try:
        _run_ffmpeg(video_path, _mux_command(video_path, str(wav), tmp_out, ext, mix, chain, marking))
        os.replace(tmp_out, out_path)
    finally:
        if os.path.exists(tmp_out):
            os.remove(tmp_out)
    return fitted


def fit_loudness(video_path, wav, mix: Mix, loudness: Loudness,
                 anchor: list[tuple[float, float]] | None = None) -> tuple[str, dict]:
    """The gain that brings the output's audio to the target once limited under the ceiling:
    measured (ffmpeg's ebur128, BS.1770; over the ``anchor`` spans only when given), gained,
    limited and measured again until within ``LOUDNESS_TOLERANCE_LU``. Audio-only passes;
    returns the filter chain the mux applies, and what was measured and found."""
    lufs, peak = measure_loudness(video_path, wav, mix.graph(), anchor)
    anchored = {"anchor": "speech"} if anchor else {}
    if anchor and not math.isfinite(lufs):  # utterances too short for a 400 ms block: the whole mix
        anchor, anchored = None, {"anchor": "the whole mix (the speech is too short to measure)"}
        lufs, peak = measure_loudness(video_path, wav, mix.graph())
    if not math.isfinite(lufs):
        raise MediaError(video_path, "the music is silent: its loudness cannot be set")
    gain, now = loudness.lufs - lufs, lufs
    for passes in range(1, LOUDNESS_PASSES + 1):
        now, _ = measure_loudness(video_path, wav, mix.graph(loudness.chain(gain, mix.fmt)), anchor)
        if abs(now - loudness.lufs) <= LOUDNESS_TOLERANCE_LU:
            break
        gain += loudness.lufs - now
    found = {"measured_lufs": lufs, "measured_true_peak": peak, "gain_db": round(gain, 3), "result_lufs": now,
             "passes": passes}
    return loudness.chain(gain, mix.fmt), {**found, **anchored}


def normalise(audio: np.ndarray, sample_rate: int, loudness: Loudness | None,
              fmt: AudioFormat) -> tuple[np.ndarray, dict | None]:
    """``audio`` held in memory (an image's music) brought to the delivery format ``fmt`` and,
    with ``loudness``, to it as ``mux_wav`` brings a video's; as long as it was; with what
    ``fit_loudness`` found."""
    mix = Mix(fmt, channels_of(audio))
    with tempfile.TemporaryDirectory(prefix="cotvtm-") as folder:
        wav, out = Path(folder) / "music.wav", Path(folder) / "delivered.wav"
        sf.write(wav, np.asarray(audio, np.float32), sample_rate, subtype="FLOAT")
        # the music is input 1; input 0 only stands in
        chain, fitted = fit_loudness(wav, wav, mix, loudness) if loudness else (None, None)
        _run_ffmpeg(wav, [*_audio_command(wav, wav, mix.graph(chain), "-v", "error", "-y"),
                          "-c:a", "pcm_f32le", ffmpeg_url(out)])
        delivered, _ = sf.read(out, dtype="float32", always_2d=True)
    return fit_length(delivered, fmt.sample_rate, len(audio) / sample_rate), fitted


def measure_loudness(video_path, wav, graph: str,
                     spans: list[tuple[float, float]] | None = None) -> tuple[float, float]:
    """(integrated loudness in LUFS, true peak in dBFS) of ``graph``'s ``[out]``; with ``spans``,
    the integrated loudness over those spans only (``levels.py``: BS.1770's own blocks, selected)."""
    meter = levels.MEASURE + ":" if spans is not None else "ebur128="  # blocks logged only when selected
    graph = graph.replace("[out]", f",{meter}peak=true[out]")
    cmd = [*_audio_command(video_path, wav, graph, "-nostats"), "-f", "null", "-"]
    proc = ffmpeg.run(cmd, video_path, "loudness measurement", MUX_TIMEOUT_S, text=True)
    summary = proc.stderr[proc.stderr.rfind("Summary:"):]
    integrated, peak = levels.INTEGRATED.search(summary), _TRUE_PEAK.search(summary)
    if proc.returncode != 0 or not integrated or not peak:
        raise MediaError(video_path, f"loudness measurement failed: {ffmpeg.summarise_stderr(proc.stderr)}")
    if spans is not None:
        return levels.integrated(levels.parse(proc.stderr), spans), float(peak.group(1))
    return float(integrated.group(1)), float(peak.group(1))


def _audio_command(video_path, wav, graph: str, *options: str) -> list[str]:
    """ffmpeg (with global ``options``) over the video (input 0) and the music (input 1), mapping
    only ``graph``'s ``[out]``; the output's options and name follow."""
    return [FFMPEG, "-nostdin", "-hide_banner", *options, "-i", ffmpeg_url(video_path), "-i", ffmpeg_url(wav),
            "-filter_complex", graph, "-map", "[out]"]


def _check_container(out_path: Path) -> str:
    ext = out_path.suffix.lower()
    if ext not in AUDIO_CODECS:
        raise MediaError(out_path, f"unsupported output container {ext or '(no extension)'!r}; "
                                   f"use one of {', '.join(sorted(AUDIO_CODECS))}")
    return ext


def _channels_last(audio: np.ndarray) -> np.ndarray:
    """``audio`` as float32 ``(n,)`` or ``(n, channels)``, the shapes soundfile writes."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2):
        raise ValueError(f"audio must be (n,) or (n, channels), got shape {audio.shape}")
    return audio


def _mux_command(video_path, wav: str, out: Path, ext: str, mix: Mix, chain: str | None = None,
                 marking: Marking | None = None) -> list[str]:
    """The picture copied, the audio made by ``mix`` (then ``chain``) and encoded in its format;
    the input's metadata kept, with ``marking``'s tags over it."""
    # genpts: an MPEG program stream (.mpg) leaves some packets without a time, which Matroska needs
    cmd = [FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-y",
           "-fflags", "+genpts", "-i", ffmpeg_url(video_path), "-i", ffmpeg_url(wav), "-map", "0:v:0",
           "-filter_complex", mix.graph(chain), "-map", "[out]",
           "-map_metadata", "0", "-c:v", "copy", *encoder_options(mix.fmt)]
    return cmd + output_options(ext, marking, faststart=ext in FASTSTART) + [ffmpeg_url(out)]


def encoder_options(fmt: AudioFormat) -> list[str]:
    """The audio encoder's options for ``fmt``."""
    return ["-c:a", fmt.codec, "-b:a", fmt.bitrate, "-ar", str(fmt.sample_rate)]


def output_options(ext: str, marking: Marking | None, faststart: bool) -> list[str]:
    """``marking``'s tags and the one ``-movflags`` (a second would replace the first)."""
    flags = ("+faststart" if faststart else "") + (marking.movflags(ext) if marking else "")
    return (marking.ffmpeg_args(ext) if marking else []) + (["-movflags", flags] if flags else [])


def _run_ffmpeg(video_path, cmd: list[str]) -> None:
    """Run ffmpeg; a failure becomes MediaError with the last meaningful stderr line."""
    ffmpeg.check(ffmpeg.run(cmd, video_path, "mux", MUX_TIMEOUT_S), video_path, "mux failed")
