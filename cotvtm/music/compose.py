"""Turn per-window E_m into one continuous track per video, a window at a time.

``continuous`` (default): window i+1 continues window i: its MusicGen prompt is the codes of
the last ``prompt_s`` of the track so far (the codes window i was made of, not a re-encoding
of its audio). The continuation's audio starts with the prompt's re-decoding, so the join
crossfades the track's tail with that re-decoding: the seam sits on near-identical audio.
A decoder that continues from audio (``continues == "audio"``) is given the last ``prompt_s``
of the track itself (``context``) instead, keeps it as its window's start, and the join
crossfades the same way on its re-rendering.

``independent``: every window is generated on its own (many windows of one track in one
batch) and joined to the previous one with a short crossfade, the paper's behaviour; less
coherent.

Composition streams: a track's state (``TrackState``) is only the short working tail the
next join needs, and ``Composer.take`` hands out the samples that are final. Memory per
track is therefore independent of its length, and a saved state resumes a track exactly
where it stopped. Audio is channels-last (``decoder.py``): a stereo decoder's two channels are
composed together. The same window index of many tracks is generated as one batch; each
window's random draws come from its own stream (seed, input key, window index), so with the
engine backend a window's music does not depend on the batch it was in.
"""

from dataclasses import dataclass, field

import numpy as np

from cotvtm.music.channels import concat, per_sample
from cotvtm.music.choices import MODES
from cotvtm.music.decoder import MusicRequest, WindowMusic
from cotvtm.rng import stream_id

LIMIT_KNEE = 0.7  # samples below this pass through untouched
LIMIT_CEILING = 0.89  # ~-1 dBFS: the AAC/Opus encode never clips


