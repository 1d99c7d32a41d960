"""The tiny preset: real architectures, local tokenizers, deterministic, loaded via from_pretrained."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cotvtm import models, tiny
from cotvtm.cli import main
from cotvtm.errors import ModelError


def test_tiny_preset_builds_every_component(tiny_refs):
    root = Path(tiny_refs.clip).parent  # the prior is built too, though the run's default is retrieval
    for name in tiny.COMPONENTS:
        assert (root / name / "config.json").exists()
    assert tiny_refs.prior == models.RETRIEVAL


def test_tiny_build_is_deterministic_and_seeded(tmp_path, tiny_refs):
    again = models.resolve("tiny", cache_dir=tmp_path, seed=0)
    with pytest.warns(FutureWarning, match="--seed is renamed --tiny-seed"):  # build-tiny's earlier flag
        assert main(["build-tiny", "--cache-dir", str(tmp_path), "--seed", "1"]) == 0
    other = models.resolve("tiny", cache_dir=tmp_path, seed=1)  # what the command built
    first = load_file(f"{tiny_refs.musicgen}/model.safetensors")
    second = load_file(f"{again.musicgen}/model.safetensors")
    third = load_file(f"{other.musicgen}/model.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], third[k]) for k in first)
    assert tiny_refs.fingerprint() == again.fingerprint() != other.fingerprint()


def test_t5_dir_holds_musicgens_own_text_encoder(tiny_refs):
    encoder, _ = models.load_t5(tiny_refs.t5)
    musicgen, _ = models.load_musicgen(tiny_refs.musicgen)
    ours, theirs = encoder.state_dict(), musicgen.text_encoder.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.parametrize("component", ["clip", "t5", "rationale"])
def test_local_tokenizers_really_tokenize(tiny_refs, component):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(getattr(tiny_refs, component))
    ids = tok("a calm piano melody under neon lights", add_special_tokens=False)["input_ids"]
    assert len(ids) >= 4 and tok.unk_token_id not in ids
    assert "piano" in tok.decode(ids).replace(" ", "") and len(set(ids)) > 3


def test_unknown_preset_and_missing_model_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="unknown model preset"):
        models.resolve("huge")
    with pytest.raises(ModelError, match="cannot load CLIP"):
        models.load_clip(str(tmp_path / "nowhere"))


def test_the_paper_preset_is_section_4_2s_checkpoints():
    """CoT-VTM Section 4.2: clip-vit-base-patch32, LLM2Vec-Meta-Llama-3-8B-Instruct-mntp, T5-base, musicgen-large."""
    from cotvtm.models import PRESETS

    paper = PRESETS["paper"]
    assert (paper.clip, paper.t5, paper.musicgen) == ("openai/clip-vit-base-patch32", "google-t5/t5-base",
                                                      "facebook/musicgen-large")
    assert paper.rationale == "McGill-NLP/LLM2Vec-Meta-Llama-3-8B-Instruct-mntp"
