"""Composition in memory, for the tests: whole tracks from their windows' E_m, one batch of
windows per step through the decoder's ``render``. The Music stage composes the same way,
stream by stream through the scheduler; these are the reference it is held to."""

from dataclasses import dataclass

import numpy as np

from cotvtm.music.compose import ComposeConfig, Composer, TrackState
from cotvtm.music.decoder import WindowMusic

TEST_COMPOSE = dict(mode="continuous", prompt_s=2.0, crossfade_s=0.25, seed=0, streams=1, stream_min_s=300.0)


def compose_config(**changes) -> ComposeConfig:
    """The tests' composition settings, with ``changes``."""
    return ComposeConfig(**{**TEST_COMPOSE, **changes})


def step(composer: Composer, states: list[TrackState], hidden: np.ndarray, mask: np.ndarray,
         durations: list[float], keys: list[str]) -> list[str]:
    """Add each track's next window (E_m ``hidden[i]``, ``durations[i]`` seconds, input ``keys[i]``
    for its random stream), all rendered together; returns each window's tokens digest. A track
    may appear several times (``independent`` mode): its rows are its next windows, in order."""
    numbers, seen = [], {}
    for state in states:
        numbers.append(state.window + seen.get(id(state), 0))
        seen[id(state)] = seen.get(id(state), 0) + 1
    requests = [composer.request(state, hidden[i], mask[i], durations[i], keys[i], numbers[i])
                for i, state in enumerate(states)]
    music: list[WindowMusic] = composer.backend.render(requests)
    for state, window, duration in zip(states, music, durations):
        composer.join(state, window, duration)
    return [window.digest for window in music]


@dataclass
class Track:
    """One short track composed in memory: its conditioning per window."""

    e_m: np.ndarray  # (windows, L, D)
    mask: np.ndarray  # (windows, L)
    durations: list[float]


def compose(backend, tracks: list[Track], cfg: ComposeConfig, keys: list[str] | None = None) -> list[np.ndarray]:
    """Whole tracks, each exactly its summed duration long: the same window index of every track
    in one step."""
    composer = Composer(backend, cfg)
    states = [TrackState() for _ in tracks]
    pieces: list[list[np.ndarray]] = [[] for _ in tracks]
    for index in range(max(len(t.durations) for t in tracks)):
        rows = [i for i, t in enumerate(tracks) if index < len(t.durations)]
        step(composer, [states[i] for i in rows], np.stack([tracks[i].e_m[index] for i in rows]),
             np.stack([tracks[i].mask[index] for i in rows]), [tracks[i].durations[index] for i in rows],
             [keys[i] if keys else str(i) for i in rows])
        for i in rows:
            pieces[i].append(composer.take(states[i], last=index == len(tracks[i].durations) - 1))
    return [np.concatenate(p) for p in pieces]
