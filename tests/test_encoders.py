"""Encoders: the bidirectional rationale encoder, E_m from MusicGen's T5, and the embedding job."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cotvtm.encoders.music_text import MusicTextEncoder
from cotvtm.encoders.rationale import RationaleEncoder
from cotvtm.video.samples import make_video

TEXTS = ["a calm piano piece with soft strings", "energetic rock drums under neon lights at night"]


@pytest.fixture(scope="module")
def rationale(tiny_refs):
    return RationaleEncoder(tiny_refs.rationale)


def test_rationale_encoder_is_bidirectional(rationale):
    """The first text token's state must depend on later tokens (a causal model's would not)."""
    tokens = rationale.tokenizer([rationale.instruction + t for t in ["a calm piano", "a calm drums"]],
                                 return_tensors="pt", padding=True)
    from cotvtm.encoders.rationale import _bidirectional_mask

    with torch.inference_mode():
        hidden = rationale.model(input_ids=tokens.input_ids,
                                 attention_mask=_bidirectional_mask(tokens.attention_mask, torch.float32))
    first = rationale._prefix  # first token after the instruction
    assert not torch.allclose(hidden.last_hidden_state[0, first], hidden.last_hidden_state[1, first])


def test_rationale_embeddings_ignore_batch_padding(rationale):
    together = rationale.encode(TEXTS)
    alone = np.concatenate([rationale.encode([t]) for t in TEXTS])
    assert together.shape == (2, rationale.dim)
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert not np.allclose(together[0], together[1])


def test_music_embedding_is_fixed_length_zero_padded_t5_states(tiny_refs):
    encoder = MusicTextEncoder(tiny_refs.t5, length=16)
    states, mask = encoder.encode(TEXTS + ["piano " * 40])
    assert states.shape == (3, 16, encoder.dim) and mask.shape == (3, 16)
    assert mask[2].all()  # long text truncated to the length
    assert not mask[0].all() and np.all(states[0][mask[0] == 0] == 0)
    from cotvtm.models import load_t5

    model, tokenizer = load_t5(tiny_refs.t5)
    tokens = tokenizer(TEXTS[:1], return_tensors="pt")
    with torch.inference_mode():
        direct = model(**tokens).last_hidden_state[0].numpy()
    np.testing.assert_allclose(states[0][: len(direct)], direct, atol=1e-5)


def test_embedding_job_writes_shards_with_media_and_caption_rows(tmp_path, tiny_refs, ray_session):
    from cotvtm.training.embed import run_embed
    from cotvtm.teacher.build import build_labels as label
    from cotvtm.teacher.settings import BuildConfig
    from cotvtm.training.shards import load_split, read_index

    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(tmp_path / "pic.png")
    make_video(tmp_path / "clip.mp4", duration=3)
    manifest = tmp_path / "captions.jsonl"
    rows = [{"id": "img", "caption": "a bright white wall", "image": str(tmp_path / "pic.png")},
            {"id": "vid", "caption": "a test pattern with a counter", "video": str(tmp_path / "clip.mp4")},
            {"id": "txt", "caption": "a red car drives through a rainy city at night"},
            {"id": "bad", "caption": "a dancer spins", "image": str(tmp_path / "missing.png")}]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    labels = label(BuildConfig(out=str(tmp_path / "labels"), manifests=(str(manifest),)),
                   echo=lambda _: None)
    index = run_embed(labels.labels_dir, str(tmp_path / "shards"), tiny_refs, music_len=12)
    assert index.count == 4 and index.dims["music_len"] == 12 and index.music_std > 0
    assert read_index(tmp_path / "shards").encoders["clip"] == tiny_refs.clip
    import ray.data

    table = ray.data.read_parquet(str(tmp_path / "shards" / "data")).take_all()
    by_id = {row["id"]: row for row in table}
    assert by_id["img"]["visual_source"] == "image" and by_id["vid"]["visual_source"] == "video"
    assert by_id["txt"]["visual_source"] == "caption" and by_id["bad"]["visual_source"].startswith("caption")
    assert by_id["txt"]["e_m"].shape == (12, 32) and by_id["txt"]["e_r"].shape == (32,)
    assert not np.allclose(by_id["img"]["e_v"], by_id["txt"]["e_v"])
    train, val = load_split(tmp_path / "shards", 0.5)
    assert train.count() + val.count() == 4
