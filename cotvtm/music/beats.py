"""The music's beats, tracked by librosa over a whole track that streams past piece by piece
(``BeatGrid``) without ever being held in memory, or over a stretch held whole (``track_beats``).

``BeatGrid`` computes an onset strength incrementally, as ``librosa.onset.onset_strength`` does
(the log-mel spectrogram's positive first difference averaged over the mel bands; here without
its 80 dB floor, which depends on the loudest frame of the whole track): each piece's frames lie
on one grid over the whole track (non-centred frames, pieces aligned to the hop and overlapping
by one FFT window). librosa's dynamic-programming beat tracker then runs over the whole envelope,
a few kilobytes a minute, with the tempo estimated block by block (``_tempo``).

Beats are information (the sidecar, the report, a beat ending), never a reason to lose an output:
audio the tracker cannot use (a NaN or an infinity, which librosa refuses) or a tracker that
fails gives no beats and a one-line ``warning``, and the chunks still pass through untouched.
A stereo track's beats are tracked on its mixdown; its chunks pass through in stereo.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from cotvtm.music.channels import mixdown

HOP, N_FFT, N_MELS = 512, 2048, 64
TEMPO_BLOCK_S = 240.0  # the stretch of music each tempo estimate reads


def warm_up() -> None:
    """Load what the first tracking would (librosa's spectrogram code, the beat tracker's compiled
    numba functions: a few seconds), so that a Mux actor does it while it waits for its first video."""
    track_beats(np.zeros(N_FFT * 4, np.float32), 8000)


def track_beats(audio: np.ndarray, sample_rate: int, start: int = 0) -> tuple[np.ndarray, str | None]:
    """Beat times (seconds) of ``audio`` held whole, on the same grid as ``BeatGrid``, and the
    grid's warning when none could be tracked (its times counted from sample ``start`` back)."""
    grid = BeatGrid([audio], sample_rate, start)  # a stereo ``audio`` is mixed down
    for _ in grid:
        pass
    beats = np.asarray(grid.beats(), np.float64)
    return beats, grid.warning


class BeatGrid:
    """Passes a track's chunks through unchanged; ``beats()``, once they are consumed, is the
    track's beat times in seconds (empty, with ``warning`` saying why, when they cannot be tracked)."""

    def __init__(self, chunks: Iterable[np.ndarray], sample_rate: int, start: int = 0):
        """``start``: the track's sample the first chunk begins at (for the warning's times)."""
        self.chunks, self.rate = chunks, sample_rate
        self.envelope: list[np.ndarray] = []
        self.last: np.ndarray | None = None  # the previous frame's log-mel spectrum
        self.warning: str | None = None  # why there are no beats, once tracking gave up
        self.start = start  # the sample the next piece starts at (pieces lie on one grid of hops)

    def __iter__(self) -> Iterator[np.ndarray]:
        carry = np.zeros(0, np.float32)
        for chunk in self.chunks:
            yield chunk
            if self.warning is not None:
                continue  # given up: the rest only passes through
            carry = np.concatenate([carry, mixdown(chunk)])
            frames = (len(carry) - N_FFT) // HOP + 1 if len(carry) >= N_FFT else 0
            if frames > 0:
                self._add_safely(carry[: (frames - 1) * HOP + N_FFT])
                carry = carry[frames * HOP:]
                self.start += frames * HOP

    def _add_safely(self, piece: np.ndarray) -> None:
        if not np.isfinite(piece).all():
            at = (self.start + int(np.argmin(np.isfinite(piece)))) / self.rate
            self._give_up(f"the music holds a NaN or infinite sample at {at:.2f} s")
            return
        try:
            self._add(piece)
        except Exception as exc:  # a tracker failure costs the beats, never the output
            self._give_up(f"{type(exc).__name__}: {exc}")

    def _give_up(self, why: str) -> None:
        self.warning = f"no beats tracked: {why}"[:300]
        self.envelope = []

    def _add(self, piece: np.ndarray) -> None:
        import librosa

        mel = librosa.feature.melspectrogram(y=piece, sr=self.rate, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS,
                                             center=False)
        db = librosa.power_to_db(mel, ref=1.0, top_db=None)
        before = db[:, :1] if self.last is None else self.last
        self.envelope.append(np.maximum(0.0, np.diff(np.concatenate([before, db], axis=1), axis=1)).mean(axis=0))
        self.last = db[:, -1:]

    def beats(self) -> list[float]:
        """Beat times in seconds from the track's start. Frame ``t`` spans samples ``t * HOP`` to
        ``t * HOP + N_FFT``; its onset strength rising means the sound began in its last hop, so
        the time of frame ``t`` is its end less half a hop."""
        import librosa

        if not self.envelope:
            return []
        envelope = np.concatenate(self.envelope)
        try:
            frames = librosa.beat.beat_track(onset_envelope=envelope, sr=self.rate, hop_length=HOP,
                                             bpm=self._tempo(envelope))[1]
        except Exception as exc:  # as in _add_safely
            self._give_up(f"{type(exc).__name__}: {exc}")
            return []
        return [round((int(t) * HOP + N_FFT - HOP / 2) / self.rate, 3) for t in frames]

    def _tempo(self, envelope: np.ndarray) -> float:
        """The track's tempo: librosa's estimate over each ``TEMPO_BLOCK_S`` of the envelope, their
        median. librosa's own estimate holds a tempogram of the whole envelope (hundreds of bytes
        a frame: gigabytes for hours of music); a block's is bounded, and a track shorter than a
        block gets exactly librosa's own tempo."""
        import librosa

        size = int(TEMPO_BLOCK_S * self.rate / HOP)
        blocks = [envelope[i: i + size] for i in range(0, len(envelope), size)]
        blocks = [b for b in blocks if len(b) * HOP >= 8 * self.rate] or blocks[:1]  # drop a short last one
        return float(np.median([librosa.feature.tempo(onset_envelope=b, sr=self.rate, hop_length=HOP)[0]
                                for b in blocks]))


def cut_offsets(cuts: list[float], beats: list[float]) -> list[dict]:
    """For each shot cut, the nearest beat and the cut's offset from it (seconds, + after)."""
    if not beats:
        return [{"cut": cut, "beat": None, "offset": None} for cut in cuts]
    grid = np.asarray(beats)
    rows = []
    for cut in cuts:
        beat = float(grid[np.abs(grid - cut).argmin()])
        rows.append({"cut": cut, "beat": beat, "offset": round(cut - beat, 3)})
    return rows
