"""`python -m jobs.evaluate` end to end on a small ffmpeg-made paired set with tiny models,
plus the report and the LLM-teacher baselines on their own."""

import csv
import json
import os
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from cotvtm.eval.external import file_name
from cotvtm.errors import CotvtmError
from cotvtm.eval.settings import METHODS, SECTIONS, configure
from cotvtm.eval.methods import describe_music
from cotvtm.eval.report import Results, markdown
from cotvtm.teacher.settings import EndpointConfig
from cotvtm.video.samples import make_audio, make_video
from openai_server import FakeOpenAI

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    d = tmp_path_factory.mktemp("paired")
    make_video(d / "counter.mp4", 3, source="testsrc2", audio=True)  # 2 windows of 2 s; own audio = reference
    make_video(d / "fractal.mp4", 2, source="mandelbrot")
    make_audio(d / "fractal.m4a", 2)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(d / "noise.png")
    make_audio(d / "noise.m4a", 3)
    rows = [{"id": "counter", "visual": "counter.mp4", "audio": "counter.mp4", "caption": "a bright test pattern"},
            {"id": "fractal", "visual": "fractal.mp4", "audio": "fractal.m4a"},
            {"id": "noise", "visual": "noise.png", "audio": "noise.m4a"}]
    (d / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d / "pairs.jsonl"


def _evaluate(*args, timeout=300):
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "jobs.evaluate", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


ITEMS = ["counter#0", "counter#1", "fractal", "noise"]


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory):
    """Audio "another system" made for the test items, in mixed formats and lengths."""
    d = tmp_path_factory.mktemp("elsewhere")
    formats = ((".wav", "pcm_s16le"), (".flac", "flac"), (".mp3", "libmp3lame"), (".m4a", "aac"))
    for ident, (ext, codec), seconds in zip(ITEMS, formats, (2.5, 1.0, 2.0, 4.0)):
        make_audio(d / f"{file_name(ident)}{ext}", seconds, codec=codec)
    return d


@pytest.fixture(scope="module")
def run(paired, tmp_path_factory, model_cache, tiny_refs, elsewhere):
    out = tmp_path_factory.mktemp("evaluation")
    proc = _evaluate(paired, out, "--cache-dir", model_cache, "--window-seconds", 2, "--frames-per-window", 2,
                     "--external", f"vidmuse={elsewhere}")
    return proc, out


