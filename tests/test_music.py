"""MusicGen from E_m: the oracle invariant, continuation and stitching."""

import numpy as np
import pytest
import torch

from cotvtm.models import load_t5
from cotvtm.music.compose import LIMIT_CEILING, LIMIT_KNEE, Composer, TrackState, crossfade_join, join_streams, limit
from cotvtm.music.musicgen import MusicGenBackend, SamplingConfig, make_backend
from tests.music_helpers import Track, compose, compose_config, step

TEXTS = ["a calm piano piece with soft strings, slow tempo", "energetic rock drums and electric guitar"]


@pytest.fixture(scope="module")
def backend(tiny_refs):
    return MusicGenBackend(tiny_refs.musicgen, sampling=SamplingConfig(guidance_scale=3.0, top_k=50))


@pytest.fixture(scope="module", params=["engine", "generate"])
def any_backend(request, tiny_refs):
    """Composition behaves the same on both decoders."""
    return make_backend(request.param, tiny_refs.musicgen, sampling=SamplingConfig(guidance_scale=3.0, top_k=50),
                        slots=4)


def _t5_states(ref, texts):
    encoder, tokenizer = load_t5(ref)
    tokens = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        return encoder(**tokens).last_hidden_state, tokens.attention_mask


def test_true_t5_embedding_gives_bit_identical_audio_with_cfg(backend, tiny_refs):
    hidden, mask = _t5_states(tiny_refs.t5, TEXTS)
    from_text = backend.generate_from_text(TEXTS, seconds=3.0, seed=7)
    from_states = backend.generate(hidden, mask, seconds=3.0, seed=7)
    assert from_text.shape == from_states.shape and from_text.shape[1] >= 3 * backend.sample_rate
    assert np.array_equal(from_text, from_states)
    assert np.abs(from_text).mean() > 1e-4  # real audio, not zeros


def test_conditioning_matters(backend, tiny_refs):
    hidden, mask = _t5_states(tiny_refs.t5, TEXTS)
    same_seed = backend.generate(hidden, mask, seconds=2.0, seed=1)
    other = backend.generate(torch.flip(hidden, [0]), torch.flip(mask, [0]), seconds=2.0, seed=1)
    assert not np.array_equal(same_seed, other)


def test_continuation_starts_with_the_prompt_and_extends_it(backend, tiny_refs):
    hidden, mask = _t5_states(tiny_refs.t5, TEXTS)
    hop = backend.sample_rate // backend.frame_rate
    prompt = backend.generate(hidden, mask, seconds=2.0, seed=3)[:, : 10 * hop]
    out = backend.generate(hidden, mask, seconds=2.0, prompt=prompt, seed=4)
    assert out.shape[1] >= prompt.shape[1] + 2 * backend.sample_rate
    # the first part is the codec's re-decoding of the prompt: close to it, unlike fresh audio
    fresh = backend.generate(hidden, mask, seconds=2.0, seed=4)
    head = out[:, : prompt.shape[1]]
    assert np.abs(head - prompt).mean() < np.abs(fresh[:, : prompt.shape[1]] - prompt).mean()


def test_crossfade_join_length_and_continuity():
    a, b = np.ones(100, np.float32), np.ones(80, np.float32)
    joined = crossfade_join(a, b, 20)
    assert len(joined) == 160
    assert np.all(joined[:80] == 1) and np.all(joined[100:] == 1)
    assert crossfade_join(np.zeros(0, np.float32), b, 20).tolist() == b.tolist()


@pytest.mark.parametrize("mode", ["continuous", "independent"])
def test_compose_gives_exact_total_duration_per_video(any_backend, mode):
    backend = any_backend
    rng = np.random.default_rng(0)
    durations = [[10.0, 10.0, 5.0], [3.0], [10.0, 0.7]]
    tracks = [Track(rng.standard_normal((len(d), 4, 32)).astype(np.float32), np.ones((len(d), 4)), d)
              for d in durations]
    audio = compose(backend, tracks, compose_config(mode=mode))
    for track, samples in zip(durations, audio):
        assert len(samples) == round(sum(track) * backend.sample_rate)
        assert np.isfinite(samples).all() and np.abs(samples).mean() > 1e-4


