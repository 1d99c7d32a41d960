"""``--sync cuts``: the music bent in time so that a beat lands on each shot cut.

``plan`` makes a piecewise-linear map from the music's time to the video's: the music's start
and end stay put, and each cut's nearest beat (``beats.cut_offsets``) is moved onto the cut, the
music between two such anchors stretched or squeezed evenly. A cut is left out, with its reason,
when moving its beat would stretch a neighbouring span by more than ``BOUND``, when its beat
already anchors another cut, or when it would put the music out of order.

``apply`` renders the map one stretch at a time (long stretches in pieces of at most
``PIECE_S``), so that an hour of music streams: each piece's samples, with some context either
side, are time-stretched with their pitch kept (librosa's phase vocoder) and cut to exactly the
output samples the piece covers; a stretch the map leaves at its length is copied through bit
for bit. Around each join the beat is the music's own samples, unstretched, its attack on the
exact sample, and the stretched sides meet them with a short equal-power crossfade.

Audio is channels-last (``channels.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from cotvtm.errors import MediaError
from cotvtm.music.beats import cut_offsets
from cotvtm.music.channels import concat, per_sample, silence

BOUND = 0.04  # the most a span's tempo changes (|ratio - 1|): a few percent goes unnoticed on most music
ON_BEAT_S = 0.005  # a cut this close to its beat is on it: the beat anchors where it is
XFADE_S = 0.01  # a crossfade at a join: long enough for no click, short enough to hide
ATTACK_S = 0.03  # kept unstretched after each join: a drum's attack, landing on the exact sample
N_FFT = 2048  # the vocoder's window (librosa's default)
PRE_ECHO = N_FFT // 2  # samples before a beat that a vocoder's window smears it into
CONTEXT_S = 0.1  # source read either side of a piece, so the vocoder's edges fall outside what is kept
PIECE_S = 30.0  # the longest piece rendered at once (output seconds): bounds the memory a long stretch takes

Reader = Callable[[int, int], np.ndarray]


@dataclass(frozen=True)
class Warp:
    """A piecewise-linear map from music time to video time (seconds): ``anchors`` are
    ``(source, target)`` pairs from ``(0, 0)`` to ``(duration, duration)``; ``skipped`` the cuts
    left unanchored (``cut``, ``beat``, the ``ratio`` anchoring would have needed, ``reason``)."""

    anchors: tuple[tuple[float, float], ...]
    skipped: tuple[dict, ...] = ()
    bound: float = BOUND

    @property
    def ratios(self) -> list[float]:
        """Each stretch's target span over its source span (above 1: the music slows down)."""
        return _ratios(self.anchors)

    @property
    def duration(self) -> float:
        return self.anchors[-1][1]

    def map(self, t):
        """Where music time ``t`` (seconds, a number or an array) lands in the video; times past
        the end map to themselves, as the end does."""
        source, target = zip(*self.anchors)
        mapped = np.where(np.asarray(t) > source[-1], t, np.interp(t, source, target))
        return float(mapped) if np.ndim(mapped) == 0 else mapped

    def describe(self) -> dict:
        """For the sidecar: each stretch's span in the video and its ratio, and the cuts left out."""
        stretches = [{"from": round(a[1], 3), "to": round(b[1], 3), "ratio": round(r, 5)}
                     for a, b, r in zip(self.anchors, self.anchors[1:], self.ratios)]
        return {"bound": self.bound, "stretches": stretches, "skipped": [dict(row) for row in self.skipped]}


def _ratios(anchors) -> list[float]:
    return [(t1 - t0) / (s1 - s0) for (s0, t0), (s1, t1) in zip(anchors, anchors[1:])]


