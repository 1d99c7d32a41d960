"""Styles files and banks are parsed line by line within declared limits: a style is one line, a
quote that never closes is an error on its line, sizes, JSON depth and a style's T5 tokens are
bounded; a bad file stops the run (exit 2, one line) before Ray starts. Each actor keeps a
bounded number of styles' states, and the engine's caches grow only to the styles in use."""

import json
import os
import subprocess
import sys
import unicodedata

import numpy as np
import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import AutoTokenizer

from cotvtm.errors import CotvtmError
from cotvtm.jsonl import MAX_JSON_DEPTH, TextError, json_objects, loads
from cotvtm.music.musicgen import EngineBackend, MusicRequest, SamplingConfig
from cotvtm.music.style import MAX_STYLE_TOKENS, StyleCache, steer, style_fault, token_bound
from cotvtm.prior.bank import MAX_BANK_BYTES, MAX_BANK_LINE_CHARS, BankError, read_bank
from cotvtm.music.style_file import MAX_LINE_CHARS, MAX_STYLES_BYTES, read_styles

ENTRY = {"id": "a", "caption": "a quiet lake", "description": "soft piano"}


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _styles(tmp_path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return str(tmp_path / name)


def test_an_unclosed_quote_is_an_error_on_its_line_not_a_style_swallowing_the_lines_after_it(tmp_path):
    text = 'key,style\na.mp4,lo-fi\nb.mp4,"bright, upbeat\nc.mp4,dark ambient\nd.mp4,brass\n'
    with pytest.raises(CotvtmError, match=r"s\.csv: line 3: a quote opens and never closes"):
        read_styles(_styles(tmp_path, "s.csv", text))
    closed_below = 'key,style\na.mp4,"bright\nupbeat"\n'  # a quoted line break: CSV allows it, a style does not
    with pytest.raises(CotvtmError, match="line 2: a quote opens and never closes"):
        read_styles(_styles(tmp_path, "b.csv", closed_below))
    for line_break in ("\n", "\r", "\u2028", "\x85"):
        line = json.dumps({"key": "a.mp4", "style": f"bright{line_break}upbeat"})
        with pytest.raises(CotvtmError, match="line 2: the style holds a line break"):
            read_styles(_styles(tmp_path, "s.jsonl", '{"key": "z.mp4", "style": "x"}\n' + line + "\n"))
    with pytest.raises(CotvtmError, match="line 2: a carriage return inside the line"):
        read_styles(_styles(tmp_path, "r.csv", "key,style\na.mp4,bright\rb.mp4,dark\n"))
    ok = 'key,style\r\na.mp4,"bright, ""upbeat"""\r\n'  # CRLF line ends, a quote inside a quoted style
    assert read_styles(_styles(tmp_path, "ok.csv", ok)) == {"a.mp4": 'bright, "upbeat"'}


def test_a_200_kb_field_and_a_file_over_the_limit_are_refused_by_size(tmp_path):
    """A line holds a key (a path) and a style: MAX_LINE_CHARS; csv's own field limit (128 KB)
    is never reached, and the file is refused by its size before it is read."""
    field = "x" * 200_000
    for name, text in (("big.csv", f'key,style\na.mp4,"{field}"\n'),
                       ("big.jsonl", json.dumps({"key": "a.mp4", "style": field}) + "\n")):
        with pytest.raises(CotvtmError, match=rf"line \d: 2000\d\d characters, over the limit of {MAX_LINE_CHARS}"):
            read_styles(_styles(tmp_path, name, text))
    huge = tmp_path / "huge.csv"
    with open(huge, "wb") as handle:
        handle.truncate(MAX_STYLES_BYTES + 1)  # sparse: nothing is written, and nothing must be read
    with pytest.raises(CotvtmError, match=f"huge.csv: {MAX_STYLES_BYTES + 1} bytes or more, over the limit of "
                                          f"{MAX_STYLES_BYTES} bytes"):
        read_styles(str(huge))
    os.mkfifo(tmp_path / "fifo.csv")  # opening it for reading would wait for a writer
    with pytest.raises(CotvtmError, match="fifo.csv: not a regular file"):
        read_styles(str(tmp_path / "fifo.csv"))
    (tmp_path / "bad.csv").write_bytes(b"key,style\na.mp4,ok\nb.mp4,\xff\n")
    with pytest.raises(CotvtmError, match="bad.csv: line 3: not UTF-8 text"):
        read_styles(str(tmp_path / "bad.csv"))


def test_nesting_is_bounded_before_parsing_and_never_raises_recursion_error(tmp_path):
    with pytest.raises(TextError, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
        loads(_nested(100_000))
    deepest = json.dumps({"key": "a.mp4", "style": "x", "m": json.loads(_nested(MAX_JSON_DEPTH - 1))})
    assert loads(deepest)["style"] == "x"  # the object and 31 lists: exactly the limit
    with pytest.raises(TextError, match="line 7: JSON nested deeper"):
        loads(deepest.replace("[]", "[[]]"), 7)
    brackets_in_text = json.dumps({"key": "a[" * 2000, "style": "\\\"{" * 2000})  # inside strings: no depth
    assert loads(brackets_in_text)["key"] == "a[" * 2000
    deep = json.dumps({"key": "a.mp4", "style": "x"})[:-1] + ', "m": ' + _nested(4000) + "}"  # within the line limit
    with pytest.raises(CotvtmError, match=f"s.jsonl: line 1: JSON nested deeper than {MAX_JSON_DEPTH} levels"):
        read_styles(_styles(tmp_path, "s.jsonl", deep + "\n"))
    (tmp_path / "m.jsonl").write_text('{"id": "a"}\n' + _nested(100_000) + "\n")  # a manifest: no line limit
    with pytest.raises(CotvtmError, match="m.jsonl line 2: JSON nested deeper"):
        list(json_objects(tmp_path / "m.jsonl", lambda n: f"m.jsonl line {n}"))
    with pytest.raises(TextError, match="line 3: not usable JSON"):
        loads("1" * 5000, 3)  # valid JSON that Python refuses to hold: not a traceback either


def test_a_bank_is_bounded_in_size_line_and_depth(tmp_path):
    bank = tmp_path / "bank.jsonl"
    good = json.dumps(ENTRY)
    for text, says in (
            (good + "\n" + json.dumps({**ENTRY, "meta": json.loads(_nested(100))}) + "\n",
             f"line 2: JSON nested deeper than {MAX_JSON_DEPTH} levels"),
            (good + "\n" + json.dumps({**ENTRY, "description": "x" * 200_000}) + "\n",
             f"line 2: 2000\\d\\d characters, over the limit of {MAX_BANK_LINE_CHARS}"),
            (good + "\n" + _nested(100_000) + "\n",
             f"line 2: 200000 characters, over the limit of {MAX_BANK_LINE_CHARS}")):
        bank.write_text(text)
        with pytest.raises(BankError, match=says):
            read_bank(bank)
    with open(bank, "wb") as handle:
        handle.truncate(MAX_BANK_BYTES + 1)
    with pytest.raises(BankError, match=f"over the limit of {MAX_BANK_BYTES} bytes"):
        read_bank(bank)
    bank.write_text(json.dumps({**ENTRY, "description": "a slow\u2028waltz"}, ensure_ascii=False) + "\n")
    assert read_bank(bank)[0].description == "a slow\u2028waltz"  # a JSON string may hold U+2028


def test_a_style_is_limited_to_its_t5_tokens_counted_without_a_tokenizer(tmp_path):
    assert style_fault("x" * (MAX_STYLE_TOKENS - 2)) is None
    assert "may take 129 T5 tokens, over the limit of 128" in style_fault("x" * (MAX_STYLE_TOKENS - 1))
    assert token_bound("\ufdfa") == 18 + 2  # one character that NFKC makes 18
    assert style_fault("\ufdfa" * 8) is not None and style_fault("\ufdfa" * 7) is None  # 146, 128
    text = "key,style\na.mp4,lo-fi\nb.mp4," + "a " * 500 + "\n"  # 1000 characters: 501 tokens in T5
    with pytest.raises(CotvtmError, match="line 3: the style may take 1001 T5 tokens, over the limit of 128"):
        read_styles(_styles(tmp_path, "s.csv", text))


def test_the_bound_never_undercounts_a_t5_tokenizer(tiny_refs):
    """token_bound is at least the tokens of T5's tokenizer (the tiny one: T5Tokenizer over a
    word vocabulary) and of the worst T5-like tokenizer: NFKC, then one piece per character,
    which it meets exactly, on every character that NFKC or NFKD expands and on ASCII."""
    chars = [chr(c) for c in range(sys.maxunicode + 1)
             if not 0xD800 <= c < 0xE000 and (c < 128 or len(unicodedata.normalize("NFKD", chr(c))) > 1)]
    texts = [c + " " + c for c in chars] + ["warm acoustic guitar, no drums", "a " * 60]
    pieces = sorted({p for text in texts for p in unicodedata.normalize("NFKC", text)} | {"▁"})
    worst = Tokenizer(models.Unigram([("<unk>", 0.0)] + [(p, -1.0) for p in pieces], unk_id=0))
    worst.normalizer = normalizers.NFKC()
    worst.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace()])
    counts = [len(found.ids) + 1 for found in worst.encode_batch(texts)]  # + the end token T5 appends
    tiny = AutoTokenizer.from_pretrained(tiny_refs.t5)(texts)["input_ids"]
    bounds = [token_bound(text) for text in texts]
    assert all(n <= bound for n, bound in zip(counts, bounds))
    assert all(len(ids) <= bound for ids, bound in zip(tiny, bounds))
    assert min(bound - n for n, bound in zip(counts, bounds)) == 0  # met: as tight as it can be without a vocabulary