def test_limiter_keeps_quiet_samples_and_never_exceeds_the_ceiling():
    x = np.linspace(-3, 3, 2001, dtype=np.float32)
    y = limit(x)
    quiet = np.abs(x) <= LIMIT_KNEE
    assert np.array_equal(y[quiet], x[quiet])
    assert np.abs(y).max() <= LIMIT_CEILING and np.all(np.diff(y) >= 0)  # bounded, order kept


def _windows(count, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, 4, 32)).astype(np.float32), np.ones((count, 4))


@pytest.mark.parametrize("mode", ["continuous", "independent"])
def test_a_track_resumed_from_its_saved_state_is_the_uninterrupted_track(any_backend, mode):
    """Composing 2 windows, saving the state, and going on in a new composer gives the same
    samples, bit for bit, as composing all 4 windows in one go: a resumed video's music is
    continuous."""
    e_m, mask = _windows(4)
    durations = [10.0, 10.0, 10.0, 4.0]
    cfg = compose_config(mode=mode, seed=5)
    backend = any_backend
    [whole] = compose(backend, [Track(e_m, mask, durations)], cfg, keys=["0"])

    first, state = Composer(backend, cfg), TrackState()
    pieces = []
    for i in range(2):
        step(first, [state], e_m[i:i + 1], mask[i:i + 1], [durations[i]], ["0"])
        pieces.append(first.take(state))
    saved = {k: np.array(v) for k, v in state.to_arrays().items()}
    second, state = Composer(backend, cfg), TrackState.from_arrays(saved)
    assert state.window == 2 and state.emitted == sum(len(p) for p in pieces)
    for i in range(2, 4):
        step(second, [state], e_m[i:i + 1], mask[i:i + 1], [durations[i]], ["0"])
        pieces.append(second.take(state, last=i == 3))
    assert np.array_equal(np.concatenate(pieces), whole)
    assert len(whole) == round(34.0 * backend.sample_rate)


def test_a_long_track_splits_into_even_streams_the_earlier_ones_longer():
    cfg = compose_config(streams=4, stream_min_s=300.0)
    assert cfg.stream_ranges(30, 1800.0) == [(0, 8), (8, 16), (16, 23), (23, 30)]
    assert cfg.stream_ranges(5, 700.0) == [(0, 3), (3, 5)]  # two stretches of at least 300 s
    assert cfg.stream_ranges(3, 180.0) == [(0, 3)]  # too short to split
    assert cfg.stream_ranges(2, 1800.0) == [(0, 1), (1, 2)]  # never more streams than segments
    assert compose_config(mode="independent", streams=4).stream_ranges(30, 1800.0) == [(0, 30)]


def test_with_shot_cuts_each_stream_begins_on_a_cut():
    """A 30 min video cut into shots: the streams begin on the segments nearest their even starts
    whose first window starts on a cut (at most half the shortest stream away), never empty."""
    from types import SimpleNamespace

    from cotvtm.pipelines.music import starts_on_cut
    from cotvtm.pipelines.progress import Plan
    from cotvtm.video.windows import plan_shot_windows

    cuts = [float(c) for c in range(37, 1800, 37)]  # a cut every 37 s: 3 to 4 windows a shot
    plan = Plan(SimpleNamespace(duration=1800.0), plan_shot_windows(1800.0, cuts), 6, cuts=cuts)
    on_cut = starts_on_cut(plan)
    spans = compose_config(streams=4, stream_min_s=300.0).stream_ranges(len(plan.segments), 1800.0, on_cut)
    assert len(spans) == 4 and all(first < end for first, end in spans)
    for first, _ in spans[1:]:
        assert plan.segments[first][0].start in cuts
    even = compose_config(streams=4, stream_min_s=300.0).stream_ranges(len(plan.segments), 1800.0)
    assert all(abs(a[0] - b[0]) <= 2 for a, b in zip(spans, even)) and spans != even
    assert starts_on_cut(Plan(plan.info, plan.windows, 6)) is None  # fixed windows: no cuts
    cfg = compose_config(streams=4, stream_min_s=300.0)
    on = [False] * 30
    on[16] = True
    assert cfg.stream_ranges(30, 1800.0, on) == [(0, 8), (8, 16), (16, 23), (23, 30)]  # one cut, in reach of one


