"""What a music decoder is asked for, and what it gives back: one window at a time.

Kept apart from the decoders so that composition and saved progress need neither torch's
models nor transformers to describe a window. Four decoders implement ``MusicDecoder``: the
MusicGen slot engine (``musicgen.EngineBackend``, the default, fed through ``scheduler.py``'s
queue), MusicGen through transformers' ``generate`` (``musicgen.MusicGenBackend``, the
reference), Stable Audio Open through diffusers (``stable_audio.StableAudioBackend``) and
Stable Audio 3 (``stable_audio_3.StableAudio3Backend``).

Audio is float32 and channels-last: ``(samples,)`` from a mono decoder (MusicGen),
``(samples, channels)`` from a multichannel one (Stable Audio's stereo); a decoder's
``channels`` says which.
"""

import hashlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class MusicRequest:
    """One window of music to make."""

    hidden: np.ndarray  # (L, D) E_m
    mask: np.ndarray  # (L,)
    seconds: float  # new music wanted
    stream: int  # cotvtm.rng.stream_id of (seed, input, window)
    prompt: np.ndarray | None = None  # (codebooks, frames): the previous window's last codes
    context: np.ndarray | None = None  # channels-last: the track's last ``prompt_s`` of audio, to continue

    @property
    def prompt_frames(self) -> int:
        return 0 if self.prompt is None else int(self.prompt.shape[1])


@dataclass
class WindowMusic:
    """One window's music: the prompt's re-decoding (``prompt_frames`` frames) or the audio
    context's re-rendering (``prompt_samples`` samples, ending where the track ends), then new music."""

    audio: np.ndarray  # (samples,) or (samples, channels)
    codes: np.ndarray | None  # (codebooks, frames), prompt included; None from a decoder without codes
    prompt_frames: int
    prompt_samples: int = 0

    @property
    def digest(self) -> str:
        """A short hash of the window's new tokens (of its samples, for a decoder without tokens):
        equal digests, equal music."""
        if self.codes is None:
            new = np.ascontiguousarray(self.audio, dtype=np.float32)
        else:
            new = np.ascontiguousarray(self.codes[:, self.prompt_frames:], dtype=np.int32)
        return hashlib.sha256(new.tobytes()).hexdigest()[:16]


class MusicDecoder(Protocol):
    """What the composer and the scheduler need of a decoder."""

    sample_rate: int
    channels: int  # 1: audio is (samples,); more: (samples, channels)
    continues: bool | str  # True: a window continues the codes before it (``prompt``); "audio": the
    # track's last audio (``context``); False: every window is fresh

    def render(self, requests: list[MusicRequest]) -> list[WindowMusic]:
        """The music of each request, in order; a window's music depends on its request alone."""

    def describe(self) -> dict:
        """What the sidecar says of the decoder: its name, precision and device, and how it ran."""

    def encode_text(self, text: str):
        """A text's T5 states and mask (``style.StyleStates``), from the decoder's own text encoder."""
