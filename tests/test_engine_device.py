"""The decode engine's readiness for a GPU, proved on the CPU: a half-precision decoder, no read
from the device while windows are admitted and stepped, a step that compiles as one graph, buffers
that never move (a CUDA graph replays on their addresses), and logits that do not depend on the
other windows when every step runs over all slots."""

import copy

import numpy as np
import pytest
import torch

from cotvtm.music.musicgen_layers import StaticDecoder
from cotvtm.music.engine import DecodeEngine, DecodeWindow
from cotvtm.music.musicgen import EngineBackend, MusicGenBackend, MusicRequest, SamplingConfig
from cotvtm.music.scheduler import Scheduler
from cotvtm.rng import stream_id

GREEDY = SamplingConfig(guidance_scale=3.0, do_sample=False)
TOP_K = SamplingConfig(guidance_scale=3.0, top_k=250)


@pytest.fixture(scope="module")
def model(tiny_refs):
    return MusicGenBackend(tiny_refs.musicgen, sampling=GREEDY).model


def _windows(count: int, steps: int, seed: int = 0, prompt_frames: int = 0) -> list[DecodeWindow]:
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal((count, 4, 32)).astype(np.float32)
    mask = np.ones((count, 4), np.int64)
    mask[::2, -1] = 0
    prompts = [rng.integers(0, 16, (4, prompt_frames)) if prompt_frames else None for _ in range(count)]
    return [DecodeWindow(f"w{seed}.{i}", hidden[i], mask[i], steps, stream_id(seed, f"v{i}", i), prompts[i])
            for i in range(count)]


def test_a_float16_decoder_runs_the_engine_and_its_greedy_tokens_agree_with_generate_in_float16(tiny_refs):
    reference = MusicGenBackend(tiny_refs.musicgen, sampling=GREEDY, dtype="float16")
    engine = EngineBackend(tiny_refs.musicgen, sampling=GREEDY, slots=4, dtype="float16")
    decoder = engine.model.decoder
    assert next(decoder.parameters()).dtype == torch.float16
    assert next(engine.model.text_encoder.parameters()).dtype == torch.float32  # T5 and EnCodec stay float32
    assert next(engine.model.audio_encoder.parameters()).dtype == torch.float32
    rng = np.random.default_rng(0)
    requests = [MusicRequest(rng.standard_normal((4, 32)).astype(np.float32), np.ones(4, np.int64), 2.0,
                             stream_id(0, f"v{i}", 0)) for i in range(3)]
    expected, got = reference.render(requests), engine.render(requests)
    for want, have in zip(expected, got):  # ties within float16's rounding may fall either way (below)
        assert want.codes.shape == have.codes.shape and np.mean(want.codes == have.codes) > 0.9
        assert have.audio.dtype == np.float32 and np.isfinite(have.audio).all()
    assert engine.describe()["dtype"] == "float16"


def test_admission_and_steps_read_nothing_back_from_the_device(model):
    """On the meta device a tensor has no values: reading one (``item``, ``min`` over a tensor,
    ``nonzero``, a copy to the host) raises. Windows admitted alone, several at once with prompts,
    and stepped there, before any finishes, therefore never wait for a GPU."""
    meta = copy.deepcopy(model).to("meta")
    for full in (True, False):
        engine = DecodeEngine(meta, 4, TOP_K, device="meta", full=full)
        engine.admit(*_windows(2, 60, seed=1, prompt_frames=12), *_windows(2, 60, seed=2))
        for _ in range(40):
            assert engine.step() == []
        assert len(engine.busy) == 4


def test_the_step_compiles_as_one_graph(model):
    """What a CUDA graph needs of the step, checked by dynamo: one graph, no break to Python."""
    engine = DecodeEngine(model, 4, TOP_K)
    engine.admit(*_windows(2, 60, prompt_frames=8))
    runner = engine.runner
    with torch.inference_mode():
        explained = torch._dynamo.explain(runner._step)(*runner.bucket(4, 64))
    assert explained.graph_break_count == 0 and explained.graph_count == 1, explained.break_reasons
    torch._dynamo.reset()


