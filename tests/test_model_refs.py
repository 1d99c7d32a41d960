"""Model references are checked on the driver before any work; a model that fails in its stage
stops the run once; names reach the console escaped."""

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from s3server import s3_env, s3_server  # noqa: F401  (pytest fixtures)

import cotvtm
from cotvtm import cli, models
from cotvtm.errors import ModelRefError, printable
from cotvtm.storage import open_store
from cotvtm.video.samples import make_video

OPTIONS = ["prior", "musicgen", "clip", "t5", "rationale"]


@pytest.fixture(scope="module")
def one_video(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("in")
    make_video(folder / "a.mp4", duration=2, size="64x48", fps=4)
    return folder


@pytest.mark.parametrize("option", OPTIONS)
def test_a_missing_model_path_stops_the_cli_before_any_work(option, one_video, tmp_path):
    missing = f"/nonexistent/{option}-{uuid.uuid4().hex[:6]}"
    out = tmp_path / "out"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "cotvtm.cli", "soundtrack", str(one_video), str(out),
                           "--cache-dir", str(tmp_path / "models"), f"--{option}", missing],
                          capture_output=True, text=True, timeout=120)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2, said
    assert time.monotonic() - started < 30, "the check must come before the tiny models, the inputs and Ray"
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"cotvtm: error: --{option} {missing}: no such directory"), line
    assert "Traceback" not in said and "Ray" not in said
    assert not (out / "manifest.jsonl").exists() and not (tmp_path / "models").exists()


@pytest.mark.parametrize("ref, reason", [
    ("./distilled", "no such directory"),
    ("~/no-such-model-dir", "no such directory"),
    ("distilled", "no such directory"),  # a bare name is a folder, not a hub id
    ("models\\clip", "no such directory"),
    ("a/b/c", "no such directory"),
    ("gs://bucket/clip", "unsupported location"),
])
def test_what_looks_like_a_path_must_exist(ref, reason, tmp_path):
    with pytest.raises(ModelRefError, match=f"^--clip {re.escape(ref)}: {reason}"):
        models.resolve("tiny", cache_dir=tmp_path, clip=ref)
    assert not any(tmp_path.iterdir())  # refused before the tiny preset was built


def test_a_hub_id_passes_and_a_prior_is_never_one(tiny_refs, model_cache):
    refs = models.resolve("tiny", cache_dir=model_cache, clip="openai/clip-vit-base-patch32")
    assert refs.clip == "openai/clip-vit-base-patch32" and refs.musicgen == tiny_refs.musicgen
    with pytest.raises(ModelRefError, match="^--prior owner/prior: no such directory"):
        models.resolve("tiny", cache_dir=model_cache, prior="owner/prior")


def _copy(src: str, dst: Path, **config) -> Path:
    shutil.copytree(src, dst)
    if config:
        data = json.loads((dst / "config.json").read_text())
        (dst / "config.json").write_text(json.dumps({**data, **config}))
    return dst


def test_a_directory_must_hold_what_its_loader_needs(tiny_refs, model_cache, tmp_path):
    no_weights = _copy(tiny_refs.musicgen, tmp_path / "mg")
    (no_weights / "model.safetensors").unlink()
    broken = _copy(tiny_refs.clip, tmp_path / "clip")
    (broken / "config.json").write_text('{"model_type": "clip", ')
    cases = {
        "musicgen": (no_weights, "no weights"),
        "clip": (broken, "config.json is not valid JSON"),
        "t5": (Path(tiny_refs.prior), "model_type 'cotvtm-prior', not a t5 model"),
        "prior": (Path(tiny_refs.clip), "model_type 'clip', not a cotvtm prior"),
    }
    for option, (ref, reason) in cases.items():
        with pytest.raises(ModelRefError) as refused:
            models.resolve("tiny", cache_dir=model_cache, **{option: str(ref)})
        assert str(refused.value).startswith(f"--{option} {ref}") and reason in str(refused.value), refused.value
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelRefError, match="not a directory"):
        models.resolve("tiny", cache_dir=model_cache, prior=str(tmp_path / "file"))


def test_an_s3_model_reference_is_checked_after_it_is_fetched(s3_env, tiny_refs, model_cache):
    bucket = s3_env.make_bucket()
    with pytest.raises(ModelRefError, match=f"^--prior s3://{bucket}/none/: no model files"):
        models.resolve("tiny", cache_dir=model_cache, prior=f"s3://{bucket}/none/")
    store = open_store(f"s3://{bucket}/half/")
    store.put_bytes("config.json", Path(tiny_refs.prior, "config.json").read_bytes())  # no weights
    with pytest.raises(ModelRefError, match=f"^--prior s3://{bucket}/half/: no model.safetensors.*fetched to"):
        models.resolve("tiny", cache_dir=model_cache, prior=f"s3://{bucket}/half/")


def test_a_prior_that_fails_in_its_actors_stops_the_run_once(tiny_refs, model_cache, one_video, tmp_path, capsys,
                                                             ray_session):
    """Valid JSON of the right model type, but weights that do not fit it: only the Prior actors
    find out. The run stops with one line and exit 2, and no input is blamed for it."""
    bad = _copy(tiny_refs.prior, tmp_path / "prior", diff_width=96)
    out = tmp_path / "out"
    code = cli.main(["soundtrack", str(one_video), str(out), "--cache-dir", str(model_cache), "--prior", str(bad)])
    said = capsys.readouterr()
    assert code == 2, said.out + said.err
    [line] = [line for line in said.err.splitlines() if line.startswith("cotvtm: error:")]
    assert line.startswith(f"cotvtm: error: conditioning stopped: the Prior stage could not start with --prior "
                           f"{bad}: RuntimeError: Error(s) in loading state_dict for TwoStagePrior"), line
    assert "\x1b" not in line and "ActorDiedError" not in line
    assert "error    a.mp4" not in said.out and " succeeded, " not in said.out
    manifest = out / "manifest.jsonl"
    assert not manifest.exists() or not manifest.read_text().strip()


def test_names_reach_the_console_escaped_and_the_manifest_as_they_are(model_cache, tmp_path, ray_session):
    name = "two\nlines \x1b[31mred\x1b[0m \u00e9t\u00e9.mp4"
    (tmp_path / "in").mkdir()
    make_video(tmp_path / "in" / name, duration=2, size="64x48", fps=4)
    (tmp_path / "in" / "notes\r\n.mp4").write_text("not frames\n")
    lines = []
    summary = cotvtm.soundtrack(tmp_path / "in", tmp_path / "out", cache_dir=model_cache, echo=lines.append,
                                mode="independent")
    assert (summary.ok, summary.failed) == (1, 1)
    assert not any(ch in line for line in lines for ch in "\n\r\x1b")
    shown = "two\\nlines \\x1b[31mred\\x1b[0m \u00e9t\u00e9.mp4"
    assert printable(name) == shown
    assert f"prepared {shown}" in lines and any(line.startswith(f"ok       {shown} -> ") for line in lines)
    assert any(line.startswith("error    notes\\r\\n.mp4: decode: ") for line in lines), lines
    rows = {row["key"]: row for row in map(json.loads, (tmp_path / "out" / "manifest.jsonl").read_text().splitlines())}
    assert rows[name]["status"] == "ok" and Path(rows[name]["output"]).exists()
    assert rows["notes\r\n.mp4"]["status"] == "error"
