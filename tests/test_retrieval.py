"""The retrieval prior: each window conditioned on the music description of the bank caption
nearest its frames (CLIP's image and text towers share a space), with no prior trained."""

import json
from dataclasses import replace

import numpy as np
import pytest
from transformers import AutoConfig

import cotvtm
from cotvtm import models
from cotvtm.encoders.clip import ClipEncoder
from cotvtm.encoders.music_text import MusicTextEncoder
from cotvtm.errors import ModelRefError
from cotvtm.prior.bank import SHIPPED, BankError, BankEntry, read_bank, write_bank
from cotvtm.prior.retrieval import FEELING_PROMPTS, SURE, RetrievalPrior
from cotvtm.report.page import _explanations
from cotvtm.rng import stream_id
from cotvtm.teacher.bank import from_scenes
from cotvtm.video import media
from cotvtm.video.samples import make_video

DEMO_SCENES = 240  # the demo labels this many generated scenes (cotvtm/demo.py)
FAMILIES = ("joyful", "calm", "melancholic", "tense", "romantic", "mysterious", "energetic", "epic")
MOODY = [BankEntry("lake", "a quiet lake at dawn", "soft ambient piano", "calm"),  # a bank stating feelings
         BankEntry("meadow", "a meadow under a slow sky", "gentle acoustic guitar", "calm"),
         BankEntry("alley", "a dark alley at night", "suspenseful low strings", "tense"),
         BankEntry("chase", "a car chase through a city", "pounding drums and brass stabs", "Tense "),
         BankEntry("party", "a sunny beach party", "cheerful upbeat pop", "joyful")]
STATION = BankEntry("station", "a crowded train station", "busy rhythmic synths")  # states no feeling


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
    assert entries == from_scenes()  # rebuilt exactly by `python -m cotvtm.teacher.bank`
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


@pytest.fixture(scope="module")
def felt_bank(demo_bank, tmp_path_factory):
    """The demo bank with the eight feelings in turn, whatever the bank's own."""
    entries = [replace(e, feeling=FAMILIES[i % len(FAMILIES)]) for i, e in enumerate(read_bank(demo_bank))]
    return write_bank(entries, tmp_path_factory.mktemp("bank") / "felt.jsonl")


def test_windows_take_the_t5_states_of_their_nearest_captions_description(encoders, demo_bank, tmp_path):
    """A bank that states no feelings: each window takes the caption nearest its frames."""
    clip, t5 = encoders
    entries = [replace(e, feeling=None) for e in read_bank(demo_bank)]
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


def _feeling_vectors(clip: ClipEncoder, names: list[str]) -> np.ndarray:
    """Each feeling as the normalised mean of its prompts' CLIP text vectors."""
    mean = np.stack([clip.embed_texts([p.format(name) for p in FEELING_PROMPTS]).mean(axis=0) for name in names])
    return mean / np.linalg.norm(mean, axis=1, keepdims=True)


def _probabilities(clip: ClipEncoder, vectors: np.ndarray, e_v: np.ndarray) -> np.ndarray:
    """A softmax over the feelings of their cosines with E_v, at the CLIP model's own logit scale."""
    logits = float(clip.model.logit_scale.detach().exp()) * (vectors @ (e_v / np.linalg.norm(e_v)))
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


def _toward(start: np.ndarray, vectors: np.ndarray, feeling: int) -> list[np.ndarray]:
    """E_v moved ever further from ``start`` toward one feeling (away from the feelings' mean)."""
    return [start + step * (vectors[feeling] - vectors.mean(axis=0)) for step in np.linspace(0, 6, 121)]


def test_the_mood_the_frames_show_chooses_among_the_captions_of_that_feeling(encoders):
    """Frames whose nearest caption by cosine is a calm one, but which score "tense" highest,
    take the nearest tense caption's description; the explanation and the report say so."""
    clip, t5 = encoders
    prior, names = RetrievalPrior(MOODY, clip, t5), ["calm", "joyful", "tense"]
    keys, vectors = clip.embed_texts([e.caption for e in MOODY]), _feeling_vectors(clip, names)
    e_v = next(e for e in _toward(keys[0], vectors, names.index("tense"))
               if MOODY[int(np.argmax(keys @ e))].feeling == "calm"
               and names[int(np.argmax(_probabilities(clip, vectors, e)))] == "tense")
    felt = _probabilities(clip, vectors, e_v)
    want = max((i for i, e in enumerate(MOODY) if e.feeling.strip().lower() == "tense"), key=lambda i: keys[i] @ e_v)
    e_m, _, [said] = prior.sample(e_v[None], [stream_id(0, "v", 0, "retrieval")])
    assert np.array_equal(e_m[0], t5.encode([MOODY[want].description])[0][0])
    assert said[0]["caption"] == MOODY[want].caption and said[0]["chosen"]
    assert [item["feeling"] for item in said] == ["tense", "tense"]  # drawn among the tense captions alone
    assert said[0]["feelings"] == [{"feeling": names[i], "probability": pytest.approx(float(felt[i]), abs=1e-4)}
                                   for i in np.argsort(-felt)]
    page = _explanations(said)
    assert f"mood seen: <strong>tense {felt[2]:.0%}</strong> · then " in page and "a dark alley at night · tense" in page
    odd = _explanations([{"description": "x", "feelings": [{"feeling": "<b>", "probability": float("nan")}, 3]}])
    assert "mood seen: <strong>&lt;b&gt;</strong></span>" in odd  # a damaged sidecar: what can be read


