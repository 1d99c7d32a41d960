"""Test media with a voice on it: espeak-ng speech over a quiet room tone, and a 5.1 video.

The audio is kept as close to lossless as the container allows (FLAC in .mkv, AAC at 320k in
.mp4), and the speech's span is measured on the made file itself: espeak's length is not exact.
"""

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 48000
ROOM_TONE = "anoisesrc=color=pink:amplitude=0.016:seed=7:sample_rate=48000"  # about -50 dBFS RMS
SPEECH_DBFS, SPEECH_PEAK_DBFS = -20.0, -1.0  # a normal voice level (RMS while speaking), never clipped
SPEECH_TEXT = ("Welcome to the harbour at dawn. The boats come in one by one, and the gulls follow them home. "
               "By noon the market is loud and full of fish.")
ESPEAK_SPEED = 175  # espeak-ng's default words per minute
FRAME_S = 0.01
VOICED_DBFS = -40.0  # a 10 ms frame this loud is speech: the room tone stays about 10 dB below
AUDIO = {".mkv": ["-c:a", "flac"], ".mp4": ["-c:a", "aac", "-b:a", "320k"]}
VIDEO = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
# 5.1 channel order with a tone each, so a test can tell where every channel went
SURROUND_TONES = {"FL": 440, "FR": 550, "FC": 660, "LFE": 55, "BL": 770, "BR": 880}


def make_speech_video(path, duration: float = 16.0, speech: tuple[float, float] | None = (4.0, 11.0)):
    """A 48 kHz stereo video of ``duration`` s: room tone with espeak-ng speech from ``speech[0]``
    to about ``speech[1]`` (None: room tone only). Returns the speech's (start, end) as measured
    on the made audio, or None."""
    path = Path(path)
    with tempfile.TemporaryDirectory() as folder:
        inputs, mix = ["-f", "lavfi", "-i", f"{ROOM_TONE}:duration={duration}"], "[1:a]anull[mix]"
        if speech:
            voice = _espeak(Path(folder), speech[1] - speech[0])
            audio, rate = sf.read(voice)
            delay_ms = round((speech[0] - voiced(audio, rate)[0]) * 1000)
            inputs += ["-i", str(voice)]
            mix = (f"[2:a]aresample={RATE},volume={_gain_db(audio, rate):.2f}dB,adelay={delay_ms}:all=1[voice];"
                   "[1:a][voice]amix=inputs=2:duration=first:normalize=0[mix]")
        _ffmpeg(["-f", "lavfi", "-i", f"testsrc=size=64x64:rate=10:duration={duration}", *inputs,
                 "-filter_complex", f"{mix};[mix]aformat=channel_layouts=stereo[a]", "-map", "0:v", "-map", "[a]",
                 *VIDEO, *AUDIO[path.suffix], "-ar", str(RATE), "-t", str(duration), str(path)])
    return voiced(*decoded(path)) if speech else None


def make_surround_video(path, seconds: float = 3.0) -> None:
    """A 48 kHz 5.1 video of ``seconds``, each channel a sine of its own (``SURROUND_TONES``)."""
    path = Path(path)
    tones = "".join(f"sine=frequency={hz}:sample_rate={RATE}:duration={seconds}[{name}];"
                    for name, hz in SURROUND_TONES.items())
    joined = "".join(f"[{name}]" for name in SURROUND_TONES)
    # each sine is mono, whose one channel join would otherwise place by its name (front centre)
    mapped = "|".join(f"{index}.0-{name}" for index, name in enumerate(SURROUND_TONES))
    _ffmpeg(["-f", "lavfi", "-i", f"testsrc=size=64x64:rate=10:duration={seconds}", "-filter_complex",
             f"{tones}{joined}join=inputs=6:channel_layout=5.1:map={mapped}[a]", "-map", "0:v", "-map", "[a]", *VIDEO,
             *AUDIO[path.suffix], "-t", str(seconds), str(path)])


def decoded(path) -> tuple[np.ndarray, int]:
    """A media file's first audio stream as float32 mono at ``RATE``, and the rate."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(RATE),
                          "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, np.float32), RATE


def voiced(audio: np.ndarray, rate: int) -> tuple[float, float]:
    """The first and last 10 ms frame louder than ``VOICED_DBFS`` (start of the one, end of the other)."""
    mono = audio if audio.ndim == 1 else audio.mean(axis=1)
    size = round(FRAME_S * rate)
    frames = mono[: len(mono) // size * size].reshape(-1, size)
    loud = np.flatnonzero(10 * np.log10(np.mean(frames**2, axis=1) + 1e-20) > VOICED_DBFS)
    return round(float(loud[0]) * FRAME_S, 3), round(float(loud[-1] + 1) * FRAME_S, 3)


def _gain_db(audio: np.ndarray, rate: int) -> float:
    """The gain that brings speech to ``SPEECH_DBFS`` RMS over its voiced span, peaks kept under
    ``SPEECH_PEAK_DBFS``."""
    start, end = voiced(audio, rate)
    rms = 10 * np.log10(np.mean(audio[round(start * rate):round(end * rate)] ** 2))
    return min(SPEECH_DBFS - rms, SPEECH_PEAK_DBFS - 20 * np.log10(np.max(np.abs(audio))))


def _espeak(folder: Path, seconds: float) -> Path:
    """``SPEECH_TEXT`` spoken in about ``seconds``: rendered once at the default speed, then again
    at the speed that scales its voiced length to ``seconds``."""
    first, final = folder / "natural.wav", folder / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(first), SPEECH_TEXT], check=True, capture_output=True)
    start, end = voiced(*sf.read(first))
    speed = round(ESPEAK_SPEED * (end - start) / seconds)
    subprocess.run(["espeak-ng", "-s", str(speed), "-w", str(final), SPEECH_TEXT], check=True, capture_output=True)
    return final


def _ffmpeg(arguments: list[str]) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *arguments], check=True, capture_output=True)
