"""``--decoder stable-audio``: Stable Audio Open (diffusers' pipeline, tiny and random here) fed the
prior's E_m as its prompt embeddings; one generation per window, drawn from the window's stream."""

import json
import subprocess

import numpy as np
import pytest
from PIL import Image

import cotvtm
from cotvtm import tiny
from cotvtm.errors import ModelError
from cotvtm.music.decoder import MusicRequest
from cotvtm.music.stable_audio import StableAudioBackend
from cotvtm.provenance import COMPOSITE, TRAINED
from cotvtm.video.samples import make_video
from helpers import ends_in_silence, read_c2pa, signing_credentials

STEPS = 4


@pytest.fixture(scope="module")
def stable_audio(model_cache, tiny_refs):
    return StableAudioBackend(str(tiny.build_stable_audio(model_cache, tiny_refs.t5)), steps=STEPS, width=tiny.T5_DIM)


def _request(seed: int, seconds: float = 1.5, stream: int = 7) -> MusicRequest:
    rng = np.random.default_rng(seed)
    mask = np.ones(12, np.int64)
    mask[9:] = 0  # E_m padded past its ninth token
    return MusicRequest(rng.standard_normal((12, tiny.T5_DIM)).astype(np.float32), mask, seconds, stream)


def test_the_pipeline_is_given_the_priors_e_m_and_mask_unchanged(stable_audio, monkeypatch):
    """What reaches ``StableAudioPipeline.encode_prompt`` (where its text encoder would run) is the
    request's E_m and mask, as they are: no text, nothing re-encoded."""
    seen = []
    original = stable_audio.pipeline.encode_prompt

    def recording(prompt, device, guided, negative_prompt=None, prompt_embeds=None, *args, **kwargs):
        seen.append((prompt, prompt_embeds.clone(), kwargs.get("attention_mask", args[1] if len(args) > 1 else None)))
        return original(prompt, device, guided, negative_prompt, prompt_embeds, *args, **kwargs)

    monkeypatch.setattr(stable_audio.pipeline, "encode_prompt", recording)
    request = _request(1)
    [window] = stable_audio.render([request])
    [(prompt, embeds, mask)] = seen
    assert prompt is None
    assert np.array_equal(embeds.numpy(), request.hidden[None]) and embeds.numpy().dtype == np.float32
    assert np.array_equal(mask.numpy(), request.mask[None])
    assert window.audio.shape == (round(1.5 * stable_audio.sample_rate), 2) and window.codes is None
    assert stable_audio.channels == 2 and not np.array_equal(window.audio[:, 0], window.audio[:, 1])  # stereo


def test_a_windows_music_depends_on_its_request_alone(stable_audio):
    first, second = _request(1), _request(2, seconds=2.0, stream=8)
    together = stable_audio.render([first, second])
    alone = stable_audio.render([second]) + stable_audio.render([first])
    assert np.array_equal(together[0].audio, alone[1].audio) and np.array_equal(together[1].audio, alone[0].audio)
    assert together[0].digest == alone[1].digest != together[1].digest
    assert np.abs(together[0].audio).max() > 0
    reseeded = stable_audio.render([_request(1, stream=9)])[0]
    assert not np.array_equal(reseeded.audio, together[0].audio)  # another window's draws
    with pytest.raises(ValueError, match="longer than this Stable Audio model makes"):
        stable_audio.render([_request(1, seconds=60.0)])


def test_a_pipeline_whose_text_width_is_not_e_ms_is_refused(stable_audio):
    with pytest.raises(ModelError, match="width 32, but the run's E_m is 768 wide"):
        StableAudioBackend("tiny", width=768, pipeline=stable_audio.pipeline)


def test_settings_whose_windows_the_model_cannot_make_stop_the_music_stage(model_cache, tiny_refs):
    """The tiny Stable Audio makes 16.38 s: 16 s windows (with a merged tail and the crossfade) do
    not fit, and the stage refuses to start instead of failing every video rendered beside one."""
    from types import SimpleNamespace

    from cotvtm.pipelines.music import _decoder
    from cotvtm.settings import Resources, SoundtrackConfig

    ref = str(tiny.build_stable_audio(model_cache, tiny_refs.t5))
    ctx = SimpleNamespace(res=Resources(), refs=SimpleNamespace(stable_audio=ref),
                          facts=SimpleNamespace(dims={"music_dim": tiny.T5_DIM}))
    with pytest.raises(ModelError, match="makes at most 16.38 s, but windows of these settings may need 16.75 s"):
        _decoder(SimpleNamespace(**vars(ctx), cfg=SoundtrackConfig(decoder="stable-audio", window_s=16.0)))
    assert _decoder(SimpleNamespace(**vars(ctx), cfg=SoundtrackConfig(decoder="stable-audio", windows="shots")))


