"""The music scheduler: a window's music does not depend on how it was fed, free slots go to the
streams with the most windows left, and a stream's failure is its own."""

import asyncio
import re
import zlib

import numpy as np
import pytest

from cotvtm.music.compose import Composer, TrackState
from cotvtm.music.musicgen import EngineBackend, MusicGenBackend, SamplingConfig, WindowMusic
from cotvtm.music.scheduler import Scheduler
from tests.music_helpers import Track, compose, compose_config

SAMPLING = SamplingConfig(guidance_scale=3.0, top_k=50)
SEGMENT = 2  # windows per segment: independent streams hand out a segment's windows at once
ENGINE_LINE = re.compile(r"music    engine: (\d+) steps, (\d+) slot-steps of (\d+) .* in ([\d.]+) s")  # the benches'


@pytest.fixture(scope="module")
def model(tiny_refs):
    return MusicGenBackend(tiny_refs.musicgen).model


def _composer(model, slots: int, mode: str = "continuous") -> Composer:
    backend = EngineBackend(None, sampling=SAMPLING, model=model, slots=slots)
    return Composer(backend, compose_config(mode=mode, prompt_s=1.0, seed=2))


class TrackStream:
    """A track composed through the scheduler the way the stage's streams compose theirs: the
    composer makes its requests, joins its music and hands out what became final."""

    def __init__(self, composer: Composer, key: str, durations: list[float], width: int = 32,
                 unreadable_at: int | None = None, log: list | None = None):
        rng = np.random.default_rng(zlib.crc32(key.encode()))
        self.e_m = rng.standard_normal((len(durations), 4, width)).astype(np.float32)
        self.mask = np.ones((len(durations), 4), np.int64)
        self.composer, self.key, self.durations = composer, key, durations
        self.unreadable_at, self.log = unreadable_at, log
        self.state = TrackState()
        self.music: list[WindowMusic] = []
        self.audio: list[np.ndarray] = []
        self.failed: str | None = None

    @property
    def remaining(self) -> int:
        return len(self.durations) - self.state.window

    def requests(self):
        if self.failed or not self.remaining:
            return []
        first = self.state.window
        if first == self.unreadable_at:
            raise OSError("conditioning unreadable")
        last = first + 1
        if self.composer.cfg.mode == "independent":
            last = min(first - first % SEGMENT + SEGMENT, len(self.durations))
        if self.log is not None:
            self.log.append(self.key)
        return [self.composer.request(self.state, self.e_m[i], self.mask[i], self.durations[i], self.key, i)
                for i in range(first, last)]

    def finished(self, music):
        for window in music:
            self.composer.join(self.state, window, self.durations[self.state.window])
            self.music.append(window)
        self.audio.append(self.composer.take(self.state, last=not self.remaining))

    def fail(self, reason):
        self.failed = reason

    def track(self) -> np.ndarray:
        return np.concatenate(self.audio)


LENGTHS = {"a": [3.0, 2.0, 3.0, 1.5], "b": [2.5], "c": [1.0, 3.0], "d": [2.0, 2.0, 2.0]}


def _streams(composer: Composer) -> list[TrackStream]:
    return [TrackStream(composer, key, durations) for key, durations in LENGTHS.items()]


def _feed(scheduler: Scheduler, *callers: list[TrackStream]) -> None:
    """Each caller's streams fed by its own call, the later calls joining the running engine."""

    async def call(index, streams):
        for _ in range(5 * index):  # a few engine steps later
            await asyncio.sleep(0)
        await scheduler.feed(streams)

    async def all_calls():
        await asyncio.gather(*(call(i, streams) for i, streams in enumerate(callers)))

    asyncio.run(all_calls())


def _same_music(got: TrackStream, want: TrackStream) -> None:
    assert got.failed is None and len(got.music) == len(want.music) == len(want.durations)
    for have, expected in zip(got.music, want.music):
        assert np.array_equal(have.codes, expected.codes) and np.array_equal(have.audio, expected.audio)
    assert np.array_equal(got.track(), want.track())


def test_continuous_feeding_gives_each_window_the_music_its_stream_makes_alone(model, capsys):
    composer = _composer(model, slots=3)
    scheduler = Scheduler(composer.backend)
    together = _streams(composer)
    _feed(scheduler, together[:2], together[2:])
    assert len(ENGINE_LINE.findall(capsys.readouterr().out)) == 1  # both calls fed one run of the engine
    for stream in together:
        [alone] = [s for s in _streams(composer) if s.key == stream.key]
        _feed(scheduler, [alone])
        _same_music(stream, alone)
        assert len(stream.track()) == round(sum(stream.durations) * composer.backend.sample_rate)
    assert not composer.backend.engine.busy


def test_a_free_slot_goes_to_the_stream_with_the_most_windows_left(model):
    composer, log = _composer(model, slots=1), []
    lengths = {"short": [1.0], "long": [1.0, 1.0, 1.0], "mid": [1.0, 1.0]}
    streams = [TrackStream(composer, key, durations, log=log) for key, durations in lengths.items()]
    _feed(Scheduler(composer.backend), streams)
    assert log[0] == "long" and len(log) == 6
    left = {key: len(durations) for key, durations in lengths.items()}
    for key in log:  # one slot: each window asked for is one of the streams with the most left
        assert left[key] == max(left.values())
        left[key] -= 1


def test_a_stream_that_cannot_be_read_or_breaks_the_engine_fails_alone(model):
    """One slot: the stream with the most windows is alone in the engine when its malformed E_m
    breaks it; another stream's conditioning cannot be read at its second window."""
    composer = _composer(model, slots=1)
    broken = TrackStream(composer, "broken", [1.0, 1.0, 1.0], width=16)
    unreadable = TrackStream(composer, "unreadable", [1.0, 1.0], unreadable_at=1)
    good = TrackStream(composer, "good", [2.0])
    scheduler = Scheduler(composer.backend)
    _feed(scheduler, [broken, unreadable, good])
    assert broken.failed.startswith("RuntimeError") and not broken.music
    assert unreadable.failed == "OSError: conditioning unreadable" and len(unreadable.music) == 1
    alone = TrackStream(composer, "good", [2.0])
    _feed(scheduler, [alone])  # the engine, emptied when it broke, goes on as new
    _same_music(good, alone)


@pytest.mark.parametrize("mode", ["continuous", "independent"])
def test_lockstep_gives_the_music_of_continuous_feeding(model, mode, capsys):
    composer = _composer(model, slots=3, mode=mode)
    fed, stepped = _streams(composer), _streams(composer)
    _feed(Scheduler(composer.backend), fed)
    Scheduler(composer.backend).lockstep(stepped)
    assert len(ENGINE_LINE.findall(capsys.readouterr().out)) == 2
    for got, want in zip(stepped, fed):
        _same_music(got, want)
    keys = list(LENGTHS)  # and both are the composition made in memory
    tracks = [Track(s.e_m, s.mask, s.durations) for s in fed]
    for stream, audio in zip(fed, compose(composer.backend, tracks, composer.cfg, keys=keys)):
        assert np.array_equal(stream.track(), audio)


def test_a_failed_lockstep_render_fails_its_streams_and_leaves_the_engine_empty(model):
    composer = _composer(model, slots=2)
    broken, good = TrackStream(composer, "broken", [1.0], width=16), TrackStream(composer, "good", [1.0])
    Scheduler(composer.backend).lockstep([good, broken])
    assert broken.failed.startswith("RuntimeError") and good.failed == broken.failed
    assert not composer.backend.engine.busy