def test_the_buffers_a_step_uses_never_move(model):
    backend = EngineBackend(None, sampling=TOP_K, model=model, slots=4, full=False)
    engine = backend.engine
    windows = _windows(2, 70, seed=5) + _windows(6, 30, prompt_frames=10)
    engine.admit(windows[0])  # the longest first: the caches are sized once (growing them moves them)
    pointers = {name: t.data_ptr() for name, t in engine.runner.buffers().items()}
    assert len(pointers) > 10
    done = Scheduler(backend).decode(windows[1:])  # the rest queued, admitted as slots free
    assert len(done) == 8
    assert {name: t.data_ptr() for name, t in engine.runner.buffers().items()} == pointers


def _target_scores(engine: DecodeEngine, slot: int, steps: int) -> list[torch.Tensor]:
    """The guided scores of ``slot``'s next token at each of ``steps`` steps."""
    seen = []
    for _ in range(steps):
        busy = engine.busy
        with torch.inference_mode():
            scores = engine.runner.scores(*engine.runner.bucket(busy[-1] + 1, max(engine.length[s] for s in busy)))
        seen.append(scores[slot].clone())
        engine.step()
    return seen


def test_with_every_step_over_all_slots_a_windows_logits_are_bit_equal_alone_and_with_seven_others(model):
    """With ``full`` the step's matrix products have one shape whatever is busy, so the logits
    of a window are the same bits alone and beside 7 windows at other positions (the CPU's
    kernels, like cuBLAS's, round differently for another number of rows)."""
    [target] = _windows(1, 40, seed=7, prompt_frames=12)
    alone = DecodeEngine(model, 8, TOP_K)
    alone.admit(target)
    expected = _target_scores(alone, 0, 30)

    crowded = DecodeEngine(model, 8, TOP_K)
    crowded.admit(*_windows(7, 150, seed=8, prompt_frames=5))
    for _ in range(90):  # the others' caches are longer than the target's
        crowded.step()
    [slot] = crowded.admit(target)
    assert slot == 7
    got = _target_scores(crowded, slot, 30)
    assert all(torch.equal(a, b) for a, b in zip(expected, got))

    busy = DecodeEngine(model, 8, TOP_K, full=False)  # steps over the busy slots only: other shapes
    busy.admit(target)
    assert busy.runner.bucket(1, 20) == (1, 64) and crowded.runner.bucket(1, 20) == (8, 64)


@pytest.mark.parametrize("dtype,tolerance", [("float32", 1e-4), ("float16", 0.05)])
def test_the_engines_logits_match_transformers_own_forward(tiny_refs, dtype, tolerance):
    """Greedy tokens are only as equal as rounding lets them be: a tie within half precision's
    rounding may fall either way (in float16 even transformers' own fused attention in the engine
    would pick other tokens than ``generate`` at some ties), so the check is on the scores."""
    from cotvtm.music.reference import compare

    backend = MusicGenBackend(tiny_refs.musicgen, sampling=GREEDY, dtype=dtype)
    for window in _windows(1, 120, seed=3, prompt_frames=10) + _windows(1, 120, seed=4):
        found = compare(backend.model, DecodeEngine(backend.model, 4, GREEDY), window, GREEDY.guidance_scale)
        assert found["max_abs_diff"] < tolerance, found
        assert found["clear_differ"] == 0 and found["clear"] > 0.9 * found["choices"], found


def test_windows_admitted_together_share_one_prefill_and_keep_generates_tokens(tiny_refs, monkeypatch):
    """With steps over the busy slots only, windows admitted at once are prefilled in one
    forward (prompts of several lengths, and a window without one): greedy tokens still equal
    transformers' ``generate``."""
    reference = MusicGenBackend(tiny_refs.musicgen, sampling=GREEDY)
    engine = EngineBackend(tiny_refs.musicgen, sampling=GREEDY, slots=4, full=False)
    rng = np.random.default_rng(11)
    requests = [MusicRequest(rng.standard_normal((4, 32)).astype(np.float32), np.ones(4, np.int64), 1.5,
                             stream_id(0, f"p{i}", 0), rng.integers(0, 16, (4, frames)) if frames else None)
                for i, frames in enumerate((12, 7, 0, 12))]
    prefills = []
    forward = StaticDecoder.forward
    monkeypatch.setattr(StaticDecoder, "forward", lambda self, rows, *args: (
        prefills.append(len(rows)) if not isinstance(rows, slice) else None, forward(self, rows, *args))[1])
    got = engine.render(requests)
    assert prefills == [3 * 2]  # the three prompted windows' two rows each, in one forward
    for request, have in zip(requests, got):
        [want] = reference.render([request])
        assert np.array_equal(want.codes, have.codes)
