"""Audio front ends in plain torch and numpy: resampling, framing, mel filter banks, log-mel.

torchaudio does not import next to the CPU torch this project uses, so the log-mel front
ends of PANNs (librosa's Slaney filters, dB) and VGGish (its own HTK-style filters in the
mel domain, log(mel + 0.01)) are written out here from their reference definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

import numpy as np
import torch
from torch import nn


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling (scipy's Kaiser-windowed FIR) of a mono float signal."""
    audio = np.asarray(audio, np.float32)
    if rate_in == rate_out or len(audio) == 0:
        return audio
    from scipy.signal import resample_poly

    divisor = gcd(int(rate_in), int(rate_out))
    return resample_poly(audio, rate_out // divisor, rate_in // divisor).astype(np.float32)


def _slaney_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, np.float64)
    linear = 3.0 * hz / 200.0
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _slaney_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), 200.0 * mel / 3.0)


def slaney_mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels): librosa.filters.mel with its defaults (Slaney scale and area norm)."""
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = _slaney_hz(np.linspace(_slaney_mel(fmin), _slaney_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.T.astype(np.float32)


def vggish_mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels): VGGish's mel_features.spectrogram_to_mel_matrix (triangles in mel, no DC)."""
    to_mel = lambda hz: 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)  # noqa: E731
    bins = to_mel(np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1))
    edges = np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2)
    lower = (bins[:, None] - edges[None, :-2]) / (edges[1:-1] - edges[:-2])
    upper = (edges[None, 2:] - bins[:, None]) / (edges[2:] - edges[1:-1])
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights[0, :] = 0.0
    return weights.astype(np.float32)


@dataclass(frozen=True)
class MelConfig:
    """One log-mel front end. ``log='db'``: 10 log10(max(x, 1e-10)) (PANNs); ``'offset'``: log(x + 0.01) (VGGish)."""

    sample_rate: int = 32000
    n_fft: int = 1024
    win_length: int = 1024
    hop: int = 320
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 14000.0
    power: float = 2.0
    center: bool = True
    filters: str = "slaney"  # slaney | vggish
    log: str = "db"  # db | offset

    @classmethod
    def panns(cls, sample_rate: int = 32000) -> MelConfig:
        """PANNs: 32 kHz (1024/320, 50-14000 Hz) or its 16 kHz variant (512/160, 50-8000 Hz)."""
        if sample_rate == 16000:
            return cls(16000, 512, 512, 160, 64, 50.0, 8000.0)
        return cls()

    @classmethod
    def vggish(cls) -> MelConfig:
        return cls(16000, 512, 400, 160, 64, 125.0, 7500.0, power=1.0, center=False, filters="vggish",
                   log="offset")


class LogMel(nn.Module):
    """(B, samples) waveform -> (B, 1, frames, n_mels) log-mel, framed by hand so that a
    window shorter than the FFT starts where the reference implementations start it."""

    def __init__(self, cfg: MelConfig):
        super().__init__()
        self.cfg = cfg
        make = slaney_mel_filters if cfg.filters == "slaney" else vggish_mel_filters
        self.register_buffer("mel", torch.from_numpy(make(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)),
                             persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.win_length, periodic=True), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        if c.center:
            wave = torch.nn.functional.pad(wave[:, None], (c.n_fft // 2, c.n_fft // 2), mode="reflect")[:, 0]
        if wave.shape[-1] < c.win_length:
            wave = torch.nn.functional.pad(wave, (0, c.win_length - wave.shape[-1]))
        frames = wave.unfold(-1, c.win_length, c.hop) * self.window
        spectrum = torch.fft.rfft(frames, n=c.n_fft).abs().pow(c.power)
        mel = spectrum @ self.mel
        out = 10.0 * torch.log10(mel.clamp_min(1e-10)) if c.log == "db" else torch.log(mel + 0.01)
        return out[:, None]

    def min_samples(self, frames: int) -> int:
        """Samples needed for at least ``frames`` frames (callers zero-pad short clips up to it)."""
        c = self.cfg
        if c.center:
            return max((frames - 1) * c.hop, c.n_fft // 2 + 1)
        return (frames - 1) * c.hop + c.win_length
