"""Model references are checked on the driver before any work; a model that fails in its stage
stops the run once; names reach the console escaped."""

import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from s3server import s3_env, s3_server  # noqa: F401  (pytest fixtures)

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
    proc = subprocess.run([sys.executable, "-m", "cotvtm.cli", "soundtrack", str(one_video), str(out),
                           "--cache-dir", str(tmp_path / "models"), f"--{option}", missing],
                          capture_output=True, text=True, timeout=120)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2, said
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"cotvtm: error: --{option} {missing}: no such directory"), line
    assert "Traceback" not in said and "started a local ray" not in said.lower()  # Ray never started
    # refused before the tiny models were built, Ray started or the output touched
    assert not out.exists() and not (tmp_path / "models").exists()


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


def test_a_hub_id_passes_the_check_and_fails_in_one_line_where_it_is_read(tiny_refs, model_cache, one_video,
                                                                           tmp_path, capsys):
    hub_id = "cotvtm-test/no-such-model"
    refs = models.resolve("tiny", cache_dir=model_cache, clip=hub_id)
    assert refs.clip == hub_id and refs.musicgen == tiny_refs.musicgen
    code = cli.main(["soundtrack", str(one_video), str(tmp_path / "out"), "--cache-dir", str(model_cache),
                     "--clip", hub_id])  # offline (conftest): not in the hub's cache
    [line] = capsys.readouterr().err.splitlines()
    assert code == 2 and line.startswith(f"cotvtm: error: cannot read the configuration of --clip {hub_id}: "), line
    assert not (tmp_path / "out").exists()
    with pytest.raises(ModelRefError, match="^--prior owner/prior: no such directory"):
        models.resolve("tiny", cache_dir=model_cache, prior="owner/prior")  # a prior has no hub form


def _tiny_prior(tiny_refs) -> str:
    """The untrained prior the tiny preset builds beside its models (its default is retrieval)."""
    return str(Path(tiny_refs.clip).parent / "prior")


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
        "t5": (_tiny_prior(tiny_refs), "model_type 'cotvtm-prior', not a t5 model"),
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
    store.put_bytes("config.json", Path(_tiny_prior(tiny_refs), "config.json").read_bytes())  # no weights
    with pytest.raises(ModelRefError, match=f"^--prior s3://{bucket}/half/: no model.safetensors.*fetched to"):
        models.resolve("tiny", cache_dir=model_cache, prior=f"s3://{bucket}/half/")


def test_a_prior_that_fails_in_its_actors_stops_the_run_once(tiny_refs, model_cache, one_video, tmp_path, capsys,
                                                             ray_session):
    """Valid JSON of the right model type, but weights that do not fit it: only the Prior actors
    find out. The run stops with one line and exit 2, and no input is blamed for it."""
    bad = _copy(_tiny_prior(tiny_refs), tmp_path / "prior", diff_width=96)
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


@pytest.mark.parametrize("name, shown", [
    ("plain été 日本.mp4", "plain été 日本.mp4"),
    ("a\tb\r\nc.mp4", "a\\tb\\r\\nc.mp4"),
    ("\x1b]0;title\x07x.mp4", "\\x1b]0;title\\x07x.mp4"),
    ("gpj.\u202emp4", "gpj.\\u202emp4"),  # reorders what follows on screen
    ("bad-\udcff.mp4", "bad-\\udcff.mp4"),  # an undecodable byte: printed raw, it would not even encode
])
def test_printable_escapes_control_characters_only(name, shown):
    assert printable(name) == shown
    shown.encode("utf-8")