@pytest.fixture(scope="module")
def engine(tiny_refs):
    return EngineBackend(tiny_refs.musicgen, sampling=SamplingConfig(guidance_scale=3.0, top_k=50), slots=2)


def test_the_decoder_refuses_a_style_over_the_limit_by_its_own_tokenizer(engine):
    assert engine.encode_text("a " * (MAX_STYLE_TOKENS - 1)).mask.shape == (MAX_STYLE_TOKENS,)
    with pytest.raises(ValueError, match=f"takes {MAX_STYLE_TOKENS + 1} T5 tokens, over the limit"):
        engine.encode_text("a " * MAX_STYLE_TOKENS)


def test_the_style_cache_keeps_the_most_recent_styles_only(engine):
    encoded = []

    def encode(text):
        encoded.append(text)
        return engine.encode_text(text)

    cache = StyleCache(size=3)
    for text in ("one", "two", "three", "one", "four", "five", "one", "two"):
        cache.get(text, encode)
        assert len(cache.states) <= 3
    assert encoded == ["one", "two", "three", "four", "five", "two"]  # "one" kept by use; "two" left, came back
    assert list(cache.states) == ["five", "one", "two"]
    again = engine.encode_text("two")
    assert np.array_equal(cache.get("two", encode).states, again.states) and len(encoded) == 6


