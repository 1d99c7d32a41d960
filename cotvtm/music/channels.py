"""Channels-last audio (``decoder.py``): ``(samples,)`` mono, ``(samples, channels)`` otherwise.

What composition, the ending, beat tracking and the mux need to treat a mono and a stereo track
alike; a mono array goes through each of these unchanged, so mono music stays bit for bit what
it was.
"""

import numpy as np


def channels_of(audio: np.ndarray) -> int:
    """How many channels ``audio`` carries."""
    return 1 if np.ndim(audio) == 1 else int(np.shape(audio)[1])


def concat(*pieces: np.ndarray) -> np.ndarray:
    """The pieces end to end as float32; empty ones are left out, since an empty start
    (``np.zeros(0)``) has no channel axis to match a stereo piece's."""
    return np.concatenate([p for p in pieces if len(p)] or pieces[-1:]).astype(np.float32)


def silence(samples: int, like: np.ndarray) -> np.ndarray:
    """``samples`` of silence with ``like``'s channels."""
    return np.zeros((samples, *np.shape(like)[1:]), np.float32)


def per_sample(curve: np.ndarray, audio: np.ndarray) -> np.ndarray:
    """A gain curve over samples, shaped to scale every channel of ``audio`` alike."""
    return curve.reshape((len(curve),) + (1,) * (np.ndim(audio) - 1))


def mixdown(audio: np.ndarray) -> np.ndarray:
    """Mono float32 for analysis (beats): the channels' mean, as librosa's ``to_mono``; mono as it is."""
    audio = np.asarray(audio, np.float32)
    return audio if audio.ndim == 1 else audio.mean(axis=1)
