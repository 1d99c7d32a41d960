"""The offline teacher: deterministic, the LLM's schema, and rules that follow the caption."""

import json

import pytest

from cotvtm.teacher.ingest import CaptionItem
from cotvtm.teacher.offline import MODEL, TEACHER, OfflineTeacher, reason
from cotvtm.teacher.records import LabelRecord
from cotvtm.teacher.scenes import sample_scenes, write_description
from cotvtm.teacher.schema import CotAnswer, DirectAnswer, parse_answer, parse_answer_format, x_mt, x_rt

BALLOON = "A colorful hot air balloon floats over green hills at sunrise."


def test_same_caption_same_record():
    teacher = OfflineTeacher()
    item = CaptionItem("b1", BALLOON, media="/data/b1.jpg", source="m.jsonl")
    first, second = teacher.label(item), OfflineTeacher().label(item)
    assert first == second
    assert first.to_json() == second.to_json()


@pytest.mark.parametrize("version, answer_format", [("cot-paper-v1", "paper"), ("cot-v1", "cot-v1")])
def test_record_is_the_llm_schema_and_says_it_is_offline(version, answer_format):
    record = OfflineTeacher(prompt=version).label(CaptionItem("b1", BALLOON, media="/data/b1.jpg", source="m.jsonl"))
    assert isinstance(record, LabelRecord)
    assert (record.teacher, record.model, record.prompt_version, record.status) == (TEACHER, MODEL, version, "ok")
    assert TEACHER == "offline-rules"
    assert (record.id, record.caption, record.media, record.source) == ("b1", BALLOON, "/data/b1.jpg", "m.jsonl")
    answer, found = parse_answer_format(record.raw)  # the raw text parses exactly like an LLM's answer would
    assert found == record.answer_format == answer_format
    assert isinstance(answer, CotAnswer) and answer.model_dump() == record.parsed
    assert record.x_rt == x_rt(answer) and record.x_mt == x_mt(answer)
    assert record.x_rt.startswith("Step 1: ") and "Music elements: genre: " in record.x_rt
    assert record.usage == {"prompt_tokens": 0, "completion_tokens": 0}
    assert LabelRecord.from_dict(json.loads(record.to_json())) == record


@pytest.mark.parametrize("caption, emotion, dynamic, genre", [
    (BALLOON, "joyful", "slow", "upbeat acoustic pop"),
    ("Two police cars chase a motorbike through a dark street at night.", "tense", "fast", "cinematic thriller"),
    ("A quiet lake at dawn, calm and still.", "calm", "slow", "ambient"),
    ("A crowd cheering and dancing at a concert under neon lights.", "energetic", "fast", "electronic dance"),
    ("An old man sits alone in an empty grey room.", "melancholic", "slow", "neo-classical"),
])
def test_rules_follow_the_caption(caption, emotion, dynamic, genre):
    answer = reason(caption)
    assert answer.step1.visual_elements.emotion == emotion
    assert answer.step1.visual_elements.dynamic.startswith(dynamic)
    assert answer.step2.music_elements.genre == genre
    assert genre in answer.step3.music_description


def test_colour_words_change_the_timbre():
    warm = reason("A red and golden field.").step2.music_elements.instruments
    cool = reason("A blue and icy field.").step2.music_elements.instruments
    assert "mellow electric piano" in warm and "glassy bells" in cool


def test_a_caption_with_no_known_words_still_gets_a_full_answer():
    answer = reason("Zxq vrrb.")
    assert answer.step1.visual_elements.object == "the scene as a whole"
    assert answer.step2.music_elements.rhythm.startswith("moderate tempo")


def test_direct_mode_gives_only_the_description():
    record = OfflineTeacher(cot=False).label(CaptionItem("x", BALLOON))
    assert record.prompt_version == "direct-v1" and record.x_rt == ""
    assert isinstance(parse_answer(record.raw, cot=False), DirectAnswer)
    assert record.x_mt == reason(BALLOON).step3.music_description


def test_every_generated_scene_gets_a_valid_label():
    teacher = OfflineTeacher()
    for scene in sample_scenes(200, seed=3):
        record = teacher.label(CaptionItem(scene.id, write_description(scene)))
        assert record.status == "ok" and record.x_mt and record.x_rt
