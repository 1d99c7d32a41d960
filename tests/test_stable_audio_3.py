"""``--decoder stable-audio-3``: Stable Audio 3 (diffusers' classes, tiny and random here) fed the
prior's E_m in its own T5Gemma text space; stereo windows as long as asked, a window continuing
the track's last audio by inpainting, like windows made together at a fixed batch shape."""

import json
import shutil

import numpy as np
import pytest
import torch

from cotvtm import licences, models, tiny
from cotvtm.encoders.music_text import MusicTextEncoder
from cotvtm.errors import ModelError, ModelRefError
from cotvtm.music.decoder import MusicRequest
from cotvtm.music.stable_audio_3 import PROMPT_TOKENS, StableAudio3Backend

BATCH = 8
E_M = 64  # E_m's tokens, as the prior makes them


@pytest.fixture(scope="module")
def refs(model_cache, tiny_refs):
    return models.resolve("tiny", cache_dir=model_cache, decoder="stable-audio-3")


@pytest.fixture(scope="module")
def decoder(refs):
    return StableAudio3Backend(refs.stable_audio_3, batch=BATCH, width=tiny.T5_DIM)


def _request(seed: int, seconds: float = 2.0, stream: int = 7, context=None) -> MusicRequest:
    rng = np.random.default_rng(seed)
    mask = np.zeros(E_M, np.int64)
    mask[: 5 + seed % 20] = 1
    hidden = rng.standard_normal((E_M, tiny.T5_DIM)).astype(np.float32) * mask[:, None]
    return MusicRequest(hidden, mask, seconds, stream, context=context)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_a_window_is_stereo_and_as_long_as_asked(decoder):
    fresh, longer = decoder.render([_request(1, 1.5), _request(2, 2.3, stream=8)])
    for window, seconds in ((fresh, 1.5), (longer, 2.3)):
        assert window.audio.shape == (round(seconds * decoder.sample_rate), 2) and window.audio.dtype == np.float32
        assert window.codes is None and window.prompt_samples == 0 and window.audio.flags.c_contiguous
        assert 0.01 < window.audio.std() and np.abs(window.audio).max() <= 1.0
    context = longer.audio[-decoder.sample_rate:]
    [continued] = decoder.render([_request(3, 1.5, context=context)])
    assert continued.audio.shape == (len(context) + round(1.5 * decoder.sample_rate), 2)
    assert continued.prompt_samples == len(context)
    assert decoder.describe() == {"name": "stable-audio-3", "dtype": "float32", "device": "cpu", "steps": 8,
                                  "guidance_scale": 1.0, "channels": 2, "batch": BATCH}
    assert (decoder.channels, decoder.continues) == (2, "audio")


def test_e_m_conditions_as_the_text_whose_states_it_holds(refs, decoder):
    """E_m from the run's text encoder (``refs.t5``: the pipeline's own T5Gemma, through
    ``MusicTextEncoder``), given as prompt embeddings, makes bit for bit what the pipeline makes
    from the text itself: the same space, padding and sampling."""
    from diffusers import StableAudio3Pipeline

    assert refs.t5 == refs.stable_audio_3
    text = "a calm piano piece with strings, slow tempo"
    encoder = MusicTextEncoder(refs.t5, E_M)
    assert encoder.dim == tiny.T5_DIM == decoder.pipeline.transformer.config.cond_token_dim
    states, mask = encoder.encode_alone(text)
    assert states.shape == (E_M, tiny.T5_DIM) and 3 < mask.sum() < E_M
    [window] = decoder.render([MusicRequest(states, mask, 2.0, 11)])
    plain = StableAudio3Pipeline.from_pipe(decoder.pipeline)
    plain.set_progress_bar_config(disable=True)
    generators = [torch.Generator("cpu").manual_seed(11) for _ in range(BATCH)]
    made = plain(prompt=[text] * BATCH, duration=2.0, num_inference_steps=8, generator=generators).audios[0]
    assert np.array_equal(window.audio, made.T.numpy())