def test_the_engines_text_cache_grows_to_the_longest_style_in_use_not_the_limit(engine):
    width = engine.model.config.text_encoder.d_model
    e_m, mask = np.zeros((10, width), np.float32), np.ones(10, np.int64)
    for text in ("warm guitar", "warm acoustic guitar, slow, brushed drums, a little tape hiss"):
        style = engine.encode_text(text)
        engine.render([MusicRequest(*steer(e_m, mask, style, 1.0), 0.2, stream=1)])
        assert engine.engine.runner.cache.text == 10 + len(style.mask) < 10 + MAX_STYLE_TOKENS


@pytest.mark.parametrize("option, name, text, says", [
    ("--styles", "s.csv", 'key,style\na.mp4,lo-fi\nb.mp4,"bright, upbeat\nc.mp4,dark\n',
     "line 3: a quote opens and never closes (a style is one line)"),
    ("--styles", "s.jsonl", '{"key": "a.mp4", "style": "x", "m": ' + _nested(4000) + "}\n",
     f"line 1: JSON nested deeper than {MAX_JSON_DEPTH} levels"),
    ("--bank", "bank.jsonl", json.dumps(ENTRY) + "\n" + _nested(100_000) + "\n",
     f"line 2: 200000 characters, over the limit of {MAX_BANK_LINE_CHARS} for a line")])
def test_the_cli_stops_with_one_line_before_ray_starts(tmp_path, option, name, text, says):
    """RAY_ADDRESS names a port where no Ray listens: a run that got as far as Ray would fail
    there instead, with another message."""
    (tmp_path / "in").mkdir()
    path = _styles(tmp_path, name, text)
    out = tmp_path / "out"
    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:9"}
    proc = subprocess.run([sys.executable, "-m", "cotvtm.cli", "soundtrack", str(tmp_path / "in"), str(out),
                           option, path], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [f"cotvtm: error: {option} {path}: {says}"], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and not out.exists()
