"""Evaluation models: front ends, the tiny preset, and the published checkpoint layouts."""

import numpy as np
import pytest
import torch

from cotvtm.errors import ModelError
from cotvtm.eval import embedders
from cotvtm.eval.features import LogMel, MelConfig, _slaney_hz, _slaney_mel, resample, slaney_mel_filters
from cotvtm.eval.nets import Cnn14, Cnn14Config


@pytest.fixture(scope="module")
def tiny_eval(model_cache, tiny_refs):
    return embedders.resolve_eval_models("tiny", model_cache, clip_ref=tiny_refs.clip)


def _tone(freq, seconds=2.0, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_slaney_mel_scale_and_filters():
    assert _slaney_mel(1000.0) == pytest.approx(15.0)
    assert _slaney_hz(_slaney_mel(np.array([60.0, 440.0, 7000.0]))) == pytest.approx([60.0, 440.0, 7000.0])
    filters = slaney_mel_filters(16000, 512, 64, 50.0, 8000.0)
    assert filters.shape == (257, 64) and (filters >= 0).all() and (filters.sum(0) > 0).all()
    peaks = filters.argmax(0)
    assert (np.diff(peaks) >= 0).all()  # band centres rise with the band index


def test_log_mel_of_a_tone_peaks_in_its_band_and_silence_is_finite():
    cfg = MelConfig.panns(16000)
    logmel = LogMel(cfg)
    mel = logmel(torch.from_numpy(_tone(1000.0))[None])[0, 0]
    filters = slaney_mel_filters(16000, 512, 64, 50.0, 8000.0)
    assert int(mel.mean(0).argmax()) == int(filters[round(1000 / 8000 * 256)].argmax())
    silent = logmel(torch.zeros(1, 16000))
    assert torch.isfinite(silent).all() and float(silent.max()) == pytest.approx(-100.0)
    assert LogMel(MelConfig.vggish())(torch.zeros(1, 100)).shape[2] == 1  # shorter than a window: padded


def test_resample_keeps_pitch_and_duration():
    tone = _tone(440.0, 1.0, 8000)
    up = resample(tone, 8000, 16000)
    assert len(up) == 16000
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.argmax(spectrum) * 16000 / len(up) - 440.0) < 2.0
    assert np.array_equal(resample(tone, 8000, 8000), tone)


def test_every_tiny_evaluation_model_runs_deterministically_on_music_and_silence(tiny_eval, model_cache):
    clips = [_tone(440.0), np.zeros(24000, np.float32), _tone(3000.0, 0.1)]  # a clip shorter than the net's input
    frames = [np.random.default_rng(i).integers(0, 255, (3, 40, 60, 3), dtype=np.uint8) for i in range(3)]
    fd = embedders.load(tiny_eval.fd)
    first = np.concatenate(fd.embed(clips))
    assert first.shape == (3, 32) and np.isfinite(first).all()
    assert np.array_equal(first, np.concatenate(embedders.load(tiny_eval.fd).embed(clips)))
    assert not np.allclose(first[0], first[1])  # a tone and silence embed differently
    assert fd.logits(clips).shape == (3, 16)
    fad = embedders.load(tiny_eval.fad).embed(clips)
    assert [e.shape for e in fad] == [(2, 16), (1, 16), (1, 16)]  # one row per whole 0.96 s patch
    joint = embedders.load(tiny_eval.ib)
    assert joint.embed_audio(clips).shape == joint.embed_visual(frames).shape == (3, 16)
    p10 = embedders.load(tiny_eval.p10).embed(clips)
    assert all(e.shape == (1, 32) and np.isfinite(e).all() for e in p10)
    va = embedders.load(tiny_eval.ems_audio).audio_va([resample(c, 16000, 48000) for c in clips])
    assert tiny_eval.ems_audio.startswith("clap-va:") and va.shape == (3, 2) and (np.abs(va) <= 1).all()
    regressor = embedders.load(f"cnn14-va:{embedders.build_tiny(model_cache) / 'va'}")
    assert regressor.audio_va(clips).shape == (3, 2)
    visual = embedders.load(tiny_eval.ems_visual).visual_va(frames)
    assert visual.shape == (3, 2) and (np.abs(visual) <= 1).all()


