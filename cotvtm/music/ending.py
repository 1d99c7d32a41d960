"""How a track ends on the video's last frame (``--ending``).

- ``beat`` (default): the track fades out from a beat near its end, so the fade starts on the
  music's pulse; the beats are tracked by ``librosa`` on the last ``CONTEXT_S`` of the generated
  audio. The beat is the one closest to ``FADE_S`` before the end among those ``MIN_FADE_S`` to
  ``MAX_FADE_S`` before it; with none there (no steady pulse found, or audio the tracker cannot
  use: ``info["warning"]`` says why), it fades like ``fade``.
- ``fade``: a ``FADE_S`` fade-out.
- ``cut``: the music stops at the last frame as it is.

A fade goes from full level to exactly zero at the track's last sample, which is the video's
last: an ending never changes the track's length, and fades every channel alike. Only the
last ``CONTEXT_S`` of a track are held back (``EndingChunks``), so a streamed track of any
length ends this way without sitting in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from cotvtm.music.beats import track_beats
from cotvtm.music.channels import concat, per_sample, silence

ENDINGS = ("beat", "fade", "cut")
FADE_S = 2.0
MIN_FADE_S, MAX_FADE_S = 1.0, 4.0
CONTEXT_S = 12.0  # audio the beat tracker sees: a few bars at any tempo


def fade_start(tail: np.ndarray, sample_rate: int, mode: str, offset: int = 0) -> tuple[int, float | None, str | None]:
    """Where in ``tail`` (the track's last samples, from sample ``offset`` on) the fade starts,
    the beat (seconds into ``tail``) it starts on or None, and why beats could not be tracked."""
    length, warning = len(tail) / sample_rate, None
    if mode == "beat":
        beats, warning = track_beats(tail, sample_rate, offset)
        near = [b for b in beats if MIN_FADE_S <= length - b <= MAX_FADE_S]
        if near:
            beat = min(near, key=lambda b: abs(length - b - FADE_S))
            return int(round(beat * sample_rate)), float(beat), None
    return max(len(tail) - int(round(FADE_S * sample_rate)), 0), None, warning


def fade_out(tail: np.ndarray, start: int) -> np.ndarray:
    """``tail`` faded from ``start`` to silence at its last sample: the cube of a quarter cosine,
    gentle at first and below -60 dB over the last 5 % of the fade (the last 50 ms of even the
    shortest, 1 s fade are silent to the ear and to a meter)."""
    out = np.array(tail, np.float32)
    span = len(out) - start
    if span > 0:
        curve = (np.cos(np.linspace(0.0, np.pi / 2, span, dtype=np.float64)) ** 3).astype(np.float32)
        out[start:] *= per_sample(curve, out)
        out[-1] = 0.0
    return out


class EndingChunks:
    """The chunks of a track of exactly ``samples`` samples, cut or zero-padded to it, its ending
    applied to the last ones; ``info`` says what was done, once the chunks are consumed."""

    def __init__(self, chunks: Iterable[np.ndarray], samples: int, sample_rate: int, mode: str):
        self.chunks, self.samples, self.rate, self.mode = chunks, samples, sample_rate, mode
        self.info: dict | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        hold = int(CONTEXT_S * self.rate)
        held, given = np.zeros(0, np.float32), 0
        for chunk in self.chunks:
            piece = np.asarray(chunk, np.float32)[: self.samples - given - len(held)]
            held = concat(held, piece)
            if len(held) > hold:
                yield held[: len(held) - hold]
                given += len(held) - hold
                held = held[len(held) - hold:]
        held = concat(held, silence(self.samples - given - len(held), held))
        yield self._end(held, given)

    def _end(self, tail: np.ndarray, offset: int) -> np.ndarray:
        if self.mode == "cut" or not len(tail):
            self.info = {"mode": self.mode}
            return tail
        start, beat, warning = fade_start(tail, self.rate, self.mode, offset)
        self.info = {"mode": self.mode, "starts_at": round((offset + start) / self.rate, 4),
                     "beat": None if beat is None else round((offset / self.rate) + beat, 4),
                     "fade_seconds": round((len(tail) - start) / self.rate, 4),
                     **({"warning": warning} if warning else {})}
        return fade_out(tail, start)
