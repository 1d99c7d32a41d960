"""The music bed's gain over time under a voice-over: down by ``depth_db`` while speech is present.

Speech is found offline, before the mix, so the bed can already be down when the first syllable
starts: the fall *ends* at each span's start (a look-ahead no live side-chain compressor has),
and the rise starts at each span's end. Gaps too short for the bed to come back and stay up a
while are kept ducked, so it does not pump between sentences.

Ramps are raised cosines in dB: in dB, so the loudness changes evenly through the fade; a raised
cosine, so the change starts and stops without the audible corner of a straight line.

The curve is computed for any run of samples (``start_sample``, ``count``) and is the same
whatever the chunking, so an hour-long track is ducked as it streams.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from cotvtm.music.channels import per_sample

Spans = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Ducking:
    """How the bed gives way to speech (broadcast and advertising voice-over practice).

    depth_db: 14 dB further down under speech: with the bed 4 LU under the voice (``--bed-level``), the
      music sits 18 LU under it while it speaks, inside the 15-20 dB intelligibility guidance asks for.
    attack_s: 0.3 s fall, ending at the onset: no audible jump, and it fits the pause before a sentence.
    release_s: 0.8 s rise, slower than the fall: the music swells back gently, no word's tail is covered.
    hold_s: gaps leaving the bed under 0.5 s at full level stay ducked: no pumping between sentences.
    """

    depth_db: float = 14.0
    attack_s: float = 0.3
    release_s: float = 0.8
    hold_s: float = 0.5

    def merged(self, spans: Spans) -> list[tuple[float, float]]:
        """``spans`` sorted, empty ones dropped, and those whose gap is shorter than
        attack + release + hold joined into one."""
        joined: list[tuple[float, float]] = []
        for a, b in sorted((float(a), float(b)) for a, b in spans if b > a):
            if joined and a - joined[-1][1] < self.attack_s + self.release_s + self.hold_s:
                joined[-1] = (joined[-1][0], max(joined[-1][1], b))
            else:
                joined.append((a, b))
        return joined

    def gain_curve(self, spans: Spans, start_sample: int, count: int, rate: int) -> np.ndarray:
        """float32 linear gain of samples ``start_sample`` .. ``+count`` (sample ``i`` at
        ``i / rate`` s): 1.0 away from speech, ``10 ** (-depth_db / 20)`` during it."""
        t = (start_sample + np.arange(count)) / rate
        weight = np.zeros(count)
        spans = np.array(self.merged(spans)).reshape(-1, 2)
        if count and len(spans):  # only the spans whose ramps reach into these samples
            near = (spans[:, 0] - self.attack_s <= t[-1]) & (spans[:, 1] + self.release_s >= t[0])
            for a, b in spans[near]:
                up, down = _ramp(t - a, self.attack_s), _ramp(b - t, self.release_s)
                weight = np.maximum(weight, np.minimum(up, down))
        shaped = 0.5 - 0.5 * np.cos(np.pi * weight)  # raised cosine: 0 and 1 stay exact
        return (10 ** (-self.depth_db * shaped / 20)).astype(np.float32)


def _ramp(offset: np.ndarray, length: float) -> np.ndarray:
    """0 before ``-length``, rising linearly to 1 at offset 0, 1 after: a step without length."""
    if length <= 0:
        return (offset >= 0).astype(np.float64)
    return np.clip(offset / length + 1, 0.0, 1.0)


def duck(chunks: Iterable[np.ndarray], spans: Spans, rate: int, ducking: Ducking = Ducking()) -> Iterator[np.ndarray]:
    """Channels-last ``chunks`` (``(n,)`` or ``(n, channels)``) of a track that starts at sample
    0, each scaled by its part of the gain curve, one chunk in memory at a time."""
    spans, position = ducking.merged(spans), 0
    for chunk in chunks:
        chunk = np.asarray(chunk, np.float32)
        yield chunk * per_sample(ducking.gain_curve(spans, position, len(chunk), rate), chunk)
        position += len(chunk)


def full_level_spans(spans: Spans, duration: float, ducking: Ducking = Ducking()) -> list[tuple[float, float]]:
    """Where in ``[0, duration]`` the gain is exactly 1.0: the gaps, their ramps excluded;
    where the bed's own level is measured."""
    full, start = [], 0.0
    for a, b in ducking.merged(spans):
        if a - ducking.attack_s > start:
            full.append((start, min(a - ducking.attack_s, duration)))
        start = max(start, b + ducking.release_s)
    if start < duration:
        full.append((start, duration))
    return [(a, b) for a, b in full if b > a]
