"""Interrupted runs: a killed stage worker and a killed driver still end with complete outputs."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cotvtm.pipelines.progress import video_id
from cotvtm.video.samples import make_video

pytestmark = pytest.mark.slow
VIDEOS = 6


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("resilience")
    for i in range(VIDEOS):
        make_video(root / f"clip{i}.mp4", duration=8 + i, size="64x48", fps=8)
    return root


def _start(library: Path, out: Path, ray_address: str, cache: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, RAY_ADDRESS=ray_address, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "jobs.soundtrack", str(library), str(out), "--cache-dir",
                             str(cache), "--slots", "1", "--embed-batch", "1", "--prior-batch", "1", "--videos-in-flight", "2",
                             *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(out: Path) -> list[dict]:
    manifest = out / "manifest.jsonl"
    return [json.loads(line) for line in manifest.read_text().splitlines()] if manifest.exists() else []


def _wait(predicate, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)


def _processes(title: str) -> list[int]:
    """Ray names its worker processes after what they run (e.g. ray::MapWorker(MapBatches(Music)))."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and title in (entry / "cmdline").read_bytes().decode(errors="ignore"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _assert_complete(out: Path) -> None:
    videos = sorted(out.glob("clip*.mp4"))
    assert len(videos) == VIDEOS
    for video in videos:
        assert video.with_suffix(".json").exists()
        streams = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(video)],
                                            capture_output=True, text=True, check=True).stdout)["streams"]
        assert sorted(s["codec_type"] for s in streams) == ["audio", "video"]