def test_a_window_continues_the_tail_of_the_one_before(decoder, monkeypatch):
    """Window k keeps window k-1's last second: its first latents are that second's encoding,
    exactly, so its audio there is the autoencoder's rendering of it; what follows is new, and
    made beside it (another context, other new music; the random tiny model heeds it little)."""
    hop, rate = decoder.hop, decoder.sample_rate
    [previous] = decoder.render([_request(1, 3.0)])
    tail = previous.audio[-rate:]
    decoded = []
    vae = decoder.pipeline.vae
    real = vae.decode
    monkeypatch.setattr(vae, "decode", lambda latents: decoded.append(latents.clone()) or real(latents))
    [window] = decoder.render([_request(2, 2.0, stream=9, context=tail)])
    kept = len(tail) // hop
    with torch.no_grad():  # at the decoder's batch shape, whose float sums the window's are
        encoded = vae.encode(torch.as_tensor(np.stack([tail.T] * BATCH))).latents[:1]
        rendering = real(encoded).sample[0].T.numpy()
    assert torch.equal(decoded[0][0, :, :kept], encoded[0])
    assert window.prompt_samples == len(tail) and kept * hop == len(tail)
    assert _corr(window.audio[: len(tail) - hop], rendering[: len(tail) - hop]) > 0.99  # the last latent's
    # sound also hears the new music after it
    [elsewhere] = decoder.render([_request(2, 2.0, stream=9, context=previous.audio[:rate])])
    assert not np.array_equal(window.audio[len(tail):], elsewhere.audio[len(tail):])


def test_a_windows_samples_do_not_depend_on_its_neighbours(decoder):
    """Alone (beside copies), beside seven others at another row, and in a second batch of a
    render of nine: the same samples, fresh or continuing; another stream, other samples."""
    fresh = [_request(seed, stream=100 + seed) for seed in range(BATCH + 1)]
    together = decoder.render(fresh)
    for index in (0, 5, BATCH):
        [alone] = decoder.render([fresh[index]])
        assert np.array_equal(alone.audio, together[index].audio), index
    assert np.array_equal(decoder.render(fresh[::-1])[BATCH - 3].audio, together[3].audio)
    tails = [_request(seed, 2.0, stream=200 + seed, context=w.audio[-decoder.sample_rate:])
             for seed, w in enumerate(together[:BATCH])]
    continued = decoder.render(tails[::-1])[::-1]
    assert np.array_equal(decoder.render([tails[6]])[0].audio, continued[6].audio)
    reseeded = _request(0, stream=999)
    assert _corr(decoder.render([reseeded])[0].audio, together[0].audio) < 0.5


def test_windows_of_other_shapes_are_made_apart(decoder):
    """Lengths, contexts and E_m lengths (a style joined to E_m) differ: each window as alone."""
    style = _request(4)
    style.hidden, style.mask = np.concatenate([style.hidden, style.hidden[:9]]), np.concatenate([style.mask,
                                                                                                np.ones(9, np.int64)])
    mixed = [_request(1, 1.0), style, _request(2, 1.7, stream=3)]
    for request, window in zip(mixed, decoder.render(mixed)):
        assert np.array_equal(decoder.render([request])[0].audio, window.audio)
    with pytest.raises(ValueError, match="longer than this Stable Audio 3 model makes"):
        decoder.render([_request(1, decoder.max_seconds + 1)])
    with pytest.raises(ValueError, match=r"channels-last stereo \(samples, 2\)"):
        decoder.render([_request(1, context=np.zeros(decoder.sample_rate, np.float32))])


def test_guidance_for_a_base_checkpoint(decoder):
    """Guidance above 1 runs the empty prompt beside each row, as the pipeline does; the window
    stays batch-invariant."""
    guided = StableAudio3Backend(None, guidance_scale=3.0, batch=BATCH, pipeline=decoder.pipeline)
    requests = [_request(seed, 1.0, stream=seed) for seed in range(3)]
    together = guided.render(requests)
    assert np.array_equal(guided.render(requests[2:])[0].audio, together[2].audio)
    assert not np.array_equal(together[2].audio, decoder.render(requests[2:])[0].audio)
    with pytest.raises(ValueError, match=f"at most {PROMPT_TOKENS} tokens"):
        guided.render([MusicRequest(np.zeros((PROMPT_TOKENS + 1, tiny.T5_DIM), np.float32),
                                    np.ones(PROMPT_TOKENS + 1, np.int64), 1.0, 1)])


def test_a_pipeline_of_another_text_width_is_refused(decoder):
    with pytest.raises(ModelError, match="width 32, but the run's E_m is 768 wide"):
        StableAudio3Backend("tiny", width=768, pipeline=decoder.pipeline)


