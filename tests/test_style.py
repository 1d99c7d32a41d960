"""Steering the music with a style text: its T5 states join E_m in the decoder's conditioning;
``--styles`` maps inputs to styles, and a file that cannot be used stops the run naming its line."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, T5EncoderModel

from cotvtm.errors import CotvtmError
from cotvtm.music.musicgen import EngineBackend, MusicRequest, SamplingConfig
from cotvtm.music.style import steer
from cotvtm.music.style_file import read_styles


@pytest.fixture(scope="module")
def engine(tiny_refs):
    return EngineBackend(tiny_refs.musicgen, sampling=SamplingConfig(guidance_scale=3.0, top_k=50), slots=4)


def _e_m(width: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    mask = np.ones(10, np.int64)
    mask[7:] = 0
    return rng.standard_normal((10, width)).astype(np.float32), mask


def test_the_conditioning_holds_the_styles_t5_states_and_mask(engine, tiny_refs):
    """The style's states are those of the run's T5 (computed here with transformers directly),
    scaled by the weight, after E_m; the masks are joined the same way."""
    e_m, mask = _e_m(engine.model.config.text_encoder.d_model)
    style = engine.encode_text("warm acoustic guitar, no drums")
    tokenizer, t5 = AutoTokenizer.from_pretrained(tiny_refs.t5), T5EncoderModel.from_pretrained(tiny_refs.t5)
    tokens = tokenizer(["warm acoustic guitar, no drums"], return_tensors="pt")
    with torch.no_grad():
        expected = t5(**tokens).last_hidden_state[0].numpy()
    hidden, joined = steer(e_m, mask, style, 0.5)
    assert hidden.shape == (10 + len(expected), e_m.shape[1])
    assert np.array_equal(hidden[:10], e_m) and np.allclose(hidden[10:], 0.5 * expected, atol=1e-6)
    assert np.array_equal(joined, np.concatenate([mask, tokens["attention_mask"][0].numpy()]))
    assert steer(e_m, mask, None, 0.5) == (e_m, mask)  # no style: E_m as it is


def test_another_style_gives_other_tokens_from_the_same_draws(engine):
    e_m, mask = _e_m(engine.model.config.text_encoder.d_model)
    windows = [MusicRequest(*steer(e_m, mask, engine.encode_text(text), 1.0), 2.0, stream=11)
               for text in ("warm acoustic guitar", "punchy electronic drums", "warm acoustic guitar")]
    first, second, again = engine.render(windows)
    assert np.array_equal(first.codes, again.codes)  # same style, same stream: same music
    assert not np.array_equal(first.codes, second.codes)


def test_a_styles_file_in_csv_or_jsonl(tmp_path):
    (tmp_path / "s.csv").write_text('key,style\na.mp4,"bright, upbeat"\n\nsub/b.mov,dark ambient\n')
    assert read_styles(str(tmp_path / "s.csv")) == {"a.mp4": "bright, upbeat", "sub/b.mov": "dark ambient"}
    (tmp_path / "s.jsonl").write_text('{"key": "a.mp4", "style": "lo-fi"}\n\n{"key": "b.mp4", "style": "brass"}\n')
    assert read_styles(str(tmp_path / "s.jsonl")) == {"a.mp4": "lo-fi", "b.mp4": "brass"}
    for name, text, says in (
            ("h.csv", "file,text\na.mp4,x\n", "line 1: the header must be key,style"),
            ("f.csv", "key,style\na.mp4,x\nb.mp4,bright, upbeat\n", "line 3: 3 fields, expected 2"),
            ("e.csv", "key,style\na.mp4,   \n", "line 2: the key and the style must both be given"),
            ("d.jsonl", '{"key": "a.mp4", "style": "x"}\n{"key": "a.mp4", "style": "y"}\n',
             "line 2: a.mp4 has a style already"),
            ("j.jsonl", '{"key": "a.mp4", "style": "x"}\n\n{"key": "b.mp4", style: 1}\n', "line 3: not valid JSON"),
            ("t.jsonl", '{"key": "a.mp4", "style": 3}\n', "line 1: expected an object"),
            ("s.txt", "a.mp4 x\n", "name a .csv")):
        (tmp_path / name).write_text(text)
        with pytest.raises(CotvtmError, match=says):
            read_styles(str(tmp_path / name))


def test_a_bad_styles_file_stops_the_run_before_any_work(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "styles.jsonl").write_text('{"key": "a.mp4", "style": "x"}\n{"key": "b.mp4"}\n')
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "cotvtm.cli", "soundtrack", str(tmp_path / "in"), str(out),
                           "--styles", str(tmp_path / "styles.jsonl")], capture_output=True, text=True, timeout=120)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2, said
    assert f"--styles {tmp_path / 'styles.jsonl'}: line 2: expected an object" in said
    assert "Traceback" not in said and not out.exists()