def test_the_command_writes_the_full_table_for_every_method(run):
    proc, out = run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    table = (out / "results.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert [r.split(" | ")[0][2:].rstrip(" †") for r in rows] == [*METHODS, "vidmuse (external)", "ground truth"]
    for header in ("FD ↓", "FAD ↓", "KL softmax ↓", "KL sigmoid ↓", "IB ↑", "EMS ↓", "P@10 ↑", "mapping s/item ↓",
                   "mapping peak MB ↓", "MusicGen s/item ↓"):
        assert header in table
    assert "†" not in table  # the tiny priors were distilled first, not random
    assert "tiny preset" in table and "only 4 candidates" in table
    with open(out / "results.csv", newline="") as handle:
        records = list(csv.DictReader(handle))
    assert [r["method"] for r in records] == [*METHODS, "vidmuse", "ground truth"]
    for record in records[:-1]:
        for key in ("fd", "fad", "kl_softmax", "kl_sigmoid", "ib", "ems", "p_at_k"):
            assert np.isfinite(float(record[key])), (record["method"], key)
        assert float(record["fd"]) >= 0
    for record in records[:-2]:
        assert float(record["decode_s"]) > 0 and np.isfinite(float(record["map_s"]))
    assert (records[-2]["map_s"], records[-2]["decode_s"]) == ("", "")  # external: no timing
    assert "made outside the project" in records[-2]["notes"]
    assert "bank: scene_bank.jsonl (480 captions)" in records[METHODS.index("retrieval")]["notes"]
    assert records[-1]["fd"] == "" and records[-1]["ib"] != ""


def test_plots_are_valid_pngs(run):
    _, out = run
    for name in ("metrics.png", "tradeoff.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG)
        with Image.open(out / name) as image:
            image.verify()
        with Image.open(out / name) as image:
            assert image.size[0] > 400 and image.size[1] > 200


def test_generated_audio_prompts_and_priors_are_kept(run):
    _, out = run
    for method in METHODS:
        assert sorted(p.stem for p in (out / "audio" / method).glob("*.wav")) == sorted(map(file_name, ITEMS))
    texts = [json.loads(line) for line in (out / "texts.jsonl").read_text().splitlines()]
    assert {t["method"] for t in texts} == {"caption2music", "cot2music", "llm2music"}
    assert all(t["text"] for t in texts)
    for variant in ("full", "mlp_mlp", "no_rationale"):
        config = json.loads((out / "priors" / variant / "config.json").read_text())
        assert config["trained"] is True and config["variant"] == variant
    summary = json.loads((out / "results.json").read_text())
    assert summary["k"] == 10 and len(summary["rows"]) == len(METHODS) + 2


def test_bad_input_is_one_line_and_exit_status_2(tmp_path, paired):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "visual": "missing.mp4", "audio": "missing.m4a"}) + "\n")
    proc = _evaluate(bad, tmp_path / "out", timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "bad.jsonl:1: file not found" in proc.stderr
    proc = _evaluate(paired, tmp_path / "out", "--preset", "paper", "--method", "cot-vtm", "--method", "mlp_mlp",
                     timeout=60)
    assert proc.returncode == 2 and "--prior-full, --prior-mlp-mlp" in proc.stderr


def test_an_external_folder_missing_an_item_is_named_in_one_line(tmp_path, paired, elsewhere):
    partial = tmp_path / "partial"
    (partial / "sub").mkdir(parents=True)
    for path in elsewhere.iterdir():
        (partial / ("sub" if path.name.startswith("noise") else "") / path.name).write_bytes(path.read_bytes())
    proc = _evaluate(paired, tmp_path / "out", "--window-seconds", 2, "--external", f"codi={partial}", timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0
    assert (f"--external codi={partial}: no audio for test item 'noise': expected {partial}/noise.wav, .flac, "
            ".mp3, .ogg, .opus, .m4a or .aac (subfolders are not searched)") in proc.stderr
    (partial / "sub" / "noise.m4a").rename(partial / "noise.m4a")
    (partial / "noise.wav").write_bytes((partial / "counter#0.wav").read_bytes())
    proc = _evaluate(paired, tmp_path / "out", "--window-seconds", 2, "--external", f"codi={partial}", timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0
    assert (f"--external codi={partial}: 2 files for test item 'noise' ({partial}/noise.m4a, {partial}/noise.wav): "
            "keep one") in proc.stderr
    proc = _evaluate(paired, tmp_path / "out", "--external", "codi", timeout=60)
    assert proc.returncode == 2 and "expected NAME=DIR" in proc.stderr


def test_markdown_marks_direction_best_values_and_untrained_priors():
    rows = [{"method": "cot-vtm", "fd": 1.0, "ib": 0.3, "notes": ["untrained prior"]},
            {"method": "llm2music", "fd": 2.0, "ib": 0.2, "notes": ["teacher: offline rules"]},
            {"method": "ground truth", "ib": 0.9, "notes": []}]
    text = markdown(Results(rows, notes=["a note"]))
    assert "| cot-vtm † | **1** |" in text and "| llm2music | 2 |" in text
    assert "**0.3**" in text and "**0.9**" not in text  # the ground truth is not a contender
    assert "† untrained prior" in text and "- llm2music: teacher: offline rules" in text and "- a note" in text


def test_cot_and_direct_baselines_through_an_llm_endpoint():
    with FakeOpenAI() as server:
        endpoint = EndpointConfig(teacher_model="fake-model", teacher_url=server.base_url,
                                  teacher_key_env="COTVTM_TEST_KEY", teacher_retries=0, teacher_repair_attempts=0)
        texts, notes = describe_music(["A kite.", "#400 A field."], cot=False, endpoint=endpoint)
        assert texts == ["Gentle ambient music for: A kite.", "#400 A field."]  # a failed call falls back
        assert "1 of 2 teacher calls failed (first: HTTP 400" in notes[0]
        texts, notes = describe_music(["A kite."], cot=True, endpoint=endpoint)
        assert texts[0] and notes == [] and [e.kind for e in server.log][-1] == "cot"
    offline, _ = describe_music(["A calm lake at dawn."], cot=True, endpoint=None)
    assert "piece" in offline[0]


def _parsed(*argv: str):
    """What ``cotvtm evaluate ARGV`` configures, and no run."""
    from cotvtm.commands import evaluate
    from cotvtm.options import given, parser

    sub = parser("cotvtm", "the command line").add_subparsers(dest="command")
    evaluate.register(sub)
    args = sub.choices["evaluate"].parse_args(list(argv))
    return configure(**given(args, *(section[1] for section in SECTIONS)))


def test_the_cli_options_make_the_config_the_api_makes():
    cfg = _parsed("set.jsonl", "out", "--method", "cot-vtm", "--method", "retrieval", "--method", "cot-vtm",
                  "--prior-full", "p", "--fd", "cnn14:x", "--clip", "c", "--window-seconds", "2", "--no-audio",
                  "--external", "vidmuse=dir", "--device", "cpu")
    assert cfg.methods == ("cot-vtm", "retrieval") and cfg.window_s == 2.0 and not cfg.save_audio
    assert cfg.priors == {"full": "p"} and cfg.eval_overrides == {"fd": "cnn14:x"}
    assert cfg.model_overrides == {"clip": "c"}
    assert cfg.external_folders == {"vidmuse": "dir"} and cfg.endpoint is None and cfg.train_tiny_priors
    assert cfg == configure(testset="set.jsonl", out="out", methods=("cot-vtm", "retrieval"), prior_full="p",
                            fd="cnn14:x", clip="c", window_s=2.0, save_audio=False, external=("vidmuse=dir",),
                            device="cpu")
    assert _parsed("set.jsonl", "out", "--device", "cpu").methods == METHODS


def test_the_teacher_endpoint_options_are_the_shared_ones_old_spellings_warn():
    cfg = _parsed("set.jsonl", "out", "--teacher-url", "http://127.0.0.1:9/v1", "--teacher-model", "m", "--device",
                  "cpu")
    assert (cfg.endpoint.teacher_model, cfg.endpoint.url) == ("m", "http://127.0.0.1:9/v1")
    with pytest.warns(FutureWarning) as caught:
        old = _parsed("set.jsonl", "out", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--api-key-env", "K",
                      "--device", "cpu")
    assert [str(w.message).split(";")[0] for w in caught] == [
        "--base-url is renamed --teacher-url", "--model is renamed --teacher-model",
        "--api-key-env is renamed --teacher-key-env"]
    assert old.endpoint == replace(cfg.endpoint, teacher_key_env="K")
    assert _parsed("s", "o", "--teacher-key-env", "K", "--device", "cpu").endpoint is None  # no model: offline


@pytest.mark.parametrize("argv, message", [
    (["--teacher-url", "http://127.0.0.1:9/v1"], "--teacher-url needs --teacher-model"),
    (["--external", "codi"], "--external: expected NAME=DIR"),
    (["--external", "a=x", "--external", "a=y"], "each NAME once"),
    (["--external", "retrieval=x"], "one of the project's own rows"),
    (["--window-seconds", "0"], "--window-seconds must be positive"),
    (["--distractors", "-1"], "--distractors must not be negative"),
    (["--k", "0"], "--k must be positive"),
])
def test_bad_option_values_are_refused_with_their_flag(argv, message):
    with pytest.raises(CotvtmError, match=re.escape(message)):
        _parsed("set.jsonl", "out", "--device", "cpu", *argv)