def plan(beats: list[float], cuts: list[float], duration: float, bound: float = BOUND) -> Warp:
    """The warp that puts each cut's nearest beat on the cut, as far as ``bound`` allows: every
    cut that can be is anchored, then, while a stretch is beyond the bound, the cut at its ends
    whose beat is the farther off is left out and the stretches recomputed."""
    skipped: list[dict] = []
    kept: list[dict] = []
    for row in cut_offsets(sorted(cuts), list(beats)):
        on_beat = row["beat"] is not None and abs(row["offset"]) <= ON_BEAT_S
        row["anchor"] = (row["beat"], row["beat"] if on_beat else row["cut"])
        reason = _unanchorable(row, kept, duration)
        if reason:
            skipped.append({"cut": row["cut"], "beat": row["beat"], "ratio": None, "reason": reason})
        else:
            kept.append(row)
    while True:
        anchors = [(0.0, 0.0), *(row["anchor"] for row in kept), (duration, duration)]
        ratios = _ratios(anchors)
        worst = int(np.argmax([abs(r - 1) for r in ratios])) if ratios else 0
        if not ratios or abs(ratios[worst] - 1) <= bound:
            return Warp(tuple(anchors), tuple(sorted(skipped, key=lambda r: r["cut"])), bound)
        ends = [kept[i] for i in (worst - 1, worst) if 0 <= i < len(kept)]  # the stretch's cut ends
        row = max(ends, key=lambda r: abs(r["offset"]))
        kept.remove(row)
        (_, t0), (_, t1) = anchors[worst], anchors[worst + 1]
        skipped.append({"cut": row["cut"], "beat": row["beat"], "ratio": round(ratios[worst], 4),
                        "reason": f"its beat on it would change the tempo by {100 * (ratios[worst] - 1):+.1f}% "
                                  f"between {t0:.2f} s and {t1:.2f} s, beyond the ±{100 * bound:g}% bound"})


def _unanchorable(row: dict, kept: list[dict], duration: float) -> str | None:
    """Why a cut cannot anchor at all, whatever the bound; None when it can."""
    cut, beat = row["cut"], row["beat"]
    if beat is None:
        return "no beats were tracked in the music"
    if not 0 < cut < duration:
        return f"the cut lies outside the music's 0 to {duration:.2f} s"
    if not 0 < beat < duration:
        return "its nearest beat lies on the music's edge"
    last = kept[-1] if kept else None
    if last and last["beat"] == beat:
        return f"its nearest beat ({beat:.3f} s) already anchors the cut at {last['cut']:.3f} s"
    if last and (beat <= last["anchor"][0] or row["anchor"][1] <= last["anchor"][1]):
        return "its beat would move before the previous cut's: the music would go out of order"
    return None


@dataclass(frozen=True)
class _Piece:
    """Output samples ``start`` to ``end`` made from the music from (fractional) sample ``source``
    on, ``rate`` source samples to an output sample; a rate of exactly 1 is a copy."""

    source: float
    start: int
    end: int
    rate: float

    @property
    def copy(self) -> bool:
        return self.rate == 1.0


