"""Where the original audio speaks: the spans under which a voice-over's music bed ducks further.

Silero VAD (MIT; its TorchScript weights ship inside the ``silero-vad`` wheel, so nothing is
downloaded) scores each 32 ms chunk of 16 kHz mono audio with a speech probability; silero's own
``get_speech_timestamps_from_probs`` turns the probabilities into spans. ffmpeg decodes the first
audio stream onto a pipe, read in blocks, so memory stays constant with the video's length: one
float per chunk is kept (an hour of audio is about 112k of them).
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import tempfile
import threading
import warnings
from importlib.metadata import version

import numpy as np

from cotvtm.errors import MediaError, ModelError
from cotvtm.video import ffmpeg
from cotvtm.video.delivery import ON_CLOCK  # spans on the video's clock, as the mix places the original
from cotvtm.video.ffmpeg import FFMPEG, ffmpeg_url

DETECTOR = f"silero-vad {version('silero-vad')}"
SAMPLE_RATE = 16000  # the rate the model is trained at
CHUNK = 512  # samples per probability: the window silero's 16 kHz model takes
BLOCK = CHUNK * 1024  # samples read from ffmpeg at a time (about 33 s)
# Silero's defaults (those of its get_speech_timestamps), but for the silence that ends a span:
# its default 100 ms splits a sentence at every pause between words, and a bed ducked per word
# would pump; 300 ms keeps a sentence one span and still lets the music up between sentences.
THRESHOLD = 0.5
MIN_SPEECH_MS = 250
MIN_SILENCE_MS = 300
SPEECH_PAD_MS = 30
# Decoding and scoring take about 50 s per hour of audio on one busy CPU core; the limit leaves
# ample room for a loaded machine, yet a hung ffmpeg is killed.
TIMEOUT_S = 60.0
TIMEOUT_S_PER_S = 0.25


def detect_speech(path: str | os.PathLike, duration: float, stream: str = "0:a:0") -> list[tuple[float, float]]:
    """The speech spans (seconds, sorted, non-overlapping, rounded to ms) in the first ``duration``
    seconds of ``stream`` of the media file at ``path``, which the caller knows has audio."""
    model = _model()
    probs, total = _probabilities(path, duration, stream, model)
    import silero_vad

    spans = silero_vad.get_speech_timestamps_from_probs(
        probs, sampling_rate=SAMPLE_RATE, threshold=THRESHOLD, min_speech_duration_ms=MIN_SPEECH_MS,
        min_silence_duration_ms=MIN_SILENCE_MS, speech_pad_ms=SPEECH_PAD_MS, return_seconds=True,
        time_resolution=3, audio_length_samples=total)
    return [(round(float(span["start"]), 3), round(float(span["end"]), 3)) for span in spans]


def load_detector() -> None:
    """Load the model now (once per process): a broken install is a ``ModelError`` at start."""
    _model()


@functools.cache
def _model():
    """Silero's TorchScript model, loaded once per process. Importing silero_vad sets torch's
    thread count to 1 for the whole process: the count is put back as it was."""
    try:
        with _torch_threads(), warnings.catch_warnings():  # silero's use of deprecated torch/importlib calls
            warnings.simplefilter("ignore", DeprecationWarning)
            import silero_vad

            return silero_vad.load_silero_vad()
    except Exception as exc:  # a broken install: no input is to blame
        raise ModelError(f"speech detector {DETECTOR} could not be loaded: {type(exc).__name__}: {exc}") from exc


def _probabilities(path, duration: float, stream: str, model) -> tuple[list[float], int]:
    """One speech probability per ``CHUNK`` of the decoded audio, and its length in samples."""
    import torch

    url = ffmpeg_url(path)
    command = ffmpeg.restricted([FFMPEG, "-nostdin", "-v", "error", "-i", url, "-map", stream, "-t", f"{duration:.3f}",
                                 "-af", ON_CLOCK, "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le",
                                 "pipe:1"])
    timeout_s = TIMEOUT_S + TIMEOUT_S_PER_S * duration
    expired = threading.Event()
    probs, total = [], 0
    with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: a chatty ffmpeg never blocks on it
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                   pass_fds=ffmpeg.pinned_fds(command))
        timer = threading.Timer(timeout_s, _stop, (process, expired))  # a hung ffmpeg would block the read
        timer.start()
        try:
            model.reset_states()
            # one thread: a chunk is far too little work to share, and with more threads each chunk
            # pays for waking and syncing them (26 times slower on a busy 2-core machine)
            with torch.inference_mode(), _torch_threads(1):
                while block := process.stdout.read(BLOCK * 2):  # whole blocks until the last
                    audio = np.frombuffer(block[: len(block) // 2 * 2], np.int16).astype(np.float32) / 32768
                    total += len(audio)
                    probs += _score(model, audio)
        finally:
            process.stdout.close()
            returncode = process.wait()
            timer.cancel()
        if expired.is_set():
            raise MediaError(path, f"speech detection did not finish in {timeout_s:.0f} s")
        if returncode != 0:
            stderr.seek(0)
            raise MediaError(path, _reason(stderr.read(), url, stream))
    return probs, total


@contextlib.contextmanager
def _torch_threads(count: int | None = None):
    """torch's thread count set to ``count`` (if given) inside, and as it was again after: the
    count is process-wide."""
    import torch

    threads = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _stop(process: subprocess.Popen, expired: threading.Event) -> None:
    expired.set()
    process.kill()


def _reason(stderr: bytes, url: str, stream: str) -> str:
    text = stderr.decode("utf-8", "replace")
    refused = ffmpeg.refused_reason(text)
    if refused:
        return refused
    if "matches no streams" in text:  # ffmpeg's last line would only say how to ignore that
        return f"speech detection failed: no audio stream {stream}"
    return f"speech detection failed: {ffmpeg.summarise_stderr(text, url)}"


def _score(model, audio: np.ndarray) -> list[float]:
    """The model's probability for each consecutive ``CHUNK`` of ``audio``, the last zero-padded."""
    import torch

    padded = np.pad(audio, (0, -len(audio) % CHUNK))
    return [model(torch.from_numpy(chunk), SAMPLE_RATE).item() for chunk in padded.reshape(-1, CHUNK)]
