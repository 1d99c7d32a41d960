"""The MusicGen decode engine: generate's tokens when greedy, and a window's music independent of
the windows it shares the engine with when sampling."""

import numpy as np
import pytest
import torch

from cotvtm.music.engine import DecodeEngine, DecodeWindow
from cotvtm.music.musicgen import EngineBackend, MusicGenBackend, MusicRequest, SamplingConfig
from cotvtm.music.scheduler import Scheduler
from cotvtm.rng import CounterNoise, stream_id

GREEDY = SamplingConfig(guidance_scale=3.0, do_sample=False)
TOP_K = SamplingConfig(guidance_scale=3.0, top_k=250)


@pytest.fixture(scope="module")
def reference(tiny_refs):
    return MusicGenBackend(tiny_refs.musicgen, sampling=GREEDY)


def _conditioning(count: int, seed: int = 0, length: int = 4):
    """E_m like the prior's: random states, the last token masked in some rows."""
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal((count, length, 32)).astype(np.float32)
    mask = np.ones((count, length), np.int64)
    mask[::2, -1] = 0
    return hidden, mask


def _requests(count: int, seconds: float = 3.0, prompts=None, seed: int = 0) -> list[MusicRequest]:
    hidden, mask = _conditioning(count, seed)
    return [MusicRequest(hidden[i], mask[i], seconds, stream_id(0, f"v{i}", 0),
                         None if prompts is None else prompts[i]) for i in range(count)]


def test_greedy_engine_tokens_equal_generate_with_and_without_a_prompt(reference, tiny_refs):
    engine = EngineBackend(tiny_refs.musicgen, sampling=GREEDY, slots=4)
    fresh = _requests(3)
    expected, got = reference.render(fresh), engine.render(fresh)
    for want, have in zip(expected, got):
        assert np.array_equal(want.codes, have.codes) and want.codes.shape[1] >= 30
        assert np.array_equal(want.audio, have.audio)
    prompts = [music.codes[:, -12:] for music in expected]  # the same prompt codes for both
    going = _requests(3, seconds=2.0, prompts=prompts, seed=1)
    expected, got = reference.render(going), engine.render(going)
    for want, have, prompt in zip(expected, got, prompts):
        assert np.array_equal(want.codes, have.codes)
        assert np.array_equal(have.codes[:, :12], prompt) and have.prompt_frames == 12
    assert len({music.digest for music in got}) == 3


def _decode(model, slots: int, sampling: SamplingConfig, windows: list[DecodeWindow]) -> dict:
    """Codes by window id, the windows queued by a scheduler into an engine of ``slots`` slots."""
    return Scheduler(EngineBackend(None, sampling=sampling, model=model, slots=slots)).decode(windows)


def _solo(model, window: DecodeWindow, sampling: SamplingConfig) -> np.ndarray:
    return _decode(model, 1, sampling, [window])[window.id]


def _windows(count: int, seconds_steps: int, seed: int = 0) -> list[DecodeWindow]:
    hidden, mask = _conditioning(count, seed)
    return [DecodeWindow(f"w{i}", hidden[i], mask[i], seconds_steps, stream_id(3, f"video {i}", i))
            for i in range(count)]


def test_a_window_admitted_into_a_busy_engine_decodes_as_it_does_alone(reference):
    model = reference.model
    long, late = _windows(2, 250)
    late.new_tokens = 60
    engine = DecodeEngine(model, 4, GREEDY)
    engine.admit(long)
    done = {}
    for step in range(250):
        if step == 137:
            engine.admit(late)
        done.update(engine.step())
    assert set(done) == {"w0", "w1"}
    assert np.array_equal(done["w1"], _solo(model, late, GREEDY))
    assert np.array_equal(done["w0"], _solo(model, long, GREEDY))


def test_a_window_longer_than_the_caches_waits_for_an_idle_engine(reference):
    """Growing the caches moves them, so a longer window is admitted only once the engine is idle;
    a window that fits goes into any free slot."""
    engine = DecodeEngine(reference.model, 2, GREEDY)
    short, fitting = _windows(2, 20)
    [long] = _windows(1, 200, seed=1)
    engine.admit(short)
    assert engine.room([long, fitting]) == 0 and engine.room([fitting, long]) == 1
    while engine.busy:
        engine.step()
    assert engine.room([long, fitting, short]) == 2  # one per free slot


def test_sampled_tokens_do_not_depend_on_the_batch_or_the_step_of_admission(reference):
    """Top-k 250 sampling: a window's tokens are the same alone, in a batch of 8, and admitted at
    step 137 of another window; its audio is the same to float rounding."""
    model = reference.model
    windows = _windows(8, 104)
    target = windows[5]
    alone = _solo(model, target, TOP_K)
    batch = _decode(model, 8, TOP_K, windows)
    assert np.array_equal(batch[target.id], alone)
    assert len({codes.tobytes() for codes in batch.values()}) == 8  # every window has its own draws

    [long] = _windows(1, 250, seed=9)
    engine, late = DecodeEngine(model, 2, TOP_K), None
    engine.admit(long)
    for step in range(250):
        if step == 137:
            engine.admit(target)
        for key, codes in engine.step():
            late = codes if key == target.id else late
    assert np.array_equal(late, alone)

    alone_audio = reference.musicgen.decode([alone])[0]  # EnCodec, as every backend decodes
    batch_audio = reference.musicgen.decode([batch[w.id] for w in windows])[5]
    assert np.array_equal(alone_audio, batch_audio)  # each window is decoded on its own


def test_different_seeds_and_inputs_give_different_music(reference):
    model = reference.model
    [window] = _windows(1, 60)
    other = DecodeWindow("x", window.hidden, window.mask, 60, stream_id(4, "video 0", 0))
    assert not np.array_equal(_solo(model, window, TOP_K), _solo(model, other, TOP_K))


def test_the_prior_noise_of_a_window_does_not_depend_on_its_batch():
    streams = [stream_id(0, f"v{i}", i, "prior") for i in range(6)]
    batch = CounterNoise(streams)
    alone = CounterNoise(streams[3:4])
    for _ in range(3):  # successive draws (the sampler's steps)
        together, single = batch.normal((6, 4, 8)), alone.normal((1, 4, 8))
        assert torch.equal(together[3:4], single)
    z = CounterNoise(list(range(2000))).normal((2000, 64))
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.01  # a standard normal
