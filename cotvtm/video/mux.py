"""Put the generated music into the original video: stream-copy the picture, encode the audio.

One ffmpeg call per video, written next to the output under a temporary name and renamed into
place, so an output either is complete or does not exist.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import soundfile as sf

from cotvtm.errors import MediaError
from cotvtm.video.probe import ffmpeg_url, summarise_stderr

FFMPEG = "ffmpeg"
MUX_TIMEOUT_S = 600
AUDIO_BITRATE = "192k"
AUDIO_CODECS = {  # by output container; the video stream is always copied as is
    ".mp4": "aac", ".m4v": "aac", ".mov": "aac", ".mkv": "aac", ".ts": "aac", ".avi": "aac",
    ".webm": "libopus",
}
FASTSTART = {".mp4", ".m4v", ".mov"}  # index first, so players can start before the download ends


def fit_length(audio: np.ndarray, sample_rate: int, duration: float) -> np.ndarray:
    """Trim or zero-pad ``audio`` (``(n,)`` or ``(channels, n)``) to exactly
    ``round(duration * sample_rate)`` samples, the length ``mux_audio`` expects."""
    audio = np.asarray(audio)
    target = round(duration * sample_rate)
    have = audio.shape[-1]
    if have >= target:
        return audio[..., :target]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, target - have)]
    return np.pad(audio, pad)


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

    ``audio`` is float mono ``(n,)`` or ``(channels, n)`` and must already be ``duration`` long
    (see ``fit_length``), so no ``-t``/``-shortest`` is needed and the tracks end together.
    """
    samples = _as_frames_by_channels(audio)
    expected = round(duration * sample_rate)
    if len(samples) != expected:
        raise ValueError(f"audio has {len(samples)} samples, expected {expected} "
                         f"({duration} s at {sample_rate} Hz): call fit_length first")
    _check_container(Path(out_path))
    fd, wav = tempfile.mkstemp(prefix="cotvtm-", suffix=".wav")
    os.close(fd)
    try:
        sf.write(wav, samples, sample_rate, subtype="FLOAT")
        return mux_wav(video_path, wav, out_path, keep_original)
    finally:
        os.remove(wav)


def write_wav(chunks: Iterable[np.ndarray], sample_rate: int, duration: float, path: str | os.PathLike) -> Path:
    """Stream mono float ``chunks`` into a WAV of exactly ``duration`` (cut or zero-padded),
    holding one chunk in memory at a time: an hour of music never sits in RAM."""
    target, written = round(duration * sample_rate), 0
    with sf.SoundFile(path, "w", samplerate=sample_rate, channels=1, subtype="FLOAT") as out:
        for chunk in chunks:
            piece = np.asarray(chunk, np.float32)[: target - written]
            out.write(piece)
            written += len(piece)
        if written < target:
            out.write(np.zeros(target - written, np.float32))
    return Path(path)


def mux_wav(video_path: str | os.PathLike, wav: str | os.PathLike, out_path: str | os.PathLike,
            keep_original: float = 0.0) -> Path:
    """``mux_audio`` for music already in a WAV file as long as the video."""
    out_path = Path(out_path)
    ext = _check_container(out_path)
    tmp_out = out_path.with_name(f".{out_path.name}.tmp-{secrets.token_hex(4)}{ext}")
    try:
        _run_ffmpeg(video_path, _mux_command(video_path, str(wav), tmp_out, ext, keep_original))
        os.replace(tmp_out, out_path)
    finally:
        if os.path.exists(tmp_out):
            os.remove(tmp_out)
    return out_path


def _check_container(out_path: Path) -> str:
    ext = out_path.suffix.lower()
    if ext not in AUDIO_CODECS:
        raise MediaError(out_path, f"unsupported output container {ext or '(no extension)'!r}; "
                                   f"use one of {', '.join(sorted(AUDIO_CODECS))}")
    return ext


def _as_frames_by_channels(audio: np.ndarray) -> np.ndarray:
    """soundfile wants ``(n, channels)``; the models produce ``(n,)`` or ``(channels, n)``."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        return audio
    if audio.ndim == 2:
        return audio.T
    raise ValueError(f"audio must be (n,) or (channels, n), got shape {audio.shape}")


def _mux_command(video_path, wav: str, out: Path, ext: str, keep_original: float = 0.0) -> list[str]:
    """``keep_original`` > 0 mixes the video's own first audio track, at that gain, under the music."""
    cmd = [FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-y",
           "-i", ffmpeg_url(video_path), "-i", ffmpeg_url(wav), "-map", "0:v:0"]
    if keep_original > 0:
        mix = (f"[0:a:0]volume={keep_original:.4f}[orig];"
               "[1:a:0][orig]amix=inputs=2:duration=first:dropout_transition=0:normalize=0[mix]")
        cmd += ["-filter_complex", mix, "-map", "[mix]"]
    else:
        cmd += ["-map", "1:a:0"]
    cmd += ["-map_metadata", "0", "-c:v", "copy", "-c:a", AUDIO_CODECS[ext], "-b:a", AUDIO_BITRATE]
    if ext in FASTSTART:
        cmd += ["-movflags", "+faststart"]
    return cmd + [ffmpeg_url(out)]


def _run_ffmpeg(video_path, cmd: list[str]) -> None:
    """Run ffmpeg; a failure becomes MediaError with the last meaningful stderr line."""
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=MUX_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise MediaError(video_path, f"mux did not finish in {MUX_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        urls = [arg for arg in cmd if arg.startswith("file:")]
        raise MediaError(video_path, f"mux failed: {summarise_stderr(proc.stderr, *urls)}")