@dataclass(frozen=True)
class ComposeConfig:
    """How windows become tracks; the caller's settings (the soundtrack job's), given in full."""

    mode: str  # one of MODES
    prompt_s: float
    crossfade_s: float
    seed: int
    streams: int  # continuous mode: most stretches of one track composed side by side
    stream_min_s: float  # the shortest stretch

    def stream_ranges(self, segments: int, duration: float, on_cut: list[bool] | None = None) -> list[tuple[int, int]]:
        """The track's streams as [first, end) segment ranges: as many as its length allows (at
        most ``streams``, each at least ``stream_min_s``), even, the earlier ones taking the
        remainder. Each stream is continuous inside; streams meet with a crossfade.

        ``on_cut[i]``: whether segment ``i`` begins on a shot cut (``--windows shots``). Each
        stream then begins at the segment beginning on a cut nearest its even start, so that the
        crossfade between two independently made stretches falls on a change of picture; a start
        with no such segment within half the shortest stream stays where it was."""
        count = 1 if self.mode != "continuous" else int(min(self.streams, duration // self.stream_min_s, segments))
        count = max(count, 1)
        sizes = [segments // count + (i < segments % count) for i in range(count)]
        edges = [sum(sizes[:i]) for i in range(count + 1)]
        if on_cut is not None:
            edges = _on_cuts(edges, on_cut)
        return list(zip(edges, edges[1:]))


def _on_cuts(edges: list[int], on_cut: list[bool]) -> list[int]:
    """``edges`` with each inner one moved to the nearest segment beginning on a cut, at most half
    the shortest stream away (so that the streams stay about even), in order, none empty."""
    reach = max(1, min(b - a for a, b in zip(edges, edges[1:])) // 2)
    moved = [edges[0]]
    for index, edge in enumerate(edges[1:-1], 1):
        last = edges[-1] - (len(edges) - 1 - index)  # the latest start that leaves each later stream one
        near = [i for i, cut in enumerate(on_cut) if cut and moved[-1] < i <= last and abs(i - edge) <= reach]
        moved.append(min(near, key=lambda i: (abs(i - edge), i)) if near else min(max(edge, moved[-1] + 1), last))
    return moved + [edges[-1]]


@dataclass
class TrackState:
    """Where one track stands: everything before ``tail`` has been handed out as final.

    ``prompt`` holds the codes of the last ``prompt_s`` of music up to a frame boundary, and
    ``lag`` how many samples of the track follow that boundary: the next window's prompt. For a
    decoder that continues from audio, ``context`` holds the track's last ``prompt_s`` instead.
    """

    tail: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # working samples
    emitted: int = 0  # samples already final
    elapsed: float = 0.0  # seconds of windows composed so far
    window: int = 0  # index of the next window
    prompt: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))  # (codebooks, frames)
    lag: int = 0
    context: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # channels-last samples

    def to_arrays(self) -> dict:
        return {"tail": self.tail, "emitted": np.int64(self.emitted), "elapsed": np.float64(self.elapsed),
                "window": np.int64(self.window), "prompt": self.prompt, "lag": np.int64(self.lag),
                "context": self.context}

    @classmethod
    def from_arrays(cls, arrays) -> "TrackState":
        """The state ``to_arrays`` gave; one saved before ``context`` existed has none."""
        context = arrays["context"] if "context" in arrays else np.zeros(0)
        return cls(np.asarray(arrays["tail"], np.float32), int(arrays["emitted"]), float(arrays["elapsed"]),
                   int(arrays["window"]), np.asarray(arrays["prompt"], np.int64), int(arrays["lag"]),
                   np.asarray(context, np.float32))


def crossfade_join(head: np.ndarray, tail: np.ndarray, overlap: int) -> np.ndarray:
    """Concatenate with an equal-power crossfade over ``overlap`` samples (every channel alike)."""
    overlap = min(overlap, len(head), len(tail))
    if overlap == 0:
        return concat(head, tail)
    ramp = per_sample(np.linspace(0.0, np.pi / 2, overlap, dtype=np.float32), head)
    mixed = head[-overlap:] * np.cos(ramp) + tail[:overlap] * np.sin(ramp)
    return np.concatenate([head[:-overlap], mixed, tail[overlap:]]).astype(np.float32)


def limit(audio: np.ndarray) -> np.ndarray:
    """A sample-by-sample soft limiter: untouched below the knee, never above the ceiling.

    It needs no look at the whole track (unlike peak normalisation), so every piece of a
    streamed track is mastered the same way whenever and wherever it is made.
    """
    audio = np.asarray(audio, np.float32)
    level = np.abs(audio)
    span = LIMIT_CEILING - LIMIT_KNEE
    squashed = LIMIT_KNEE + span * np.tanh((level - LIMIT_KNEE) / span)
    return np.where(level > LIMIT_KNEE, np.sign(audio) * squashed, audio).astype(np.float32)


class Composer:
    """A track's next window to ask the decoder for (``request``), and how its music joins the
    track (``join``, ``take``); decoding is the scheduler's (``scheduler.py``)."""

    def __init__(self, backend, cfg: ComposeConfig):
        if cfg.mode not in MODES:
            raise ValueError(f"unknown music mode {cfg.mode!r}; choose one of {MODES}")
        self.backend, self.cfg = backend, cfg
        self.fade = self._samples(cfg.crossfade_s)
        continuing = backend.continues if cfg.mode == "continuous" else False  # False: every window is fresh
        on_codes = bool(continuing) and continuing != "audio"
        self.hop = backend.sample_rate // backend.frame_rate if on_codes else 0
        self.prompt_frames = int(round(cfg.prompt_s * backend.frame_rate)) if on_codes else 0
        self.context_samples = self._samples(cfg.prompt_s) if continuing == "audio" else 0

    def _samples(self, seconds: float) -> int:
        return int(round(seconds * self.backend.sample_rate))

    def stream_state(self, window: int, elapsed: float) -> TrackState:
        """Where a stream that starts at ``window`` (``elapsed`` seconds in) begins: its first
        window is made fresh, a crossfade longer, and kept whole; ``join_streams`` overlaps that
        extra crossfade with the end of the stream before."""
        if window == 0:
            return TrackState()
        return TrackState(emitted=self._samples(elapsed) - self.fade, elapsed=elapsed, window=window)

    def request(self, state: TrackState, hidden, mask, duration: float, key: str,
                number: int | None = None) -> MusicRequest:
        """The track's next window (or, in ``independent`` mode, window ``number``) to make: a
        fresh window is made a crossfade longer; a continuation starts from the prompt (or the
        audio context)."""
        stream = stream_id(self.cfg.seed, key, state.window if number is None else number)
        if self._continues(state):
            return MusicRequest(hidden, mask, duration, stream, prompt=state.prompt)
        if self.context_samples and state.window > 0 and len(state.context):
            return MusicRequest(hidden, mask, duration, stream, context=state.context)
        return MusicRequest(hidden, mask, duration + self.cfg.crossfade_s, stream)

    def _continues(self, state: TrackState) -> bool:
        return self.prompt_frames > 0 and state.window > 0 and state.prompt.shape[1] > 0

    def join(self, state: TrackState, window: WindowMusic, duration: float) -> None:
        """Crossfade the new audio on (a continuation from where the track's tail ends in it),
        cut the track to exactly the time composed so far, and keep the next prompt (or context)."""
        skip = 0
        if window.prompt_frames:
            skip = max(window.prompt_frames * self.hop + state.lag - self.fade, 0)
        elif window.prompt_samples:  # the context ends where the track does
            skip = max(window.prompt_samples - self.fade, 0)
        piece = window.audio[skip:]
        overlap = min(self.fade, len(state.tail), len(piece))
        state.elapsed += duration
        target = self._samples(state.elapsed) - state.emitted
        start = len(state.tail) - overlap  # where the piece's first sample lands in the joined track
        before = state.context[: max(len(state.context) - len(state.tail), 0)]  # the track before the tail
        state.tail = crossfade_join(state.tail, piece, self.fade)[:target]
        state.window += 1
        if self.context_samples:
            state.context = concat(before, state.tail)[-self.context_samples:]
        if self.prompt_frames:
            end = target - start + skip  # the track's end, as a sample index of this window's audio
            frames = min(end // self.hop, window.codes.shape[1])
            state.prompt = np.asarray(window.codes[:, max(frames - self.prompt_frames, 0): frames], np.int64)
            state.lag = end - frames * self.hop

    def take(self, state: TrackState, last: bool = False) -> np.ndarray:
        """The samples that no later window can change (all of them after the last window)."""
        cut = len(state.tail) if last else max(len(state.tail) - self.fade, 0)
        final, state.tail = state.tail[:cut], state.tail[cut:]
        state.emitted += len(final)
        return limit(final)


def join_streams(chunks, starts: set[int], fade: int):
    """Yield a track's saved chunks (one per segment) as one stream of samples: a chunk in
    ``starts`` begins a stream, whose first ``fade`` samples overlap the chunk before."""
    held = None
    for index, chunk in enumerate(chunks):
        if held is not None and index in starts:
            mixed = crossfade_join(held, chunk[:fade], fade)
            chunk = np.concatenate([limit(mixed), chunk[fade:]])
        elif held is not None:
            chunk = np.concatenate([held, chunk])
        held = None
        if index + 1 in starts:
            chunk, held = chunk[:len(chunk) - fade], chunk[len(chunk) - fade:]
        yield chunk
    if held is not None:
        yield held
