"""The retrieval prior: each window conditioned on the music description of the bank caption
nearest its frames (CLIP's image and text towers share a space), with no prior trained."""

import json

import numpy as np
import pytest
from transformers import AutoConfig

import cotvtm
from cotvtm import models
from cotvtm.encoders.clip import ClipEncoder
from cotvtm.encoders.music_text import MusicTextEncoder
from cotvtm.errors import ModelRefError
from cotvtm.prior.bank import SHIPPED, BankError, BankEntry, from_scenes, read_bank, write_bank
from cotvtm.prior.retrieval import RetrievalPrior
from cotvtm.rng import stream_id
from cotvtm.video import media
from cotvtm.video.samples import make_video

DEMO_SCENES = 240  # the demo labels this many generated scenes (cotvtm/demo.py)


@pytest.fixture(scope="module")
def encoders(tiny_refs):
    return ClipEncoder(tiny_refs.clip), MusicTextEncoder(tiny_refs.t5, 64)


@pytest.fixture(scope="module")
def demo_bank(tmp_path_factory):
    return write_bank(from_scenes(DEMO_SCENES), tmp_path_factory.mktemp("bank") / "demo.jsonl")


def _window_embeddings(path, clip: ClipEncoder, short_side: int) -> np.ndarray:
    """E_v of each window of ``path`` as the job makes it: its planned windows' sampled frames."""
    info, windows = media.plan_media_windows(path, path.name, 10.0, 10.0)
    return clip.embed_windows(media.window_frames(path, path.name, info, windows, 8, short_side))


def test_the_shipped_bank_is_the_paper_scene_templates_labelled_offline():
    entries = read_bank(SHIPPED)
    assert entries == from_scenes()  # rebuilt exactly by `python -m cotvtm.prior.bank`
    assert len(entries) > 400 and len({e.caption for e in entries}) == len(entries)


def test_a_bad_bank_is_refused_before_the_run_naming_the_file_and_line(tmp_path):
    bad = tmp_path / "bank.jsonl"
    bad.write_text(json.dumps({"id": "a", "caption": "a quiet lake", "description": "soft piano"}) + "\n{oops\n")
    with pytest.raises(BankError, match="line 2: not valid JSON"):
        read_bank(bad)
    bad.write_text(json.dumps({"id": "a", "caption": "a quiet lake"}) + "\n")
    with pytest.raises(BankError, match="line 1: not an entry with id, caption and description"):
        read_bank(bad)
    bad.write_text(json.dumps({"id": "a", "caption": "a quiet lake", "description": "soft piano"}) + "\n{oops\n")
    with pytest.raises(ModelRefError, match=r"--bank .*line 2"):
        models.resolve("tiny", cache_dir=tmp_path / "models", bank=str(bad))
    with pytest.raises(ModelRefError, match="only used with the retrieval prior"):
        models.resolve("tiny", cache_dir=tmp_path / "models", prior="untrained", bank=str(SHIPPED))


def test_windows_take_the_t5_states_of_their_nearest_captions_description(encoders, demo_bank, tmp_path):
    clip, t5 = encoders
    entries = read_bank(demo_bank)
    frames = np.stack([np.full((8, 32, 32, 3), value, np.uint8) for value in (0, 90, 180, 255)])
    e_v = clip.embed_windows(frames)
    prior = RetrievalPrior(entries, clip, t5)
    streams = [stream_id(0, "v", i, "retrieval") for i in range(4)]
    e_m, mask, explained = prior.sample(e_v, streams)
    keys = clip.embed_texts([e.caption for e in entries])
    for row, (vector, said) in enumerate(zip(e_v, explained)):
        nearest = int(np.argmax(keys @ (vector / np.linalg.norm(vector))))
        want_states, want_mask = t5.encode([entries[nearest].description])
        assert np.array_equal(e_m[row], want_states[0]) and np.array_equal(mask[row], want_mask[0])
        assert said[0] == {"caption": entries[nearest].caption, "description": entries[nearest].description,
                           "score": pytest.approx(said[0]["score"]), "chosen": True}
        assert len(said) == 3 and said[0]["score"] >= said[1]["score"] >= said[2]["score"]

    among = RetrievalPrior(entries, clip, t5, k=8)  # a similarity-weighted draw among the 8 nearest
    together = among.choose(np.repeat(e_v[:1], 64, axis=0), [stream_id(0, "v", i, "retrieval") for i in range(64)])[0]
    alone = [among.choose(e_v[:1], [stream_id(0, "v", i, "retrieval")])[0][0] for i in (0, 17, 63)]
    assert alone == [together[0], together[17], together[63]]  # a window's draw is its own
    assert len(set(together)) > 1  # the windows do not all take the nearest


def test_the_job_conditions_each_window_on_its_nearest_caption_end_to_end(tmp_path, model_cache, ray_session,
                                                                          tiny_refs, encoders, demo_bank):
    """A video of one still frame: the sidecar names the caption nearest to its frames (found here
    with CLIP directly), and a bank holding only that caption gives the same tokens, so the
    window was conditioned on exactly that caption's E_m."""
    clip, _ = encoders
    (tmp_path / "in").mkdir()
    video = make_video(tmp_path / "in" / "still.mp4", duration=2, size="64x48", fps=4, source="color=c=orange")
    short_side = AutoConfig.from_pretrained(tiny_refs.clip).vision_config.image_size
    entries = read_bank(demo_bank)
    keys = clip.embed_texts([e.caption for e in entries])
    [e_v] = _window_embeddings(video, clip, short_side)
    nearest = entries[int(np.argmax(keys @ (e_v / np.linalg.norm(e_v))))]
    only = write_bank([BankEntry("only", nearest.caption, nearest.description)], tmp_path / "only.jsonl")

    said = {}
    for name, bank in (("demo", demo_bank), ("only", only)):
        lines = []
        summary = cotvtm.soundtrack(tmp_path / "in", tmp_path / name, cache_dir=model_cache, bank=str(bank),
                                   echo=lines.append)
        assert summary.ok == 1 and "conditioning: retrieval" in lines[-1]
        [sidecar] = (tmp_path / name).glob("still.*.json")
        said[name] = json.loads(sidecar.read_text())
    [window] = said["demo"]["windows"]
    assert window["explanations"][0]["caption"] == nearest.caption and window["explanations"][0]["chosen"]
    assert said["demo"]["conditioning"].startswith("retrieval") and said["demo"]["note"] is None
    assert said["demo"]["licences"]["bank"]["commercial"] is True
    assert window["tokens_digest"] == said["only"]["windows"][0]["tokens_digest"]
