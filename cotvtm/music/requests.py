"""What a music backend is asked for, and what it gives back: one window at a time.

Kept apart from the backends so that composition and saved progress need neither torch's
models nor transformers to describe a window.
"""

import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass
class MusicRequest:
    """One window of music to make."""

    hidden: np.ndarray  # (L, D) E_m
    mask: np.ndarray  # (L,)
    seconds: float  # new music wanted
    stream: int  # cotvtm.rng.stream_id of (seed, input, window)
    prompt: np.ndarray | None = None  # (codebooks, frames): the previous window's last codes

    @property
    def prompt_frames(self) -> int:
        return 0 if self.prompt is None else int(self.prompt.shape[1])


@dataclass
class WindowMusic:
    """One window's music: the prompt's re-decoding (``prompt_frames`` frames), then new music."""

    audio: np.ndarray  # (samples,)
    codes: np.ndarray  # (codebooks, frames), prompt included
    prompt_frames: int

    @property
    def digest(self) -> str:
        """A short hash of the window's new tokens: equal digests, equal music."""
        new = np.ascontiguousarray(self.codes[:, self.prompt_frames:], dtype=np.int32)
        return hashlib.sha256(new.tobytes()).hexdigest()[:16]