def test_killed_music_worker_is_replaced_and_the_run_completes(library, tmp_path, ray_session, model_cache):
    out = tmp_path / "out"
    proc = _start(library, out, ray_session, model_cache)
    _wait(lambda: _processes("MapBatches(Music)") and len(_rows(out)) >= 1)
    for pid in _processes("MapBatches(Music)"):
        os.kill(pid, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout[-2000:] + stderr[-2000:]
    rows = _rows(out)
    assert sorted(r["key"] for r in rows) == [f"clip{i}.mp4" for i in range(VIDEOS)]  # no duplicates
    assert all(r["status"] == "ok" for r in rows)
    _assert_complete(out)


def test_killed_driver_then_rerun_finishes_only_what_was_left(library, tmp_path, ray_session, model_cache):
    out = tmp_path / "out"
    proc = _start(library, out, ray_session, model_cache)
    _wait(lambda: len(_rows(out)) >= 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(1)  # let the job's actors go down with it
    # finished = complete on disk (the sidecar is written last); some may lack a manifest row
    finished = {p.name.split(".")[0] + ".mp4" for p in out.glob("clip*.json")}
    assert {r["key"] for r in _rows(out)} <= finished and 2 <= len(finished) < VIDEOS
    rerun = _start(library, out, ray_session, model_cache)
    stdout, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stdout[-2000:] + stderr[-2000:]
    second = [r for r in _rows(out) if r["run_id"] != _rows(out)[0]["run_id"]]
    assert {r["key"] for r in second if r["status"] == "skipped"} == finished
    assert {r["key"] for r in second if r["status"] == "ok"} == {f"clip{i}.mp4" for i in range(VIDEOS)} - finished
    _assert_complete(out)


def _interrupt(library: Path, out: Path, ray_address: str, cache: Path, saved: str, *extra: str) -> None:
    """Start a run and kill its driver once saved progress matching ``saved`` (a glob below the
    config digest's folder: ``<video id>/<file>``) exists."""
    proc = _start(library, out, ray_address, cache, *extra)
    _wait(lambda: list(out.glob(f".cotvtm-progress/*/{saved}")))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(1)  # let the job's actors go down with it


def _finish(library: Path, out: Path, ray_address: str, cache: Path, *extra: str) -> str:
    """Run to the end; its standard output."""
    proc = _start(library, out, ray_address, cache, *extra)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout[-2000:] + stderr[-2000:]
    return stdout


def _pcm(video: Path) -> bytes:
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-map", "0:a:0", "-f", "f32le", "-"],
                          capture_output=True, check=True).stdout


@pytest.mark.parametrize("decoder", ["engine", "stable-audio", "stable-audio-3"])
def test_interrupted_long_video_resumes_after_its_last_saved_segment(tmp_path, ray_session, model_cache, decoder):
    """A 50 s video in five 1-window segments, batched with two short ones; the driver is killed
    once two segments' music is saved. The rerun conditions nothing again, composes only the
    remaining segments from the saved state (in batches made up differently: the short videos
    are done), and its output's audio is sample-for-sample the audio of an uninterrupted run,
    with MusicGen's engine, with Stable Audio Open and with Stable Audio 3 (whose windows continue
    the saved track's audio)."""
    library = tmp_path / "long"
    library.mkdir()
    make_video(library / "long.mp4", duration=50, size="64x48", fps=4)
    for name in ("a.mp4", "b.mp4"):
        make_video(library / name, duration=12, size="64x48", fps=4, source="mandelbrot")
    out, whole = tmp_path / "out", tmp_path / "whole"
    # pass 1 a segment at a time: CLIP's and the prior's float sums depend on how many segments share a
    # batch, which Ray Data decides as blocks arrive, and Stable Audio's samples (no tokens) show it
    args = ("--segment-windows", "1", "--slots", "4", "--embed-batch", "1", "--prior-batch", "1", "--videos-in-flight", "8",
            "--decoder", decoder, "--stable-audio-steps", "4")

    _interrupt(library, out, ray_session, model_cache, f"{video_id('long.mp4')}/state-00001.npz", *args)
    assert not list(out.glob("long*.mp4"))  # nothing visible yet, nothing half-written

    stdout = _finish(library, out, ray_session, model_cache, *args)
    assert "pass 1/2" not in stdout  # every segment's conditioning was already saved
    [video] = out.glob("long*.mp4")
    sidecar = json.loads(video.with_suffix(".json").read_text())
    assert sidecar["segments"] == 5 and 2 <= sidecar["resumed_at_segment"] < 5
    assert not list(out.glob(".cotvtm-progress/*/*"))  # the finished video's progress is gone

    _finish(library, whole, ray_session, model_cache, *args)
    [reference] = whole.glob("long*.mp4")
    assert json.loads(reference.with_suffix(".json").read_text())["resumed_at_segment"] == 0
    assert _pcm(video) == _pcm(reference) and len(_pcm(video)) > 0


def _pad_to(path: Path, size: int) -> None:
    """Grow an MP4 to ``size`` bytes with a trailing 'free' box (MP4's own padding)."""
    gap = size - path.stat().st_size
    assert gap >= 8
    with open(path, "ab") as handle:
        handle.write(gap.to_bytes(4, "big") + b"free" + bytes(gap - 8))


def test_an_input_replaced_by_another_of_the_same_size_is_made_from_the_new_file(tmp_path, ray_session,
                                                                               model_cache):
    """A run is killed after saving the first segment's conditioning; the input is then replaced
    by a different video of exactly the same size. The rerun throws the saved work away and its
    music is sample for sample that of a clean run on the new file."""
    old, new = tmp_path / "old.mp4", tmp_path / "new.mp4"
    make_video(old, duration=30, size="64x48", fps=4)
    make_video(new, duration=30, size="64x48", fps=4, source="mandelbrot")
    size = max(old.stat().st_size, new.stat().st_size) + 8
    _pad_to(old, size)
    _pad_to(new, size)
    library, fresh = tmp_path / "library", tmp_path / "fresh"
    library.mkdir()
    fresh.mkdir()
    shutil.copy(old, library / "clip.mp4")
    shutil.copy(new, fresh / "clip.mp4")
    out, reference = tmp_path / "out", tmp_path / "reference"
    args = ("--segment-windows", "1")

    _interrupt(library, out, ray_session, model_cache, "*/cond-00000.json", *args)
    assert not list(out.glob("clip*.mp4"))
    shutil.copy(new, library / "clip.mp4.tmp")
    os.replace(library / "clip.mp4.tmp", library / "clip.mp4")  # same name, same size, new content
    assert (library / "clip.mp4").stat().st_size == old.stat().st_size

    stdout = _finish(library, out, ray_session, model_cache, *args)
    assert "pass 1/2: music conditioning for 1 input (0 resumed)" in stdout
    _finish(fresh, reference, ray_session, model_cache, *args)
    [video], [expected] = out.glob("clip*.mp4"), reference.glob("clip*.mp4")
    assert json.loads(video.with_suffix(".json").read_text())["resumed_at_segment"] == 0
    assert _pcm(video) == _pcm(expected) and len(_pcm(video)) > 0


def _audio_seconds(video: Path) -> float:
    return float(subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                                 "stream=duration", "-of", "csv=p=0", str(video)],
                                capture_output=True, text=True, check=True).stdout)


