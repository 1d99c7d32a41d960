"""Turn per-window E_m into one continuous track per video, batching across videos.

``continuous`` (default): window i+1 continues window i (MusicGen audio prompt = the
last ``prompt_s`` of the track so far). The continuation re-decodes the prompt, so the
join crossfades the track's tail with that re-decoding: the seam sits on near-identical
audio. Windows of one video are sequential; the same window index of many videos is
generated as one batch.

``independent``: every window is generated on its own (all in parallel) and the
windows are joined with a short crossfade, the paper's behaviour; faster, less
coherent.
"""

from dataclasses import dataclass, field

import numpy as np

MODES = ("continuous", "independent")


@dataclass
class Track:
    """One video's music conditioning and the audio made so far."""

    e_m: np.ndarray  # (windows, L, D)
    mask: np.ndarray  # (windows, L)
    durations: list[float]
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    done: list[np.ndarray] = field(default_factory=list)  # finished audio before ``audio``

    def settle(self, keep: int) -> None:
        """Move all but the last ``keep`` samples out of the working tail, so each join copies
        only the tail: composing W windows costs O(W), not O(W^2)."""
        if len(self.audio) > keep:
            self.done.append(self.audio[: len(self.audio) - keep])
            self.audio = self.audio[len(self.audio) - keep:]

    def finish(self) -> None:
        self.audio = np.concatenate(self.done + [self.audio]) if self.done else self.audio
        self.done = []

    @property
    def length(self) -> int:
        return sum(len(chunk) for chunk in self.done) + len(self.audio)


@dataclass(frozen=True)
class ComposeConfig:
    mode: str = "continuous"
    prompt_s: float = 2.0
    crossfade_s: float = 0.25
    batch_size: int = 8
    seed: int = 0


def crossfade_join(head: np.ndarray, tail: np.ndarray, overlap: int) -> np.ndarray:
    """Concatenate with an equal-power crossfade over ``overlap`` samples."""
    overlap = min(overlap, len(head), len(tail))
    if overlap == 0:
        return np.concatenate([head, tail])
    ramp = np.linspace(0.0, np.pi / 2, overlap, dtype=np.float32)
    mixed = head[-overlap:] * np.cos(ramp) + tail[:overlap] * np.sin(ramp)
    return np.concatenate([head[:-overlap], mixed, tail[overlap:]]).astype(np.float32)


def compose(backend, tracks: list[Track], cfg: ComposeConfig) -> list[np.ndarray]:
    """Fill ``track.audio`` for every track; the result has exactly the summed duration."""
    if cfg.mode == "continuous":
        _continuous(backend, tracks, cfg)
    elif cfg.mode == "independent":
        _independent(backend, tracks, cfg)
    else:
        raise ValueError(f"unknown music mode {cfg.mode!r}; choose one of {MODES}")
    for track in tracks:
        track.audio = master(track.audio)
    return [t.audio for t in tracks]


def master(audio: np.ndarray, peak: float = 0.89) -> np.ndarray:
    """Remove any DC offset and keep peaks below ~-1 dBFS so the AAC/Opus encode never clips."""
    audio = audio - audio.mean() if len(audio) else audio
    top = float(np.abs(audio).max()) if len(audio) else 0.0
    return (audio * (peak / top) if top > peak else audio).astype(np.float32)


def _samples(backend, seconds: float) -> int:
    return int(round(seconds * backend.sample_rate))


def _continuous(backend, tracks: list[Track], cfg: ComposeConfig) -> None:
    hop = backend.sample_rate // backend.frame_rate
    fade = _samples(backend, cfg.crossfade_s)
    for index in range(max(len(t.durations) for t in tracks)):
        active = [t for t in tracks if index < len(t.durations)]
        seconds = max(t.durations[index] for t in active)
        hidden = np.stack([t.e_m[index] for t in active])
        mask = np.stack([t.mask[index] for t in active])
        if index == 0:
            out = backend.generate(hidden, mask, seconds + cfg.crossfade_s, seed=cfg.seed)
            for track, audio in zip(active, out):
                track.audio = audio[: _samples(backend, track.durations[0])]
            continue
        prompt_len = min(_samples(backend, cfg.prompt_s), *(len(t.audio) for t in active)) // hop * hop
        prompts = np.stack([t.audio[len(t.audio) - prompt_len:] for t in active])
        out = backend.generate(hidden, mask, seconds, prompt=prompts, seed=cfg.seed + index)
        for track, audio in zip(active, out):
            target = _samples(backend, sum(track.durations[: index + 1])) - (track.length - len(track.audio))
            track.audio = crossfade_join(track.audio, audio[max(prompt_len - fade, 0):], fade)[:target]
            track.settle(_samples(backend, cfg.prompt_s) + fade)
    for track in tracks:
        track.finish()


def _independent(backend, tracks: list[Track], cfg: ComposeConfig) -> None:
    jobs = [(t, i) for t in tracks for i in range(len(t.durations))]
    pieces: dict[tuple[int, int], np.ndarray] = {}
    for start in range(0, len(jobs), cfg.batch_size):
        chunk = jobs[start: start + cfg.batch_size]
        seconds = max(t.durations[i] for t, i in chunk) + cfg.crossfade_s
        hidden = np.stack([t.e_m[i] for t, i in chunk])
        mask = np.stack([t.mask[i] for t, i in chunk])
        out = backend.generate(hidden, mask, seconds, seed=cfg.seed + start)
        for (track, index), audio in zip(chunk, out):
            pieces[id(track), index] = audio
    fade = _samples(backend, cfg.crossfade_s)
    for track in tracks:
        track.audio, track.done = np.zeros(0, np.float32), []
        for index, seconds in enumerate(track.durations):
            piece = pieces.pop((id(track), index))[: _samples(backend, seconds) + fade]
            track.audio = crossfade_join(track.audio, piece, fade)
            track.settle(fade)
        track.finish()
        track.audio = track.audio[: _samples(backend, sum(track.durations))]