def test_the_registry_resolves_and_checks_the_decoder(refs, tiny_refs, model_cache, tmp_path):
    """The tiny build (its licence: random weights) or the hub's distilled checkpoint; the text
    space is the decoder's (``t5`` is its folder); a None field leaves every other run's name."""
    assert refs.stable_audio_3.endswith("stable_audio_3") and (refs.musicgen, refs.stable_audio) == (None, None)
    assert refs.t5 == refs.stable_audio_3 and "stable_audio_3" in refs.used()
    assert licences.of(refs.stable_audio_3).source == "built locally with random weights"
    assert models.embedding_dims(refs, rationale=False)["music_dim"] == tiny.T5_DIM
    assert refs.fingerprint() != tiny_refs.fingerprint() and "stable_audio_3" not in tiny_refs.used()
    hub = models.resolve("fast", cache_dir=tmp_path, decoder="stable-audio-3")
    assert hub.stable_audio_3 == hub.t5 == models.STABLE_AUDIO_3 and hub.musicgen is None
    found = licences.licences(hub)
    assert found["stable_audio_3"].commercial is True and "Gemma Terms of Use" in found["stable_audio_3"].note
    assert licences.of("google/t5gemma-b-b-ul2").commercial is True
    assert licences.of("stabilityai/stable-audio-3-medium-base").id == "Stability-AI-Community-License"
    for option, ref, decoder in (("musicgen", tiny_refs.musicgen, "stable-audio-3"),
                                 ("t5", tiny_refs.t5, "stable-audio-3"),
                                 ("stable_audio_3", refs.stable_audio_3, "engine")):
        with pytest.raises(ModelRefError, match=f"^{models.option_of(option)} .*: not used with --decoder {decoder}"):
            models.resolve("tiny", cache_dir=model_cache, decoder=decoder, **{option: ref})


def _broken(refs, tmp_path, name: str, edit) -> str:
    folder = tmp_path / name
    shutil.copytree(refs.stable_audio_3, folder)
    edit(folder)
    return str(folder)


def test_a_folder_must_be_a_stable_audio_3_pipeline_with_its_text_encoder(refs, model_cache, tmp_path):
    def retype(folder):
        config = json.loads((folder / "text_encoder" / "config.json").read_text())
        (folder / "text_encoder" / "config.json").write_text(json.dumps({**config, "model_type": "llama"}))

    cases = {
        "open": (lambda folder: (folder / "model_index.json").write_text('{"_class_name": "StableAudioPipeline"}'),
                 "model_index.json says 'StableAudioPipeline', not a StableAudio3Pipeline"),
        "untokenized": (lambda folder: shutil.rmtree(folder / "tokenizer"),
                        "no tokenizer/tokenizer_config.json: not a pipeline with its text encoder and tokenizer"),
        "unweighted": (lambda folder: (folder / "text_encoder" / "model.safetensors").unlink(),
                       "no weights (*.safetensors or *.bin) in text_encoder/"),
        "llama": (retype, "text_encoder/config.json says model_type 'llama', not a T5 or T5Gemma encoder"),
    }
    for name, (edit, reason) in cases.items():
        folder = _broken(refs, tmp_path, name, edit)
        with pytest.raises(ModelRefError) as refused:
            models.resolve("tiny", cache_dir=model_cache, decoder="stable-audio-3", stable_audio_3=folder)
        assert str(refused.value).startswith(f"--stable-audio-3 {folder}") and reason in str(refused.value)
    copy = _broken(refs, tmp_path / "copy", "stable_audio_3", lambda folder: None)
    given = models.resolve("tiny", cache_dir=model_cache, decoder="stable-audio-3", stable_audio_3=copy)
    assert given.t5 == given.stable_audio_3 == copy
    assert given.fingerprint() == refs.fingerprint()  # the same folder's name and content, wherever it lies


def test_the_tiny_tokenizer_really_tokenizes(refs):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(refs.stable_audio_3, subfolder="tokenizer")
    ids = tok("a calm piano melody under neon lights", add_special_tokens=False)["input_ids"]
    assert len(ids) >= 4 and tok.unk_token_id not in ids and len(set(ids)) > 3
    assert tok.decode(ids) == "a calm piano melody under neon lights"