def _pieces(warp: Warp, sample_rate: int) -> Iterator[_Piece]:
    """The warp's stretches in samples (output exactly ``round(duration * rate)`` long), each cut
    into pieces of at most ``PIECE_S``; a stretch whose spans are equal in samples is a copy."""
    limit = int(PIECE_S * sample_rate)
    for (s0, t0), (s1, t1) in zip(warp.anchors, warp.anchors[1:]):
        source, start, end = round(s0 * sample_rate), round(t0 * sample_rate), round(t1 * sample_rate)
        length = end - start
        if length <= 0:
            continue
        rate = 1.0 if round(s1 * sample_rate) - source == length else (s1 - s0) / (t1 - t0)
        count = math.ceil(length / limit)
        bounds = [start + length * k // count for k in range(count + 1)]
        for a, b in zip(bounds, bounds[1:]):
            yield _Piece(source + (a - start) * rate, a, b, rate)


def apply(warp: Warp, read_segment: Reader, rate: int, channels: int) -> Iterator[np.ndarray]:
    """The bent music, a piece at a time: ``read_segment(start, end)`` gives the music's samples
    ``start`` to ``end`` (float32, ``(n,)`` or ``(n, channels)``; fewer past the music's end, which
    counts as silence). The chunks add up to exactly ``round(warp.duration * rate)`` samples."""
    def read(start: int, end: int) -> np.ndarray:
        return _read(read_segment, start, end, channels)

    held = None
    for piece in _pieces(warp, rate):
        body = _render(piece, read, rate)
        if held is not None:
            _join(held, (piece, body), read, rate)
            yield held[1]
        held = (piece, body)
    if held is not None:
        yield held[1]


def _render(piece: _Piece, read: Reader, rate: int) -> np.ndarray:
    """The piece's output samples: the music's own for a copy, else time-stretched from the music
    read with ``CONTEXT_S`` more either side (the vocoder's edges fall there, and are dropped)."""
    length = piece.end - piece.start
    if piece.copy:
        return read(int(piece.source), int(piece.source) + length)
    import librosa

    context = round(CONTEXT_S * rate)
    first = math.floor(piece.source) - context
    audio = read(first, math.ceil(piece.source + length * piece.rate) + context)
    stretched = librosa.effects.time_stretch(audio.T, rate=piece.rate, n_fft=N_FFT).T  # librosa is channels-first
    offset = round((piece.source - first) / piece.rate)
    out = stretched[offset: offset + length]
    return concat(out, silence(length - len(out), audio))


def _read(read: Reader, start: int, end: int, channels: int) -> np.ndarray:
    """Samples ``start`` to ``end`` exactly, silence before the music's start and past its end."""
    got = np.asarray(read(max(start, 0), end), np.float32) if end > 0 else np.zeros(0, np.float32)
    like = np.zeros((0,) if channels == 1 else (0, channels), np.float32)
    before = silence(min(max(-start, 0), end - start), like)
    return concat(before, got, silence(end - start - len(before) - len(got), like))


def _join(held: tuple[_Piece, np.ndarray], following: tuple[_Piece, np.ndarray], read: Reader, rate: int) -> None:
    """Joins two pieces at the beat the join anchors. Around it the music's own samples: from
    ``PRE_ECHO`` before (where a vocoder smears the beat back to) to ``ATTACK_S`` after, so the
    beat's attack is unstretched and on the exact sample (crossfading two vocoder renditions
    over it would blur it, and partly cancel it where their phases differ); each stretched side
    crossfades to them. A copy's samples are the music's own already, and stay so."""
    (a, before), (b, after) = held, following
    fade, source = round(XFADE_S * rate), int(round(b.source))
    if not a.copy:  # worked backwards from the join, as the following side forwards
        kept = min(PRE_ECHO, len(before))
        n = min(fade, len(before) - kept)
        _splice(before[::-1], read(source - kept - n, source)[::-1], kept)
    if not b.copy:
        kept = min(round(ATTACK_S * rate), len(after))
        n = min(fade, len(after) - kept)
        _splice(after, read(source, source + kept + n), kept)


def _splice(body: np.ndarray, own: np.ndarray, kept: int) -> None:
    """``body`` (a view, changed in place) starts with ``own``'s first ``kept`` samples, then
    crossfades from the rest of ``own`` to itself."""
    n = len(own) - kept
    body[:kept] = own[:kept]
    body[kept:kept + n] = _crossfade(own[kept:], body[kept:kept + n])


def _crossfade(out: np.ndarray, into: np.ndarray) -> np.ndarray:
    """Equal-power: the two sides' phases differ (the vocoder's are its own), so their powers add."""
    x = (np.arange(len(out)) + 0.5) / max(len(out), 1) * (np.pi / 2)
    return out * per_sample(np.cos(x), out) + into * per_sample(np.sin(x), into)


def bend_wav(src_wav: str, dst_wav: str, warp: Warp) -> None:
    """``src_wav`` bent by ``warp`` into ``dst_wav`` (same rate, channels and sample format),
    streamed: never more than a piece of it in memory."""
    import soundfile as sf

    try:
        source = sf.SoundFile(src_wav)
    except (sf.LibsndfileError, OSError) as exc:
        raise MediaError(src_wav, f"cannot read the music: {exc}") from None
    with source:
        def read(start: int, end: int) -> np.ndarray:
            if start >= source.frames:
                return np.zeros(0, np.float32)
            source.seek(start)
            return source.read(end - start, dtype="float32")

        rate, channels = source.samplerate, source.channels
        with sf.SoundFile(dst_wav, "w", rate, channels, subtype=source.subtype, format="WAV") as out:
            for chunk in apply(warp, read, rate, channels):
                out.write(chunk)
