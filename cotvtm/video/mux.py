"""Put the generated music into the original video: stream-copy the picture, encode the audio.

One ffmpeg call per video, written next to the output under a temporary name and renamed into
place, so an output either is complete or does not exist.

Loudness (``Loudness``): the audio the output will carry (the music, or with ``--audio duck``
the music mixed over the ducked original) is measured by ffmpeg's ``ebur128`` (ITU-R BS.1770
integrated loudness and true peak) in audio-only passes, which find the gain that, followed by
a peak limiter at 4x the sample rate (true peaks), reaches the target (``fit_loudness``); the
mux call then applies that gain and limiter. The limiter sits ``AAC_HEADROOM_DB`` below the
ceiling, since lossy encoding adds inter-sample peaks.

Audio is channels-last (``music/requests.py``); the output's audio stream has the music's
channel count (a stereo track ducked over a mono original stays stereo).
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
from cotvtm.video import ffmpeg
from cotvtm.video.ffmpeg import FFMPEG, ffmpeg_url

MUX_TIMEOUT_S = 600
AUDIO_BITRATE = "192k"
AUDIO_CODECS = {  # by output container; the video stream is always copied as is
    ".mp4": "aac", ".m4v": "aac", ".mov": "aac", ".mkv": "aac", ".ts": "aac", ".avi": "aac",
    ".webm": "libopus",
}
FASTSTART = {".mp4", ".m4v", ".mov"}  # index first, so players can start before the download ends
AAC_HEADROOM_DB = 0.5  # lossy encoding adds inter-sample peaks: limit this far below the ceiling
LOUDNESS_TOLERANCE_LU = 0.3  # a measurement this close to the target ends the search for the gain
LOUDNESS_PASSES = 5
_INTEGRATED = re.compile(r"I:\s+(-?[\d.]+|-inf) LUFS")
_TRUE_PEAK = re.compile(r"Peak:\s+(-?[\d.]+|-inf) dBFS")


@dataclass(frozen=True)
class Loudness:
    """A loudness target: integrated ``lufs`` (e.g. -14 for social platforms, -23 for EBU R128
    broadcast) under a true-peak ceiling ``true_peak`` (dBTP)."""

    lufs: float
    true_peak: float = -1.0

    def chain(self, gain_db: float, rate: int) -> str:
        """DC and sub-sonic rumble out (they carry peaks but no loudness), the gain, then a peak
        limiter at 4x the sample rate (so it limits true peaks, as BS.1770 measures them)."""
        limit = 10 ** ((self.true_peak - AAC_HEADROOM_DB) / 20)
        return (f"highpass=f=20,volume={gain_db:.3f}dB,aresample={4 * rate},alimiter=limit={limit:.5f}:attack=1:"
                f"release=50:level=disabled:latency=1,aresample={rate},aformat=channel_layouts=mono|stereo")


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
    keep_original: float = 0.0,
) -> Path:
    """Write ``out_path``: the first video stream of ``video_path`` copied bit for bit (codec,
    frames, rotation and metadata kept) plus ``audio`` as its only audio track.

    ``audio`` is float mono ``(n,)`` or ``(n, channels)`` and must already be ``duration`` long
    (see ``fit_length``), so no ``-t``/``-shortest`` is needed and the tracks end together.
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
        mux_wav(video_path, wav, out_path, keep_original)
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


def mux_wav(video_path: str | os.PathLike, wav: str | os.PathLike, out_path: str | os.PathLike,
            keep_original: float = 0.0, loudness: Loudness | None = None,
            marking: Marking | None = None) -> dict | None:
    """``mux_audio`` for music already in a WAV file as long as the video; with ``loudness``,
    brought to it (returns what was measured and the gain: ``fit_loudness``); with ``marking``,
    its tags written by the same call (``provenance.Marking``)."""
    out_path = Path(out_path)
    ext = _check_container(out_path)
    chain, fitted = fit_loudness(video_path, wav, keep_original, loudness) if loudness else (None, None)
    graph = (_audio_graph(keep_original, chain, sf.info(str(wav)).channels) if keep_original > 0 or chain
             else None)  # None: the music as it is
    tmp_out = out_path.with_name(f".{out_path.name}.tmp-{secrets.token_hex(4)}{ext}")
    try:
        _run_ffmpeg(video_path, _mux_command(video_path, str(wav), tmp_out, ext, graph, marking))
        os.replace(tmp_out, out_path)
    finally:
        if os.path.exists(tmp_out):
            os.remove(tmp_out)
    return fitted


def fit_loudness(video_path, wav, keep_original: float, loudness: Loudness) -> tuple[str, dict]:
    """The gain that brings the output's audio (the music, or the ducked mix) to the target once
    limited under the ceiling: measured (ffmpeg's ebur128, BS.1770), gained, limited and measured
    again until within ``LOUDNESS_TOLERANCE_LU``. Audio-only passes; returns the filter chain the
    mux applies, and what was measured and found."""
    info = sf.info(str(wav))
    rate, channels = info.samplerate, info.channels
    lufs, peak = measure_loudness(video_path, wav, _audio_graph(keep_original, None, channels))
    if not math.isfinite(lufs):
        raise MediaError(video_path, "the music is silent: its loudness cannot be set")
    gain, now = loudness.lufs - lufs, lufs
    for passes in range(1, LOUDNESS_PASSES + 1):
        now, _ = measure_loudness(video_path, wav, _audio_graph(keep_original, loudness.chain(gain, rate), channels))
        if abs(now - loudness.lufs) <= LOUDNESS_TOLERANCE_LU:
            break
        gain += loudness.lufs - now
    return loudness.chain(gain, rate), {"measured_lufs": lufs, "measured_true_peak": peak, "gain_db": round(gain, 3),
                                        "result_lufs": now, "passes": passes}


