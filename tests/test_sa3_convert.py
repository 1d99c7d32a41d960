"""`cotvtm convert-stable-audio-3`: an official Stable Audio 3 folder (stable-audio-3's layout) into
a folder diffusers' StableAudio3Pipeline loads. A toy pipeline (diffusers' own classes, random
weights) is written in the official layout and converted back: every tensor comes back equal and
the converted pipeline makes the same audio. Bad folders stop with exit 2 and one line naming the
file and the key, before anything is written."""

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cotvtm import tiny_vocab
from cotvtm.cli import main
from cotvtm.errors import ModelError
from cotvtm.sa3_convert import TEXT_ENCODER_DIR, convert, to_official

SAMPLE_RATE = 8000
COND = 32  # the text width, the DiT's conditioning width and the duration embedding's
SECONDS, STEPS = 2.0, 2
COMPONENTS = ("transformer", "vae", "duration_embedder", "text_encoder")


def _tokenizer():
    """A Gemma tokenizer (T5Gemma's) over the tiny corpus's words, with Gemma's special tokens."""
    from transformers import GemmaTokenizer

    vocab, merges = tiny_vocab.gemma_vocab()
    return GemmaTokenizer(vocab=vocab, merges=merges)


def _text_encoder(vocab_size: int):
    from transformers import T5GemmaConfig, T5GemmaEncoderModel
    from transformers.models.t5gemma.configuration_t5gemma import T5GemmaModuleConfig

    module = T5GemmaModuleConfig(vocab_size=vocab_size, hidden_size=COND, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                                 max_position_embeddings=64, sliding_window=64, layer_types=["full_attention"] * 2)
    return T5GemmaEncoderModel(T5GemmaConfig(encoder=module.to_dict(), decoder=module.to_dict(),
                                             is_encoder_decoder=False))


def _toy_pipeline():
    """Stable Audio 3 at toy size: a 64-wide, 2-layer differential DiT, a SAME autoencoder with 16
    latent channels (64 samples each at 8 kHz), the distilled model's sampler. Every weight is
    moved off its initial value, so that zero-initialised layers also tell a misplaced tensor."""
    from diffusers import (AutoencoderSAME, FlowMatchEulerDiscreteScheduler, StableAudio3DiTModel,
                           StableAudio3DurationEmbedder, StableAudio3Pipeline)

    torch.manual_seed(0)
    tokenizer = _tokenizer()
    models = dict(
        vae=AutoencoderSAME(audio_channels=2, patch_size=16, encoder_channels=8, encoder_c_mults=(6,),
                            encoder_strides=(4,), encoder_transformer_depths=(2,), latent_dim=16, dim_heads=16,
                            ff_mult=2, sampling_rate=SAMPLE_RATE),
        transformer=StableAudio3DiTModel(io_channels=16, embed_dim=64, depth=2, num_heads=1, cond_token_dim=COND,
                                         global_cond_dim=COND, local_add_cond_dim=17, ff_mult=2.0, num_memory_tokens=4),
        duration_embedder=StableAudio3DurationEmbedder(output_dim=COND),
        text_encoder=_text_encoder(len(tokenizer)))
    with torch.no_grad():
        for model in models.values():
            for parameter in model.parameters():
                parameter.add_(0.05 * torch.randn_like(parameter))
        models["vae"].bottleneck.running_std.fill_(1.25)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0, stochastic_sampling=True)
    return StableAudio3Pipeline(tokenizer=tokenizer, scheduler=scheduler, **models)


