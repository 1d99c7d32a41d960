"""End to end: a folder of good and bad files through the Ray pipeline, as a user runs it."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from cotvtm.prior.bank import SHIPPED, read_bank
from cotvtm.settings import ModelChoice, Resources, SoundtrackConfig
from cotvtm.pipelines.runner import run
from cotvtm.settings import Access
from cotvtm.video.samples import make_audio, make_video
from helpers import ffprobe as _ffprobe
from helpers import signing_credentials

pytestmark = pytest.mark.slow
GOOD = ["long counter.mp4", "it's rotated.mov", "sub/short.webm"]
BAD = {
    "empty.mp4": "empty file",
    "notes.mp4": "not a media file",
    "truncated.mp4": "not a media file",
    "tone.m4a": "no video stream",
    "gone.mp4": "file not found",
}


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("library")
    make_video(root / GOOD[0], duration=12, audio=True)  # two windows, the last 2 s
    make_video(root / GOOD[1], duration=3, source="mandelbrot", rotate=90)
    (root / "sub").mkdir()
    make_video(root / GOOD[2], duration=4, source="smptebars", codec="libvpx-vp9", extra_args=("-b:v", "200k"))
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.mp4").write_text("these are not frames\n")
    whole = make_video(tmp_path_factory.mktemp("whole") / "whole.mp4", duration=6).read_bytes()
    (root / "truncated.mp4").write_bytes(whole[: len(whole) // 3])  # moov atom at the end: cut off
    make_audio(root / "tone.m4a", duration=2)
    os.symlink(root / "missing-target.mp4", root / "gone.mp4")
    (root / "README.txt").write_text("not media: ignored\n")
    return root


def _stream(info: dict, kind: str) -> dict:
    return next(s for s in info["streams"] if s["codec_type"] == kind)


def _duration(stream: dict) -> float:
    """Matroska/WebM keep per-stream durations in a tag (HH:MM:SS.fraction)."""
    if "duration" in stream:
        return float(stream["duration"])
    h, m, sec = stream["tags"]["DURATION"].split(":")
    return int(h) * 3600 + int(m) * 60 + float(sec)


def _audio_rms(path) -> float:
    with av.open(str(path)) as container:
        samples = [f.to_ndarray().ravel() for f in container.decode(audio=0)]
    return float(np.sqrt(np.mean(np.concatenate(samples) ** 2)))


@pytest.fixture(scope="module")
def cli_run(library, tmp_path_factory, ray_session, model_cache):
    """The job as `ray job submit` runs it: a subprocess that joins the running Ray."""
    out = tmp_path_factory.mktemp("out")
    env = dict(os.environ, RAY_ADDRESS=ray_session, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "jobs.soundtrack", str(library), str(out),
                           "--cache-dir", str(model_cache)],
                          capture_output=True, text=True, env=env, timeout=600)
    return proc, out


def test_exit_status_and_summary_say_what_happened(cli_run):
    proc, _ = cli_run
    assert proc.returncode == 1, proc.stdout + proc.stderr  # finished, some inputs failed
    assert f"{len(GOOD)} succeeded, {len(BAD)} failed, 0 skipped, 1 ignored (1 no media extension); " \
           f"{len(GOOD)} videos soundtracked, " in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_the_console_has_the_job_s_lines_not_ray_s(cli_run):
    """In a pipe: no Ray Data progress block or plan, no core worker false alarm; the summary
    says how much of the run was start-up."""
    proc, _ = cli_run
    shown = proc.stdout + proc.stderr
    for noise in ("logging_progress", "core_worker.cc", "Execution plan", "Started a local Ray", "\x1b["):
        assert noise not in shown, noise
    assert proc.stdout.splitlines()[0].startswith("cotvtm soundtrack: checking the settings and models, then, if there is work, joining")
    assert re.search(r"of media in \d+ s, \d+ s of it start-up \(\d+\.\dx real time; \d+\.\dx after start-up\)",
                     proc.stdout), proc.stdout


def test_progress_lines_name_each_input_in_both_passes(cli_run):
    proc, _ = cli_run
    lines = proc.stdout.splitlines()
    assert f"pass 1/2: music conditioning for {len(GOOD) + len(BAD)} inputs (0 resumed)" in lines
    assert f"pass 2/2: music and mux for {len(GOOD)} inputs" in lines  # failed ones stop after pass 1
    for key in GOOD:
        assert f"prepared {key}" in lines and any(line.startswith(f"ok       {key} -> ") for line in lines)
    for key in BAD:
        assert any(line.startswith(f"error    {key}: decode: ") for line in lines), key


def test_one_manifest_row_per_input_with_specific_reasons(cli_run):
    _, out = cli_run
    rows = {r["key"]: r for r in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}
    assert set(rows) == set(GOOD) | set(BAD) | {"README.txt"}
    assert (rows["README.txt"]["status"], rows["README.txt"]["reason"]) == ("ignored", "no media extension")
    for key in GOOD:
        assert rows[key]["status"] == "ok" and Path(rows[key]["output"]).exists()
    for key, reason in BAD.items():
        assert rows[key]["status"] == "error" and reason in rows[key]["reason"], rows[key]


@pytest.mark.parametrize("key", GOOD)
def test_video_stream_is_copied_and_music_fills_the_video(cli_run, library, key):
    _, out = cli_run
    row = next(r for r in map(json.loads, (out / "manifest.jsonl").read_text().splitlines()) if r["key"] == key)
    src, dst = _ffprobe(library / key), _ffprobe(row["output"])
    src_v, dst_v = _stream(src, "video"), _stream(dst, "video")
    for field in ("codec_name", "nb_read_packets", "width", "height"):
        assert src_v[field] == dst_v[field], field
    audio = _stream(dst, "audio")
    assert abs(_duration(audio) - _duration(dst_v)) <= 0.1
    assert _audio_rms(row["output"]) > 1e-3
    assert len([s for s in dst["streams"] if s["codec_type"] == "audio"]) == 1  # the original audio is replaced


def test_sidecar_records_windows_models_and_the_retrieval_prior(cli_run):
    _, out = cli_run
    row = next(r for r in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())
               if r["key"] == GOOD[0])
    sidecar = json.loads(Path(row["sidecar"]).read_text())
    assert [(w["start"], w["end"]) for w in sidecar["windows"]] == [(0.0, 10.0), (10.0, 12.0)]
    assert sidecar["prior_trained"] is False and sidecar["note"] is None  # no prior given: retrieval
    assert sidecar["conditioning"] == "retrieval (the bank scene_bank.jsonl)"
    [tags] = sidecar["provenance"]["metadata"].values()  # what the output's container says made its music
    assert tags["format"]["comment"].endswith("; prior retrieval over scene_bank.jsonl)")
    captions = {entry.caption for entry in read_bank(SHIPPED)}
    for window in sidecar["windows"]:  # each window says which caption of the shipped bank it took
        [chosen] = [said for said in window["explanations"] if said["chosen"]]
        assert chosen["caption"] in captions and chosen == window["explanations"][0]
    assert sidecar["licences"]["prior"]["id"] == "none (no weights)"
    assert sidecar["licences"]["bank"]["id"] == "own (cotvtm's scene bank)"
    assert sidecar["config"]["mode"] == "continuous" and sidecar["input"] == GOOD[0]
    decoder = sidecar["decoder"]  # what made the music, and whether its steps were captured
    assert decoder["name"] == "engine" and decoder["dtype"] == "float32" and decoder["device"] == "cpu"
    assert decoder["steps_over"] == "all slots" and decoder["graphs"] == []
    assert decoder["eager"] == "graphs are not used on cpu"
    assert sidecar["licences"]["musicgen"] == {"id": "none (random weights)", "commercial": True,
                                               "source": "built locally with random weights",
                                               "note": "the tiny preset: real architectures at toy size, no "
                                                       "third-party weights"}


def test_rotation_metadata_survives(cli_run, library):
    _, out = cli_run
    [output] = (out).glob("it's rotated.*.mov")
    side = _stream(_ffprobe(output), "video").get("side_data_list", [{}])
    assert any(abs(abs(s.get("rotation", 0)) - 90) < 1 for s in side)


def test_rerun_skips_finished_outputs_and_retries_failures(cli_run, library, model_cache, tmp_path):
    """Signing is not part of the settings: a rerun with it skips the outputs made unsigned, and says so."""
    _, out = cli_run
    before = {p.name: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}
    signing, lines = signing_credentials(tmp_path), []
    summary = run(Access(source=str(library), dest=str(out), cache_dir=model_cache, sign_cert=signing["cert"],
                        sign_key=signing["key"]), SoundtrackConfig(), Resources(), echo=lines.append)
    assert (summary.ok, summary.failed, summary.skipped, summary.unsigned) == (0, len(BAD), len(GOOD), len(GOOD))
    assert f"signing  {len(GOOD)} existing outputs left unsigned (made without --sign-cert); add --resign" \
           " to make them again, signed" in lines
    assert {p.name: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == before
    rows = (out / "manifest.jsonl").read_text().splitlines()
    assert len(rows) == 2 * (len(GOOD) + len(BAD) + 1)  # appended, never rewritten (README.txt: ignored)


def test_independent_mode_and_new_config_write_new_outputs(library, tmp_path, model_cache, ray_session):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(library / GOOD[0], src / "a.mp4")
    cfg = SoundtrackConfig(mode="independent", models=ModelChoice(preset="tiny"))
    summary = run(Access(source=str(src), dest=str(tmp_path / "out"), cache_dir=model_cache), cfg, Resources(), echo=lambda _: None)
    assert summary.ok == 1 and summary.exit_code == 0
    [output] = (tmp_path / "out").glob("a.*.mp4")
    assert output.name != "a.mp4" and abs(_duration(_stream(_ffprobe(output), "audio")) - 12.0) <= 0.1
    # a segment's windows queued together into the engine, joined in order: lockstep's music
    run(Access(source=str(src), dest=str(tmp_path / "lockstep"), cache_dir=model_cache), cfg, Resources(music_feed="batched"),
        echo=lambda _: None)
    [lockstep] = (tmp_path / "lockstep").glob("a.*.mp4")
    assert np.array_equal(_pcm(lockstep), _pcm(output)) and len(_pcm(output)) > 0


def test_inputs_go_in_waves_and_every_one_ends_once(library, tmp_path, model_cache, ray_session):
    """Waves of one input: each wave's music pass runs while the next wave is prepared; every
    input still gets exactly one row, and a failure in one wave does not touch the others."""
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.mp4", "c.mp4"):
        shutil.copy(library / GOOD[1], src / name)
    (src / "b.mp4").write_text("not a video\n")
    lines = []
    summary = run(Access(source=str(src), dest=str(tmp_path / "out"), cache_dir=model_cache), SoundtrackConfig(),
                  Resources(wave=1), echo=lines.append)
    assert (summary.ok, summary.failed) == (2, 1)
    assert sorted(o.key for o in summary.outcomes) == ["a.mp4", "b.mp4", "c.mp4"]
    assert lines.count("pass 1/2: music conditioning for 1 input (0 resumed)") == 3
    assert lines.count("pass 2/2: music and mux for 1 input") == 2  # b.mp4 ends in pass 1
    assert len(list((tmp_path / "out").glob("[ac].*.mp4"))) == 2


def _leave_progress(out: Path, key: str, source: Path, changed: bool) -> Path:
    """Pretend an earlier run stopped after saving a plan and a (damaged) segment of ``key``,
    of this very file or (``changed``) of content the file no longer has."""
    from dataclasses import replace

    from cotvtm.pipelines.progress import Plan, VideoProgress
    from cotvtm.storage import open_store
    from cotvtm.video.probe import probe
    from cotvtm.video.windows import plan_windows

    [video] = out.glob(f"{Path(key).stem}.*{Path(key).suffix}")
    digest = video.name.split(".")[-2]
    video.unlink()
    video.with_suffix(".json").unlink()
    info = replace(probe(source), path=key)
    identity = open_store(source.parent).info(source.name).identity
    progress = VideoProgress(open_store(out).child(".cotvtm-progress"), digest, key)
    progress.save_plan(Plan(info, plan_windows(info.duration), 6, identity + ("-before" if changed else "")))
    progress.root.put_bytes(progress.prefix + "cond-00000.npz", b"damaged: not an npz archive")
    progress.root.put_bytes(progress.prefix + "cond-00000.json", b'{"explanations": [], "seconds": {}}')
    return out / ".cotvtm-progress" / progress.prefix


def test_saved_progress_of_a_changed_input_is_dropped_and_damaged_progress_fails_once(
        library, tmp_path, model_cache, ray_session):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    shutil.copy(library / GOOD[1], src / "a.mov")
    cfg, res = SoundtrackConfig(), Resources()
    assert run(Access(source=str(src), dest=str(out), cache_dir=model_cache), cfg, res, echo=lambda _: None).ok == 1

    folder = _leave_progress(out, "a.mov", src / "a.mov", changed=True)  # the file has changed since
    again = run(Access(source=str(src), dest=str(out), cache_dir=model_cache), cfg, res, echo=lambda _: None)
    assert (again.ok, again.failed) == (1, 0) and not folder.exists()

    folder = _leave_progress(out, "a.mov", src / "a.mov", changed=False)  # same file, damaged segment
    damaged = run(Access(source=str(src), dest=str(out), cache_dir=model_cache), cfg, res, echo=lambda _: None)
    [row] = damaged.outcomes
    assert row.status == "error" and "saved progress damaged" in row.reason and "run again" in row.reason
    assert not folder.exists()  # removed, so the next run makes it again
    healed = run(Access(source=str(src), dest=str(out), cache_dir=model_cache), cfg, res, echo=lambda _: None)
    assert (healed.ok, healed.failed) == (1, 0)


def test_the_same_inputs_make_the_same_music_whatever_the_batch(library, tmp_path, model_cache, ray_session):
    """One decoder slot, four slots, and four videos in lockstep instead of continuous feeding
    give the same tokens for every window (the sidecars' ``tokens_digest``) and the same music,
    sample for sample: draws belong to windows, and EnCodec decodes each window on its own."""
    src = tmp_path / "in"
    src.mkdir()
    for name, source in (("a.mp4", GOOD[0]), ("b.mov", GOOD[1]), ("c.webm", GOOD[2]), ("d.mp4", GOOD[0])):
        shutil.copy(library / source, src / name)
    digests, music = {}, {}
    for batch, feed in ((1, "continuous"), (4, "continuous"), (4, "batched")):
        out = tmp_path / f"out{batch}{feed}"
        summary = run(Access(source=str(src), dest=str(out), cache_dir=model_cache), SoundtrackConfig(),
                      Resources(slots=batch, embed_batch=batch, prior_batch=batch, videos_in_flight=2 * batch, music_feed=feed),
                      echo=lambda _: None)
        assert summary.ok == 4, [o.reason for o in summary.outcomes]
        sidecars = {p.name.split(".")[0]: json.loads(p.read_text()) for p in out.glob("*.json")}
        digests[batch, feed] = {k: [w["tokens_digest"] for w in s["windows"]] for k, s in sidecars.items()}
        if feed == "continuous":
            videos = [p for p in out.iterdir() if p.suffix in (".mp4", ".mov", ".webm")]
            music[batch] = {p.name.split(".")[0]: _pcm(p) for p in videos}
    digests[1], digests[4] = digests[1, "continuous"], digests[4, "continuous"]
    assert digests[1] == digests[4] == digests[4, "batched"] and len(digests[1]) == 4
    assert len(digests[1]["a"]) == 2 and digests[1]["a"] != digests[1]["d"]  # same frames, other input key
    assert music[1].keys() == music[4].keys()
    assert all(np.array_equal(music[1][k], music[4][k]) for k in music[1])


def _pcm(path: Path) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.float32)