def normalise(audio: np.ndarray, sample_rate: int, loudness: Loudness) -> tuple[np.ndarray, dict]:
    """``audio`` held in memory (an image's music) brought to ``loudness`` as ``mux_wav``
    brings a video's, and as long as it was; with what ``fit_loudness`` found."""
    with tempfile.TemporaryDirectory(prefix="cotvtm-") as folder:
        wav, out = Path(folder) / "music.wav", Path(folder) / "loud.wav"
        sf.write(wav, np.asarray(audio, np.float32), sample_rate, subtype="FLOAT")
        chain, fitted = fit_loudness(wav, wav, 0.0, loudness)  # the music is input 1; input 0 only stands in
        _run_ffmpeg(wav, [*_audio_command(wav, wav, _audio_graph(0.0, chain), "-v", "error", "-y"),
                          "-c:a", "pcm_f32le", ffmpeg_url(out)])
        loud, _ = sf.read(out, dtype="float32")
    return fit_length(loud, sample_rate, len(audio) / sample_rate), fitted


def measure_loudness(video_path, wav, graph: str) -> tuple[float, float]:
    """(integrated loudness in LUFS, true peak in dBFS) of ``graph``'s ``[out]``."""
    graph = graph.replace("[out]", ",ebur128=peak=true:framelog=verbose[out]")
    cmd = [*_audio_command(video_path, wav, graph), "-f", "null", "-"]
    proc = ffmpeg.run(cmd, video_path, "loudness measurement", MUX_TIMEOUT_S, text=True)
    summary = proc.stderr[proc.stderr.rfind("Summary:"):]
    integrated, peak = _INTEGRATED.search(summary), _TRUE_PEAK.search(summary)
    if proc.returncode != 0 or not integrated or not peak:
        raise MediaError(video_path, f"loudness measurement failed: {ffmpeg.summarise_stderr(proc.stderr)}")
    return float(integrated.group(1)), float(peak.group(1))


def _audio_command(video_path, wav, graph: str, *options: str) -> list[str]:
    """ffmpeg (with global ``options``) over the video (input 0) and the music (input 1), mapping
    only ``graph``'s ``[out]``; the output's options and name follow."""
    return [FFMPEG, "-nostdin", "-hide_banner", *options, "-i", ffmpeg_url(video_path), "-i", ffmpeg_url(wav),
            "-filter_complex", graph, "-map", "[out]"]


def _audio_graph(keep_original: float, chain: str | None, channels: int = 1) -> str:
    """The output's audio as a filter graph ending in ``[out]``: the music (input 1, of
    ``channels``), mixed over the original's first track at ``keep_original`` when > 0, then
    ``chain`` when given. ``amix`` may take a mono input's layout, so for multichannel music the
    original is first mixed to the music's channel count (mono music's mix is as it always was)."""
    if keep_original > 0:
        fit = f",aformat=channel_layouts={channels}c" if channels > 1 else ""
        graph = (f"[0:a:0]volume={keep_original:.4f}{fit}[orig];"
                 "[1:a:0][orig]amix=inputs=2:duration=first:dropout_transition=0:normalize=0")
    else:
        graph = "[1:a:0]anull"
    return graph + (f",{chain}" if chain else "") + "[out]"


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


def _mux_command(video_path, wav: str, out: Path, ext: str, graph: str | None = None,
                 marking: Marking | None = None) -> list[str]:
    """The picture copied, the audio from ``graph`` (``_audio_graph``), or the music as it is;
    the input's metadata kept, with ``marking``'s tags over it."""
    # genpts: an MPEG program stream (.mpg) leaves some packets without a time, which Matroska needs
    cmd = [FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-y",
           "-fflags", "+genpts", "-i", ffmpeg_url(video_path), "-i", ffmpeg_url(wav), "-map", "0:v:0"]
    if graph is not None:
        cmd += ["-filter_complex", graph, "-map", "[out]"]
    else:
        cmd += ["-map", "1:a:0"]
    cmd += ["-map_metadata", "0", "-c:v", "copy", "-c:a", AUDIO_CODECS[ext], "-b:a", AUDIO_BITRATE]
    return cmd + output_options(ext, marking, faststart=ext in FASTSTART) + [ffmpeg_url(out)]


def output_options(ext: str, marking: Marking | None, faststart: bool) -> list[str]:
    """``marking``'s tags and the one ``-movflags`` (a second would replace the first)."""
    flags = ("+faststart" if faststart else "") + (marking.movflags(ext) if marking else "")
    return (marking.ffmpeg_args(ext) if marking else []) + (["-movflags", flags] if flags else [])


def _run_ffmpeg(video_path, cmd: list[str]) -> None:
    """Run ffmpeg; a failure becomes MediaError with the last meaningful stderr line."""
    ffmpeg.check(ffmpeg.run(cmd, video_path, "mux", MUX_TIMEOUT_S), video_path, "mux failed")