def _stream(backend, cfg, e_m, mask, durations, first, end):
    """Windows [first, end) composed as one stream, the way the Music stage starts one."""
    composer = Composer(backend, cfg)
    state = composer.stream_state(first, float(sum(durations[:first])))
    pieces = []
    for i in range(first, end):
        step(composer, [state], e_m[i:i + 1], mask[i:i + 1], [durations[i]], ["0"])
        pieces.append(composer.take(state, last=i == end - 1))
    return np.concatenate(pieces)


def test_streams_joined_make_the_track_exactly_its_length(any_backend):
    """A track made as two streams (windows 0-1 and 2-3) is exactly as long as the track made
    whole; the first stream is the whole track's beginning, sample for sample; the second
    begins a crossfade early, and the join overlaps that crossfade with the first's end."""
    backend, fade = any_backend, round(0.25 * any_backend.sample_rate)
    e_m, mask = _windows(4, seed=3)
    durations = [10.0, 10.0, 10.0, 4.0]
    cfg = compose_config(seed=5)
    [whole] = compose(backend, [Track(e_m, mask, durations)], cfg, keys=["0"])
    one, two = _stream(backend, cfg, e_m, mask, durations, 0, 2), _stream(backend, cfg, e_m, mask, durations, 2, 4)
    assert len(one) == round(20.0 * backend.sample_rate) and len(two) == round(14.0 * backend.sample_rate) + fade
    assert np.array_equal(one[:-fade], whole[:len(one) - fade])
    joined = np.concatenate(list(join_streams([one, two], {1}, fade)))
    assert len(joined) == len(whole) == round(34.0 * backend.sample_rate)
    assert np.array_equal(joined[:len(one) - fade], one[:-fade]) and np.array_equal(joined[len(one):], two[fade:])
    seam = joined[len(one) - fade: len(one)]
    assert np.abs(seam).max() <= LIMIT_CEILING
    assert np.allclose(seam[:1], one[-fade:][:1], atol=1e-6)  # the fade starts on the first stream


def test_working_tail_stays_short_however_long_the_track(any_backend):
    backend = any_backend
    cfg = compose_config()
    composer, state = Composer(backend, cfg), TrackState()
    e_m, mask = _windows(6)
    tails = []
    for i in range(6):
        step(composer, [state], e_m[i:i + 1], mask[i:i + 1], [10.0], ["0"])
        composer.take(state)
        tails.append(len(state.tail))
    assert max(tails) <= round(0.25 * backend.sample_rate)  # the crossfade: the prompt is codes
    assert state.emitted + len(state.tail) == round(60 * backend.sample_rate)


def test_a_continuation_starts_with_the_previous_windows_last_codes(any_backend):
    """The prompt is the previous window's codes: the continuation's first frames are those
    codes, and its audio there is their decoding, close to where the previous window ended."""
    from cotvtm.music.musicgen import MusicRequest

    e_m, mask = _windows(3)
    hop = any_backend.sample_rate // any_backend.frame_rate
    first, fresh = any_backend.render([MusicRequest(e_m[0], mask[0], 3.0, 1), MusicRequest(e_m[2], mask[2], 3.0, 3)])
    prompt = first.codes[:, -10:]
    [going] = any_backend.render([MusicRequest(e_m[1], mask[1], 3.0, 2, prompt=prompt)])
    assert np.array_equal(going.codes[:, :10], prompt) and going.prompt_frames == 10
    assert len(going.audio) >= (10 + 30) * hop
    end = first.audio[len(first.audio) - 10 * hop:]
    assert np.abs(going.audio[: 10 * hop] - end).mean() < np.abs(fresh.audio[: 10 * hop] - end).mean()
