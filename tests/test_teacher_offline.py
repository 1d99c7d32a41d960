"""The offline teacher: deterministic, the LLM's schema, and rules that follow the caption."""

import json
import re

import pytest

from cotvtm.teacher.ingest import CaptionItem
from cotvtm.teacher.coherence import contradiction, entry_problems
from cotvtm.teacher.offline import (COLOUR_WORDS, FAMILIES, FEELINGS, GENRE, MODEL, MOTION_WORDS, SHADES, TEACHER,
                                    TEMPO_RANGE, OfflineTeacher, feeling_family, find_feeling, reason, tempo)
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
    assert TEACHER == "offline-rules" and MODEL != "offline-rules-v1"  # labels of the first rules are not reused
    assert (record.id, record.caption, record.media, record.source) == ("b1", BALLOON, "/data/b1.jpg", "m.jsonl")
    answer, found = parse_answer_format(record.raw)  # the raw text parses exactly like an LLM's answer would
    assert found == record.answer_format == answer_format
    assert isinstance(answer, CotAnswer) and answer.model_dump() == record.parsed
    assert record.x_rt == x_rt(answer) and record.x_mt == x_mt(answer)
    assert record.x_rt.startswith("Step 1: ") and "Music elements: genre: " in record.x_rt
    assert record.usage == {"prompt_tokens": 0, "completion_tokens": 0}
    assert LabelRecord.from_dict(json.loads(record.to_json())) == record


@pytest.mark.parametrize("caption, emotion, dynamic", [
    (BALLOON, "joyful", "slow"),
    ("Two police cars chase a motorbike through a dark street at night.", "tense", "fast"),
    ("A quiet lake at dawn, calm and still.", "calm", "slow"),
    ("A crowd cheering and dancing at a concert under neon lights.", "energetic", "fast"),
    ("An old man sits alone in an empty grey room.", "melancholic", "slow"),
])
def test_rules_follow_the_caption(caption, emotion, dynamic):
    answer = reason(caption)
    assert answer.step1.visual_elements.emotion == emotion
    assert answer.step1.visual_elements.dynamic.startswith(dynamic)
    assert answer.step2.music_elements.genre == GENRE[emotion]
    assert GENRE[emotion] in answer.step3.music_description
    assert entry_problems(caption, answer.step3.music_description) == []


@pytest.mark.parametrize("scene, statement, emotion, decided_by", [
    ("A birthday party with balloons and a festival crowd.", " The whole scene feels tense.", "tense", "'feels tense'"),
    ("A sunny beach with a cheerful child", ", heavy with quiet sorrow.", "melancholic", "'heavy with quiet sorrow'"),
    ("A storm over the harbour", " conveys a joyful mood.", "joyful", "'conveys a joyful'"),
    ("A burning building in a thunderstorm.", " A serene scene.", "calm", "'serene scene'"),
])
def test_a_stated_feeling_decides_over_the_other_words(scene, statement, emotion, decided_by):
    """Each scene alone gives another family; the feeling the caption states wins."""
    assert find_feeling(scene).family != emotion
    answer = reason(scene + statement)
    assert answer.step1.visual_elements.emotion == emotion
    assert f"The caption states the feeling ({decided_by})" in answer.step1.reasoning
    assert GENRE[emotion] in answer.step3.music_description


@pytest.mark.parametrize("caption, emotion", [
    ("A man slamming a door in a sunny kitchen.", "tense"),  # B.2's angry behaviours
    ("Someone crying quietly at a party.", "melancholic"),  # sad
    ("A crowd cheering by the lake.", "energetic"),  # excited
    ("A person meditating in a busy street.", "calm"),  # calm
    ("A couple kissing under the moon.", "romantic"),
])
def test_behaviours_name_a_feeling_when_none_is_stated(caption, emotion):
    feeling = find_feeling(caption)
    assert (feeling.family, feeling.source) == (emotion, "named")
    assert f"words such as '{feeling.words[0]}' convey" in reason(caption).step1.reasoning


def test_ties_go_to_the_feeling_named_first():
    assert find_feeling("A happy and sad day.").family == "joyful"
    assert find_feeling("A sad and happy day.").family == "melancholic"


def test_free_text_emotions_map_to_families():
    assert [feeling_family(t) for t in ("Quiet longing", "awe and wonder", "tense", "purple")] == \
        ["melancholic", "epic", "tense", None]
    assert all(feeling_family(family) == family for family in FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
def test_tempo_stays_in_the_familys_range_and_the_music_never_contradicts_itself(family):
    """Slow, moderate and fast motion move the tempo up within the family's range, never out."""
    low, high = TEMPO_RANGE[family]
    moving = {w for words in MOTION_WORDS.values() for w in words}
    word = next(w for w in FEELINGS[family] if w not in moving)
    for colour, colours in COLOUR_WORDS.items():
        bpms = []
        for motion in ("slow", "moderate", "fast"):
            action = MOTION_WORDS[motion][0] if motion in MOTION_WORDS else "stands"
            answer = reason(f"A figure {action} in {colours[0]} light. The whole scene feels {word}.")
            assert answer.step1.visual_elements.dynamic.startswith(motion)
            bpms.append(int(re.search(r"(\d+) BPM", answer.step2.music_elements.rhythm).group(1)))
            assert contradiction(answer.step3.music_description) is None, answer.step3.music_description
        assert low == bpms[0] < bpms[1] < bpms[2] == high, (colour, bpms)


def test_a_stated_feeling_with_a_shade_names_it():
    for word, shade in SHADES.items():
        caption = f"A harbour at dusk. The whole scene feels {word}."
        answer = reason(caption)
        assert entry_problems(caption, answer.step3.music_description) == []  # the shade keeps its family
        assert answer.step3.music_description.startswith(f"A {shade} ") or \
            answer.step3.music_description.startswith(f"An {shade} ")
        assert answer.step2.music_elements.emotion == shade


def test_colour_words_change_the_timbre():
    warm = reason("A red and golden field.").step2.music_elements.instruments
    cool = reason("A blue and icy field.").step2.music_elements.instruments
    assert "mellow electric piano" in warm and "glassy bells" in cool


def test_a_caption_with_no_known_words_still_gets_a_full_answer():
    answer = reason("Zxq vrrb.")
    assert answer.step1.visual_elements.object == "the scene as a whole"
    assert answer.step1.visual_elements.emotion == "calm" and "no word suggests one" in answer.step1.reasoning
    assert f"around {tempo('calm', 'moderate')} BPM" in answer.step2.music_elements.rhythm


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
        assert record.parsed["step1"]["visual_elements"]["emotion"] == scene.feeling  # the feeling it states
