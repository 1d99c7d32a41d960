"""Turn per-window E_m into one continuous track per video, a window at a time.

``continuous`` (default): window i+1 continues window i (MusicGen audio prompt = the
last ``prompt_s`` of the track so far). The continuation re-decodes the prompt, so the
join crossfades the track's tail with that re-decoding: the seam sits on near-identical
audio.

``independent``: every window is generated on its own (many windows of one track in one
batch) and joined to the previous one with a short crossfade, the paper's behaviour; less
coherent.

Composition streams: a track's state (``TrackState``) is only the short working tail the
next join needs, and ``Composer.take`` hands out the samples that are final. Memory per
track is therefore independent of its length, and a saved state resumes a track exactly
where it stopped. The same window index of many tracks is generated as one batch.
"""

from dataclasses import dataclass, field

import numpy as np

MODES = ("continuous", "independent")
LIMIT_KNEE = 0.7  # samples below this pass through untouched
LIMIT_CEILING = 0.89  # ~-1 dBFS: the AAC/Opus encode never clips


@dataclass(frozen=True)
class ComposeConfig:
    mode: str = "continuous"
    prompt_s: float = 2.0
    crossfade_s: float = 0.25
    seed: int = 0
    max_batch: int = 32  # rows per MusicGen call (guidance doubles them)


@dataclass
class TrackState:
    """Where one track stands: everything before ``tail`` has been handed out as final."""

    tail: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # working samples
    emitted: int = 0  # samples already final
    elapsed: float = 0.0  # seconds of windows composed so far
    window: int = 0  # index of the next window

    def to_arrays(self) -> dict:
        return {"tail": self.tail, "emitted": np.int64(self.emitted), "elapsed": np.float64(self.elapsed),
                "window": np.int64(self.window)}

    @classmethod
    def from_arrays(cls, arrays) -> "TrackState":
        return cls(np.asarray(arrays["tail"], np.float32), int(arrays["emitted"]), float(arrays["elapsed"]),
                   int(arrays["window"]))


def crossfade_join(head: np.ndarray, tail: np.ndarray, overlap: int) -> np.ndarray:
    """Concatenate with an equal-power crossfade over ``overlap`` samples."""
    overlap = min(overlap, len(head), len(tail))
    if overlap == 0:
        return np.concatenate([head, tail]).astype(np.float32)
    ramp = np.linspace(0.0, np.pi / 2, overlap, dtype=np.float32)
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
    """Composes the next window of a batch of tracks with one MusicGen call per group."""

    def __init__(self, backend, cfg: ComposeConfig):
        if cfg.mode not in MODES:
            raise ValueError(f"unknown music mode {cfg.mode!r}; choose one of {MODES}")
        self.backend, self.cfg = backend, cfg
        self.fade = self._samples(cfg.crossfade_s)
        self.keep = self._samples(cfg.prompt_s) + self.fade if cfg.mode == "continuous" else self.fade

    def _samples(self, seconds: float) -> int:
        return int(round(seconds * self.backend.sample_rate))

    def step(self, states: list[TrackState], hidden: np.ndarray, mask: np.ndarray, durations: list[float]) -> None:
        """Add each track's next window (E_m ``hidden[i]``, ``durations[i]`` seconds).

        In ``independent`` mode a track may appear several times, its windows in order: they
        are generated in one batch and joined in that order.
        """
        fresh = [i for i, s in enumerate(states) if s.window == 0 or self.cfg.mode == "independent"]
        going = [i for i in range(len(states)) if i not in fresh]
        size = self.cfg.max_batch
        for start in range(0, len(fresh), size):
            self._start(fresh[start: start + size], states, hidden, mask, durations)
        for start in range(0, len(going), size):
            self._continue(going[start: start + size], states, hidden, mask, durations)

    def _seed(self, states, rows) -> int:
        """One MusicGen call is seeded with ``seed`` + the lowest window index in it: the same
        batches give the same music, run after run and across a resume."""
        return self.cfg.seed + min(states[i].window for i in rows)

    def _start(self, rows, states, hidden, mask, durations) -> None:
        seconds = max(durations[i] for i in rows) + self.cfg.crossfade_s
        seed = self._seed(states, rows)
        out = self.backend.generate(hidden[rows], mask[rows], seconds, seed=seed)
        for i, audio in zip(rows, out):
            self._join(states[i], audio, durations[i])

    def _continue(self, rows, states, hidden, mask, durations) -> None:
        hop = self.backend.sample_rate // self.backend.frame_rate
        prompt_len = min(self._samples(self.cfg.prompt_s), *(len(states[i].tail) for i in rows)) // hop * hop
        prompts = np.stack([states[i].tail[len(states[i].tail) - prompt_len:] for i in rows])
        seed = self._seed(states, rows)
        out = self.backend.generate(hidden[rows], mask[rows], max(durations[i] for i in rows), prompt=prompts,
                                    seed=seed)
        for i, audio in zip(rows, out):
            self._join(states[i], audio[max(prompt_len - self.fade, 0):], durations[i])

    def _join(self, state: TrackState, audio: np.ndarray, duration: float) -> None:
        """Crossfade the new audio on and cut the track to exactly the time composed so far."""
        state.elapsed += duration
        target = self._samples(state.elapsed) - state.emitted
        state.tail = crossfade_join(state.tail, audio, self.fade)[:target]
        state.window += 1

    def take(self, state: TrackState, last: bool = False) -> np.ndarray:
        """The samples that no later window can change (all of them after the last window)."""
        cut = len(state.tail) if last else max(len(state.tail) - self.keep, 0)
        final, state.tail = state.tail[:cut], state.tail[cut:]
        state.emitted += len(final)
        return limit(final)


@dataclass
class Track:
    """One short track composed in memory: its conditioning per window."""

    e_m: np.ndarray  # (windows, L, D)
    mask: np.ndarray  # (windows, L)
    durations: list[float]


def compose(backend, tracks: list[Track], cfg: ComposeConfig) -> list[np.ndarray]:
    """Whole tracks composed in memory, each exactly its summed duration long: the reference the
    streamed composition (the pipeline's) must match."""
    composer = Composer(backend, cfg)
    states = [TrackState() for _ in tracks]
    pieces: list[list[np.ndarray]] = [[] for _ in tracks]
    for index in range(max(len(t.durations) for t in tracks)):
        rows = [i for i, t in enumerate(tracks) if index < len(t.durations)]
        composer.step([states[i] for i in rows], np.stack([tracks[i].e_m[index] for i in rows]),
                      np.stack([tracks[i].mask[index] for i in rows]), [tracks[i].durations[index] for i in rows])
        for i in rows:
            pieces[i].append(composer.take(states[i], last=index == len(tracks[i].durations) - 1))
    return [np.concatenate(p) for p in pieces]