def _render(pipeline) -> torch.Tensor:
    embeds = torch.randn(1, 6, COND, generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    return pipeline(prompt_embeds=embeds, encoder_attention_mask=mask, duration=SECONDS, num_inference_steps=STEPS,
                    generator=torch.Generator().manual_seed(2)).audios


@pytest.fixture(scope="module")
def toy():
    from cotvtm.quiet import quiet_diffusers

    quiet_diffusers()
    pipeline = _toy_pipeline()
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.fixture(scope="module")
def official(toy, tmp_path_factory):
    return to_official(toy, tmp_path_factory.mktemp("sa3") / "stable-audio-3-toy")


def _aligned(pipeline):
    """The pipeline with its tensors copied: tensors mapped from a safetensors file can start off a
    64-byte boundary, where the CPU kernels sum in another order (about 1e-7 apart); copies make
    the comparison exact."""
    with torch.no_grad():
        for component in COMPONENTS:
            for tensor in (*getattr(pipeline, component).parameters(), *getattr(pipeline, component).buffers()):
                tensor.data = tensor.data.clone()
    return pipeline


def _config(component) -> dict:
    return {key: value for key, value in json.loads(json.dumps(dict(component.config))).items()
            if not key.startswith("_")}


def test_the_official_layout_converts_back_to_the_same_tensors_and_audio(toy, official, tmp_path):
    from diffusers import StableAudio3Pipeline

    done = convert(official, tmp_path / "sa3")
    back = _aligned(StableAudio3Pipeline.from_pretrained(done.dst))
    back.set_progress_bar_config(disable=True)
    for component in COMPONENTS:
        mine, theirs = getattr(toy, component).state_dict(), getattr(back, component).state_dict()
        assert mine.keys() == theirs.keys(), component
        unequal = [key for key in mine if not torch.equal(mine[key], theirs[key])]
        assert not unequal, (component, unequal)
        assert done.tensors[component] == len(mine)
    for component in ("transformer", "vae", "duration_embedder", "scheduler"):
        assert _config(getattr(back, component)) == _config(getattr(toy, component)), component
    assert done.steps == 8 and back.scheduler.config.stochastic_sampling
    assert back.tokenizer("a calm piano piece").input_ids == toy.tokenizer("a calm piano piece").input_ids
    expected, converted = _render(toy), _render(back)
    assert expected.shape == (1, 2, int(SECONDS * SAMPLE_RATE)) and expected.abs().max() > 0
    assert torch.equal(expected, converted)


def test_the_official_file_keeps_the_reference_names_and_order(toy, official):
    """stable-audio-3's names, and its fused self-attention order [q | k | v | q2 | k2] where
    diffusers has [q1 | q2 | k1 | k2 | v]."""
    tensors = load_file(official / "model.safetensors")
    mine = toy.transformer.state_dict()["transformer_blocks.1.self_attn.to_qkv.weight"]
    q, q2, k, k2, v = mine.chunk(5)
    assert torch.equal(tensors["model.model.transformer.layers.1.self_attn.to_qkv.weight"],
                       torch.cat([q, k, v, q2, k2]))
    assert torch.equal(tensors["conditioner.conditioners.seconds_total.embedder.embedding.1.weight"],
                       toy.duration_embedder.linear.weight)
    assert torch.equal(tensors["pretransform.model.decoder.layers.1.weight"], toy.vae.decoder.proj.weight)
    assert torch.equal(tensors["pretransform.model.bottleneck.scaling_factor"], toy.vae.bottleneck.scale)
    assert "pretransform.model.encoder.layers.0.transformers.1.rope.inv_freq" in tensors
    assert (official / TEXT_ENCODER_DIR / "model.safetensors").is_file()


def _tamper(official, tmp_path, change):
    src = tmp_path / "official"
    shutil.copytree(official, src)
    change(src)
    return src


def _tensors(edit):
    """A change to the official weights file."""
    def change(src):
        tensors = load_file(src / "model.safetensors")
        edit(tensors)
        save_file(tensors, src / "model.safetensors")
    return change


def _config_set(value, *paths):
    """A change to the official config: ``value`` at each dotted path."""
    def change(src):
        config = json.loads((src / "model_config.json").read_text())
        for path in paths:
            *parents, last = path.split(".")
            node = config
            for part in parents:
                node = node[part]
            node[last] = value
        (src / "model_config.json").write_text(json.dumps(config))
    return change


CASES = {
    "missing config": (lambda src: (src / "model_config.json").unlink(), "model_config.json: missing"),
    "unknown key": (_tensors(lambda t: t.update({"model.model.transformer.layers.0.extra.weight": torch.ones(2)})),
                    "model.safetensors: model.model.transformer.layers.0.extra.weight: unknown key"),
    "missing key": (_tensors(lambda t: t.pop("pretransform.model.decoder.layers.1.weight")),
                    "model.safetensors: pretransform.model.decoder.layers.1.weight: missing"),
    "shape mismatch": (_tensors(lambda t: t.update({"model.model.transformer.memory_tokens": torch.ones(3, 64)})),
                       "model.safetensors: model.model.transformer.memory_tokens: shape [3, 64] where "
                       "diffusers' transformer memory_tokens is [4, 64]"),
    "another rotary": (_tensors(lambda t: t["pretransform.model.decoder.layers.3.transformers.0.rope.inv_freq"]
                                .mul_(2)),
                       "decoder.layers.3.transformers.0.rope.inv_freq: differs from what diffusers computes"),
    "not safetensors": (lambda src: (src / "model.safetensors").write_bytes(b"\xff" * 64),
                        "model.safetensors: not a readable safetensors file"),
    "text encoder key": (lambda src: save_file({"model.encoder.norm.weight": torch.ones(COND)},
                                               src / TEXT_ENCODER_DIR / "model.safetensors"),
                         f"{TEXT_ENCODER_DIR}/model.safetensors: model.encoder.embed_tokens.weight: missing"),
    "no text encoder": (lambda src: shutil.rmtree(src / TEXT_ENCODER_DIR),
                        f"{TEXT_ENCODER_DIR}: missing: the text encoder's folder"),
    "another sampler": (_config_set("v", "model.diffusion.diffusion_objective"),
                        "model_config.json: model.diffusion.diffusion_objective: 'v'"),
    "another route": (_config_set(["prompt"], "model.diffusion.global_cond_ids"),
                      "model_config.json: model.diffusion.global_cond_ids: ['prompt']"),
    "one-sided window": (_config_set([1, 0], *(f"model.pretransform.config.{side}.config.sliding_window"
                                              for side in ("encoder", "decoder"))),
                         "model.pretransform.config.encoder.config.sliding_window: [1, 0]"),
    "a size that is not one": (_config_set("wide", "model.diffusion.config.embed_dim"),
                               "model_config.json: describes a model diffusers cannot build"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_folder_is_exit_2_naming_the_file_and_the_key(case, official, tmp_path, capsys):
    change, message = CASES[case]
    src = _tamper(official, tmp_path, change)
    dst = tmp_path / "out" / "sa3"
    assert main(["convert-stable-audio-3", str(src), str(dst)]) == 2
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith("cotvtm: error: ") and message in line, line
    assert "Traceback" not in captured.err and not captured.out
    assert not dst.exists() and (not dst.parent.exists() or not list(dst.parent.iterdir()))  # no staging left


class _Trap:
    """Unpickling this creates a file: a test that a pickle is never loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_a_pickle_checkpoint_is_refused_unopened(official, tmp_path, capsys):
    marker = tmp_path / "unpickled"
    src = _tamper(official, tmp_path, lambda src: (src / "model.safetensors").unlink())
    (src / "model.ckpt").write_bytes(pickle.dumps(_Trap(marker)))
    assert main(["convert-stable-audio-3", str(src), str(tmp_path / "sa3")]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "model.ckpt: a pickle" in line and "model.safetensors" in line
    assert not marker.exists() and not (tmp_path / "sa3").exists()


def test_a_filled_destination_is_left_alone(official, tmp_path, capsys):
    dst = tmp_path / "sa3"
    dst.mkdir()
    (dst / "mine.txt").write_text("keep")
    assert main(["convert-stable-audio-3", str(official), str(dst)]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert [p.name for p in dst.iterdir()] == ["mine.txt"]


def test_the_command_prints_what_it_wrote(official, tmp_path, capsys):
    dst = tmp_path / "sa3"
    dst.mkdir()  # an empty folder is taken
    assert main(["convert-stable-audio-3", str(official), str(dst)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {dst} (8 steps by default)" in out and "transformer" in out
    assert sorted(p.name for p in dst.iterdir()) == ["duration_embedder", "model_index.json", "scheduler",
                                                     "text_encoder", "tokenizer", "transformer", "vae"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_presets_hub_id_is_converted_once_from_the_hub_cache(official, tmp_path):
    """``stabilityai/stable-audio-3-medium`` as the hub delivers it (the official layout, here the toy
    one in a hub cache laid out as huggingface_hub lays it out) loads through the registry: converted
    into the project's cache on first use, then reused; the run's text encoder comes from it."""
    from cotvtm import models

    hub = tmp_path / "hub"
    repo = hub / f"models--{models.STABLE_AUDIO_3.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(official, repo / "snapshots" / commit)
    folder = models.diffusers_folder(models.STABLE_AUDIO_3, cache_dir=tmp_path / "cache", hub_cache=str(hub))
    assert folder == str(tmp_path / "cache" / "stable-audio-3" / "stabilityai--stable-audio-3-medium")
    assert (Path(folder) / "model_index.json").is_file()
    made = (Path(folder) / "model_index.json").stat().st_mtime_ns
    again = models.diffusers_folder(models.STABLE_AUDIO_3, cache_dir=tmp_path / "cache", hub_cache=str(hub))
    assert again == folder and (Path(folder) / "model_index.json").stat().st_mtime_ns == made  # not converted again
    assert models.diffusers_folder("someone/other") == "someone/other"  # diffusers' own layout: as it is
    with pytest.raises(ModelError, match="cannot download stabilityai/stable-audio-3-medium-base to convert it"):
        models.diffusers_folder("stabilityai/stable-audio-3-medium-base", cache_dir=tmp_path / "cache",
                                hub_cache=str(tmp_path / "empty"))
