"""A corpus of odd and hostile media: every file ends as an output or a specific error row."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cotvtm.video.samples import make_audio, make_video

pytestmark = pytest.mark.slow
S = dict(duration=1.5, size="64x48", fps=8)

GOOD = {  # name -> make_video arguments
    "h264.mp4": {},
    "hevc10.mkv": dict(codec="libx265", extra_args=("-pix_fmt", "yuv420p10le", "-x265-params", "log-level=error")),
    "vp8.webm": dict(codec="libvpx"),
    "vp9.webm": dict(codec="libvpx-vp9"),
    "prores.mov": dict(codec="prores_ks", extra_args=("-pix_fmt", "yuv422p10le")),
    "mjpeg odd size.avi": dict(codec="mjpeg", size="63x47", extra_args=("-pix_fmt", "yuvj420p")),
    "mpeg4.avi": dict(codec="mpeg4"),
    "stream.ts": {},
    "rotated.mp4": dict(rotate=90),
    "with audio.mov": dict(audio=True),
    "vfr.mkv": dict(vf="select='not(mod(n,3))'", extra_args=("-fps_mode", "vfr")),
    "tiny clip.mp4": dict(duration=0.3),
    "-leading dash.mp4": {},
    "quote's \"double\" $(rm -rf x); ls.mp4": {},
    "new\nline.mp4": {},
    "ünïcødé 视频.mp4": {},
    ("long " * 44).strip() + ".mp4": {},
}
BAD = {  # name -> the reason (a substring of it) the manifest must give
    "zero.mp4": "empty file",
    "random.mov": "not a media file",
    "no moov.mp4": "moov atom not found",
    "tone.m4a": "no video stream",
    "fake.jpg": "not an image",
}
IGNORED = {"escape.mp4": "refused symlink"}  # a link out of the input folder is not an input


def _x265_pix_fmt_ok(name: str) -> bool:
    return "hevc" not in name or "libx265" in subprocess.run(["ffmpeg", "-hide_banner", "-encoders"],
                                                             capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus") / "in"
    outside = tmp_path_factory.mktemp("outside")
    root.mkdir()
    for name, args in GOOD.items():
        if _x265_pix_fmt_ok(name):
            make_video(root / name, **{**S, **args})
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(root / "photo.jpg")
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / "art.png")
    (root / "zero.mp4").write_bytes(b"")
    (root / "random.mov").write_bytes(rng.integers(0, 255, 4096, dtype=np.uint8).tobytes())
    whole = make_video(outside / "whole.mp4", duration=3).read_bytes()
    (root / "no moov.mp4").write_bytes(whole[: len(whole) // 2])
    make_audio(root / "tone.m4a", duration=1)
    (root / "fake.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    make_video(outside / "secret.mp4", **S)
    os.symlink(outside / "secret.mp4", root / "escape.mp4")
    os.symlink(root / "h264.mp4", root / "inside link.mp4")
    return root, outside


@pytest.fixture(scope="module")
def result(corpus, tmp_path_factory, ray_session, model_cache):
    root, outside = corpus
    out = tmp_path_factory.mktemp("result") / "out"
    before_in = sorted(p.name for p in root.iterdir())
    before_outside = sorted(p.name for p in outside.iterdir())
    env = dict(os.environ, RAY_ADDRESS=ray_session)
    proc = subprocess.run([sys.executable, "-m", "jobs.soundtrack", str(root), str(out), "--cache-dir",
                           str(model_cache), "--image-seconds", "3", "--image-video"],
                          capture_output=True, text=True, env=env, timeout=900)
    rows = {r["key"]: r for r in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}
    return proc, out, rows, (before_in, before_outside)


def test_every_file_ends_as_output_or_specific_error(result, corpus):
    proc, out, rows, _ = result
    root, _ = corpus
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 1  # the batch finished; some inputs failed
    expected = {p.name for p in root.iterdir()}
    assert set(rows) == expected
    for name, reason in BAD.items():
        assert rows[name]["status"] == "error" and reason in rows[name]["reason"], rows[name]
    for name, reason in IGNORED.items():
        assert (rows[name]["status"], rows[name]["reason"]) == ("ignored", reason)
    for name in expected - set(BAD) - set(IGNORED):
        assert rows[name]["status"] == "ok", rows[name]
        assert Path(rows[name]["output"]).exists()


def test_hostile_names_map_to_valid_output_files(result):
    _, out, rows, _ = result
    for name in GOOD:
        if name in rows:
            output = Path(rows[name]["output"])
            assert output.parent == out and len(output.name.encode()) <= 255
    assert Path(rows["new\nline.mp4"]["output"]).name.startswith("new\nline.")


def test_images_give_music_and_a_still_video(result):
    proc, out, rows, _ = result
    audio = Path(rows["photo.jpg"]["output"])
    assert audio.suffix == ".m4a"
    sidecar = json.loads(Path(rows["photo.jpg"]["sidecar"]).read_text())
    still = out / sidecar["still_video"]
    assert f"ok       photo.jpg -> {audio}, {still}" in proc.stdout.splitlines()  # every output of the input
    assert f'href="{still.name}"' in (out / "report.html").read_text()  # the report lists it too
    videos = sum(row["status"] == "ok" for key, row in rows.items() if key not in ("photo.jpg", "art.png"))
    assert f"; {videos} videos and 2 images soundtracked, " in proc.stdout  # images counted apart
    assert not (out / ".cotvtm-progress").exists()  # every input finished: no empty progress folders
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json",
                                       str(still)], capture_output=True, text=True, check=True).stdout)
    assert sorted(s["codec_type"] for s in probe["streams"]) == ["audio", "video"]
    assert abs(float(probe["format"]["duration"]) - 3.0) < 0.3


def test_nothing_written_outside_the_output_folder(result, corpus):
    _, _, _, (before_in, before_outside) = result
    root, outside = corpus
    assert sorted(p.name for p in root.iterdir()) == before_in
    assert sorted(p.name for p in outside.iterdir()) == before_outside
