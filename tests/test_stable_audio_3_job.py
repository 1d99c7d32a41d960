"""``--decoder stable-audio-3`` end to end on the tiny models: chosen by ``--commercial`` alone,
stereo outputs of the videos' exact lengths, sidecars naming the decoder, its steps and licences;
a prior distilled for T5's text space is refused with it before any work."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import cotvtm
from cotvtm import models, tiny
from cotvtm.video.samples import make_video


def _probe(path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,channels,sample_rate,duration",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return {s["codec_type"]: s for s in json.loads(out)["streams"]}


def test_commercial_alone_chooses_stable_audio_3_and_every_output_fits(tmp_path, model_cache, ray_session):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    lengths = {"ad.mp4": 5.0, "clip.mp4": 3.0}
    for name, seconds in lengths.items():
        make_video(inputs / name, duration=seconds, size="64x48", fps=4, source="mandelbrot")
    lines = []
    summary = cotvtm.soundtrack(inputs, out, cache_dir=model_cache, commercial=True, window_s=2.0, prompt_s=1.0,
                                echo=lines.append)
    assert (summary.ok, summary.failed) == (2, 0), lines
    assert any(line.startswith("decoder  stable-audio-3 (--commercial without --decoder") for line in lines)
    for name, seconds in lengths.items():
        [video] = out.glob(f"{name}.*.mp4")
        streams = _probe(video)
        assert (streams["audio"]["channels"], streams["audio"]["sample_rate"]) == (2, "48000")
        pcm = np.frombuffer(subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-map", "0:a:0", "-f", "f32le",
                                            "-"], capture_output=True, check=True).stdout, np.float32).reshape(-1, 2)
        assert np.abs(pcm[:, 0] - pcm[:, 1]).max() > 1e-3  # two channels, not one copied
        assert float(streams["audio"]["duration"]) == pytest.approx(seconds, abs=0.05)
        sidecar = json.loads(video.with_suffix(".json").read_text())
        decoder = sidecar["decoder"]
        assert decoder["name"] == "stable-audio-3" and decoder["steps"] == 8 and decoder["guidance_scale"] == 1.0
        assert decoder["channels"] == 2 and sidecar["channels"] == 2
        assert sidecar["config"]["decoder"] == "stable-audio-3" and "musicgen" not in sidecar["models"]
        assert sidecar["licences"]["stable_audio_3"]["commercial"] is True
        assert all(lic["commercial"] is True for lic in sidecar["licences"].values())


def test_a_prior_distilled_for_t5_is_refused_with_stable_audio_3(tmp_path, model_cache):
    """The tiny preset's prior folder records T5's space (as every prior distilled before spaces
    were recorded does): Stable Audio 3 reads T5Gemma's, so the run stops before Ray starts."""
    prior = tiny.build_all(model_cache, 0)["prior"]  # a prior folder (untrained), T5's space
    (tmp_path / "in").mkdir()
    make_video(tmp_path / "in" / "a.mp4", duration=2, size="64x48", fps=4)
    proc = subprocess.run([sys.executable, "-m", "cotvtm.cli", "soundtrack", str(tmp_path / "in"),
                           str(tmp_path / "out"), "--cache-dir", str(model_cache), "--decoder", "stable-audio-3",
                           "--prior", str(prior)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RAY_ADDRESS": "127.0.0.1:9"})  # nothing there: Ray must not start
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2, said
    assert f"--prior {prior} was distilled for t5's text space, but --decoder stable-audio-3 reads " \
           "t5gemma's" in said
    assert "Traceback" not in said and not (tmp_path / "out").exists()
    refs = models.resolve("tiny", cache_dir=model_cache, decoder="stable-audio-3")
    assert refs.t5 == refs.stable_audio_3  # the text space belongs to the decoder: its own encoder