def test_tiny_evaluation_models_are_the_same_for_the_same_seed(tmp_path):
    a, b = embedders.build_tiny(tmp_path / "a"), embedders.build_tiny(tmp_path / "b")
    clip = [_tone(700.0)]
    assert np.array_equal(embedders.load(f"cnn14:{a / 'cnn14'}").logits(clip),
                          embedders.load(f"cnn14:{b / 'cnn14'}").logits(clip))


def test_a_published_panns_checkpoint_file_loads_as_is(tmp_path):
    """PANNs' files nest the weights under "model" and carry their STFT/mel buffers too."""
    torch.manual_seed(0)
    net = Cnn14(Cnn14Config(mel=MelConfig.panns(16000))).eval()
    state = dict(net.state_dict())
    state["spectrogram_extractor.stft.conv_real.weight"] = torch.zeros(1)
    state["logmel_extractor.melW"] = torch.zeros(1)
    path = tmp_path / "Cnn14_16k_mAP=0.438.pth"
    torch.save({"model": state}, path)
    loaded = embedders.load(f"cnn14:{path}")
    assert loaded.sample_rate == 16000 and loaded.net.cfg.embed_dim == 2048
    clip = [_tone(500.0, 1.0)]
    assert np.allclose(loaded.logits(clip), embedders.Cnn14Audio(net, "cpu").logits(clip))


def test_bad_references_are_one_line_errors(tmp_path):
    with pytest.raises(ModelError, match="expected KIND:LOCATION"):
        embedders.load("panns")
    with pytest.raises(ModelError, match="not a CNN14 checkpoint"):
        embedders.load(f"cnn14:{tmp_path}")
    with pytest.raises(ModelError, match="cannot read checkpoint"):
        embedders.load(f"vggish:{tmp_path / 'missing.pth'}")
    with pytest.raises(ModelError, match="unknown evaluation preset"):
        embedders.resolve_eval_models("huge", tmp_path)


def _tiny_blip(out):
    """BLIP for captioning at toy size (a word-level BERT vocabulary), saved like a hub checkpoint."""
    from transformers import (BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessorPil,
                              BlipProcessor)

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "calm", "lake", "city", "at", "night", "dog"]
    text = dict(vocab_size=len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=64, encoder_hidden_size=32, max_position_embeddings=64, bos_token_id=2, sep_token_id=3, pad_token_id=0)
    vision = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32,
                  patch_size=8)
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision, projection_dim=16))
    model.save_pretrained(out)
    BlipProcessor(image_processor=BlipImageProcessorPil(size={"height": 32, "width": 32}),
                  tokenizer=BertTokenizer(vocab={w: i for i, w in enumerate(words)})).save_pretrained(out)


def test_captioners(tmp_path, tiny_refs):
    from cotvtm.encoders.clip import ClipEncoder
    from cotvtm.teacher.captioner import candidate_captions, load_captioner

    frames = [np.random.default_rng(i).integers(0, 255, (3, 40, 60, 3), dtype=np.uint8) for i in range(2)]
    _tiny_blip(tmp_path / "blip")
    captions = load_captioner(f"blip:{tmp_path / 'blip'}", None, "cpu")(frames)
    assert len(captions) == 2 and all(isinstance(c, str) and c for c in captions)
    clip = ClipEncoder(tiny_refs.clip)
    retrieval = load_captioner("retrieval", clip, "cpu")
    picked = retrieval(frames)
    assert set(picked) <= set(candidate_captions()) and picked == retrieval(frames)
    with pytest.raises(ModelError, match="bad captioner"):
        load_captioner("gpt", clip, "cpu")