def test_captions_stating_no_feeling_are_drawn_among_while_the_mood_is_unsure(encoders):
    """A caption that states no feeling stays eligible unless the feeling seen is ``SURE`` times
    as likely as the runner-up; a bank with a single feeling is never sure."""
    clip, t5 = encoders
    bank, names = [MOODY[0], MOODY[2], MOODY[3], STATION], ["calm", "tense"]
    prior, keys, vectors = RetrievalPrior(bank, clip, t5), clip.embed_texts([e.caption for e in bank]), \
        _feeling_vectors(clip, names)
    found = {}
    for e_v in _toward(keys[3], vectors, names.index("tense")):
        felt = _probabilities(clip, vectors, e_v)
        if int(np.argmax(keys @ e_v)) == 3 and felt[1] > felt[0]:  # nearest the station, looking tense
            found.setdefault(bool(felt[1] >= SURE * felt[0]), e_v)
    assert set(found) == {False, True}
    assert prior.choose(found[False][None], [0])[0] == [3]
    assert prior.choose(found[True][None], [0])[0] == [max((1, 2), key=lambda i: keys[i] @ found[True])]
    assert RetrievalPrior([MOODY[0], STATION], clip, t5).choose(keys[3][None], [0])[0] == [1]


def test_a_windows_feeling_and_draw_are_its_own_in_any_batch(encoders, felt_bank):
    clip, t5 = encoders
    frames = np.stack([np.full((8, 32, 32, 3), value, np.uint8) for value in (0, 90, 180, 255)])
    windows = np.repeat(clip.embed_windows(frames), 16, axis=0)
    among = RetrievalPrior(read_bank(felt_bank), clip, t5, k=8)
    streams = [stream_id(0, "v", i, "retrieval") for i in range(len(windows))]
    together = among.sample(windows, streams)[2]
    for i in (0, 17, 42, 63):
        assert among.sample(windows[i: i + 1], streams[i: i + 1])[2] == [together[i]]
    for said in together:  # each draw among the captions of the feeling seen
        assert {item["feeling"] for item in said} == {said[0]["feelings"][0]["feeling"]}
    assert len({said[0]["caption"] for said in together[:16]}) > 1  # one picture, draws of its own


def test_the_job_conditions_each_window_on_the_caption_its_mood_chooses_end_to_end(tmp_path, model_cache,
                                                                                  ray_session, tiny_refs,
                                                                                  encoders, felt_bank):
    """A video of one still frame: the sidecar names the caption and the feelings the prior finds
    for its frames (found here with the prior on CLIP directly), and a bank holding only that
    caption gives the same tokens, so the window was conditioned on exactly that caption's E_m."""
    clip, t5 = encoders
    (tmp_path / "in").mkdir()
    video = make_video(tmp_path / "in" / "still.mp4", duration=2, size="64x48", fps=4, source="color=c=orange")
    short_side = AutoConfig.from_pretrained(tiny_refs.clip).vision_config.image_size
    entries = read_bank(felt_bank)
    e_v = _window_embeddings(video, clip, short_side)
    [pick], _, [felt] = RetrievalPrior(entries, clip, t5).choose(e_v, [0])
    chosen = entries[pick]
    only = write_bank([chosen], tmp_path / "only.jsonl")

    said = {}
    for name, bank in (("demo", felt_bank), ("only", only)):
        lines = []
        summary = cotvtm.soundtrack(tmp_path / "in", tmp_path / name, cache_dir=model_cache, bank=str(bank),
                                   echo=lines.append)
        assert summary.ok == 1 and "conditioning: retrieval" in lines[-1]
        [sidecar] = (tmp_path / name).glob("still.*.json")
        said[name] = json.loads(sidecar.read_text())
    [window] = said["demo"]["windows"]
    first = window["explanations"][0]
    assert first["caption"] == chosen.caption and first["chosen"] and first["feeling"] == chosen.feeling
    assert [f["feeling"] for f in first["feelings"]] == [sorted(FAMILIES)[i] for i in np.argsort(-felt)[:3]]
    assert first["feelings"][0]["probability"] == pytest.approx(float(felt.max()), abs=1e-3)
    assert said["demo"]["conditioning"].startswith("retrieval") and said["demo"]["note"] is None
    assert said["demo"]["licences"]["bank"]["commercial"] is True
    assert window["tokens_digest"] == said["only"]["windows"][0]["tokens_digest"]