def _stereo(path, rate: int = 48000) -> np.ndarray:
    """The first audio stream as ffmpeg decodes it, (samples, 2); it must be stereo at ``rate``."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                            "stream=sample_rate,channels", "-of", "csv=p=0", str(path)],
                           capture_output=True, text=True, check=True).stdout
    assert probe.strip() == f"{rate},2"
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.float32).reshape(-1, 2)


def _seconds(path, stream: str) -> float:
    return float(subprocess.run(["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries",
                                 "stream=duration", "-of", "csv=p=0", str(path)],
                                capture_output=True, text=True, check=True).stdout)


@pytest.mark.slow
def test_a_commercial_signed_run_with_stable_audio(tmp_path, model_cache, ray_session):
    """Videos (audio ducked under the music) and an image, with ``--commercial`` (the tiny models
    are cleared), signing and styles (one input's from ``--styles``, the others' ``--style``):
    each output is its input's length, its sidecar names the decoder, its licence and its style,
    its C2PA manifest validates with the right digital source type, and a rerun leaves every
    signed output as it was. The music is stereo from the decoder to every output (the ducked
    original, mono, mixed into both channels), its channels different."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    make_video(inputs / "talk.mp4", duration=5, size="64x48", fps=4, audio=True)
    make_video(inputs / "still.mp4", duration=3.5, size="64x48", fps=4, source="mandelbrot")
    Image.new("RGB", (48, 32), (20, 120, 200)).save(inputs / "poster.png")
    signing = signing_credentials(tmp_path)
    (tmp_path / "styles.jsonl").write_text(json.dumps({"key": "talk.mp4", "style": "soft strings"}) + "\n")
    settings = dict(cache_dir=model_cache, decoder="stable-audio", stable_audio_steps=STEPS, audio="duck",
                    image_seconds=3.0, commercial=True, sign_cert=signing["cert"], sign_key=signing["key"],
                    style="bright synth pop", styles=str(tmp_path / "styles.jsonl"), echo=lambda line: None)
    summary = cotvtm.soundtrack(inputs, out, **settings)
    assert (summary.ok, summary.failed) == (3, 0)
    for name, seconds in (("talk.mp4", 5.0), ("still.mp4", 3.5)):
        [video] = out.glob(f"{name}.*.mp4")
        assert _seconds(video, "a:0") == pytest.approx(seconds, abs=0.03)
        state, manifest, _ = read_c2pa(video, "video/mp4", None)
        assert state == "Valid"
        [action] = next(a["data"]["actions"] for a in manifest["assertions"] if a["label"].startswith("c2pa.actions"))
        assert action["digitalSourceType"] == COMPOSITE
    [music] = out.glob("poster.png.*.m4a")
    assert _seconds(music, "a:0") == pytest.approx(3.0, abs=0.03)
    assert ends_in_silence(music) and ends_in_silence(next(out.glob("still.mp4.*.mp4")))  # --ending beat
    state, manifest, _ = read_c2pa(music, "audio/mp4", signing["root"])
    assert state == "Trusted"
    [action] = next(a["data"]["actions"] for a in manifest["assertions"] if a["label"].startswith("c2pa.actions"))
    assert action["digitalSourceType"] == TRAINED
    sidecars = [json.loads(path.read_text()) for path in out.glob("*.json")]
    styles = {sidecar["input"]: sidecar["style"] for sidecar in sidecars}
    assert styles == {"talk.mp4": "soft strings", "still.mp4": "bright synth pop", "poster.png": "bright synth pop"}
    sidecar = json.loads(next(out.glob("talk.mp4.*.json")).read_text())
    assert sidecar["decoder"]["name"] == "stable-audio" and "musicgen" not in sidecar["models"]
    assert sidecar["ending"]["mode"] == "beat" and 1.0 <= 5.0 - sidecar["ending"]["starts_at"] <= 4.0
    assert sidecar["licences"]["stable_audio"]["commercial"] is True
    assert {s["channels"] for s in sidecars} == {2} and sidecar["sample_rate"] == tiny.SAMPLE_RATE
    rates = {"talk.mp4": 44100, "still.mp4": 48000, "poster.png": 48000}  # a ducked original keeps its rate;
    for name, rate in rates.items():  # otherwise 48 kHz, whatever the decoder's rate
        pcm = _stereo(next(path for path in out.glob(f"{name}.*") if path.suffix in (".mp4", ".m4a")), rate)
        assert np.abs(pcm).max() > 0 and np.abs(pcm[:, 0] - pcm[:, 1]).max() > 1e-3  # two channels, not one copied
    assert "decoder Stable Audio stable_audio" in sidecar["provenance"]["metadata"][next(iter(
        sidecar["provenance"]["metadata"]))]["format"]["comment"]

    made = {path.name: path.read_bytes() for path in out.iterdir() if path.suffix in (".mp4", ".m4a")}
    again = cotvtm.soundtrack(inputs, out, **settings)
    assert (again.ok, again.skipped) == (0, 3)
    assert {path.name: path.read_bytes() for path in out.iterdir() if path.suffix in (".mp4", ".m4a")} == made