def _tokens(video: Path) -> list[str]:
    return [w["tokens_digest"] for w in json.loads(video.with_suffix(".json").read_text())["windows"]]


def test_a_long_video_in_two_streams_resumes_each_stream_where_it_stopped(tmp_path, ray_session, model_cache):
    """A 70 s video in seven 1-window segments, composed as two streams (segments 0-3 and
    4-6, so the second finishes first); the driver is killed once the second stream's first
    segment is saved. The rerun composes only what each stream had left; its tokens are the
    uninterrupted run's, its audio the same sample for sample, exactly the video's length."""
    library = tmp_path / "long"
    library.mkdir()
    make_video(library / "long.mp4", duration=70, size="64x48", fps=4)
    out, whole = tmp_path / "out", tmp_path / "whole"
    args = ("--segment-windows", "1", "--streams-per-video", "2", "--stream-min-seconds", "30")

    _interrupt(library, out, ray_session, model_cache, f"{video_id('long.mp4')}/state-00004.npz", *args)
    assert not list(out.glob("long*.mp4"))
    _finish(library, out, ray_session, model_cache, *args)
    [video] = out.glob("long*.mp4")
    sidecar = json.loads(video.with_suffix(".json").read_text())
    assert sidecar["streams"] == [{"segments": [0, 4], "first_window": 0, "start": 0.0},
                                  {"segments": [4, 7], "first_window": 4, "start": 40.0}]
    assert 2 <= sidecar["resumed_at_segment"] < 7  # segments 0 and 4 at least were saved before

    stdout = _finish(library, whole, ray_session, model_cache, *args)
    assert stdout.index("music    long.mp4: segment 7/7") < stdout.index("music    long.mp4: segment 4/7")
    [reference] = whole.glob("long*.mp4")
    assert _tokens(video) == _tokens(reference) and len(set(_tokens(video))) == 7
    assert _pcm(video) == _pcm(reference) and len(_pcm(video)) > 0
    assert abs(_audio_seconds(video) - 70.0) < 0.03


def test_a_run_killed_after_its_first_variant_makes_only_the_others(tmp_path, ray_session, model_cache):
    """Three variants made one after another; the driver is killed once the first is published.
    The rerun conditions nothing again (the shared conditioning was kept for the other variants)
    and makes only the variants that were not finished."""
    library = tmp_path / "in"
    library.mkdir()
    make_video(library / "clip.mp4", duration=20, size="64x48", fps=4)
    out = tmp_path / "out"
    args = ("--variants", "3", "--music-feed", "batched", "--slots", "1", "--ending", "cut")
    proc = _start(library, out, ray_session, model_cache, *args)
    _wait(lambda: list(out.glob("clip.mp4.*.json")))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(1)  # let the job's actors go down with it
    finished = {p.name for p in out.glob("clip.mp4.*.json")}
    assert 1 <= len(finished) < 3
    stdout = _finish(library, out, ray_session, model_cache, *args)
    assert "pass 1/2" not in stdout  # the conditioning was saved and kept
    second = [r for r in _rows(out) if r["run_id"] == _rows(out)[-1]["run_id"]]  # the killed run may have none
    assert {r["sidecar"].rsplit("/", 1)[-1] for r in second if r["status"] == "skipped"} == finished
    assert len([r for r in second if r["status"] == "ok"]) == 3 - len(finished)
    assert sorted(r["variant"] for r in second) == [1, 2, 3]
    assert len(list(out.glob("clip.mp4.*.mp4"))) == 3
