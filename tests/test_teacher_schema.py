"""Parsing model answers: tolerant of wrapping, exact about what is missing."""

import json

import pytest

from cotvtm.teacher.prompt import EXAMPLE_ANSWER
from cotvtm.teacher.schema import AnswerError, CotAnswer, DirectAnswer, extract_json, parse_answer, x_mt, x_rt

GOOD = json.dumps(EXAMPLE_ANSWER)


def test_plain_json():
    assert parse_answer(GOOD).step3.music_description.startswith("A serene, uplifting")


@pytest.mark.parametrize("text", [
    f"```json\n{GOOD}\n```",
    f"```\n{GOOD}\n```",
    f"Sure! Here is the analysis:\n```json\n{json.dumps(EXAMPLE_ANSWER, indent=2)}\n```\nLet me know if you need more.",
    f"Here you go: {GOOD} Hope it helps.",
    f"Thinking about it... {{not json}}\n{GOOD}",
])
def test_fenced_and_surrounded_json_is_found(text):
    assert parse_answer(text) == parse_answer(GOOD)


def test_lists_become_strings_and_whitespace_is_trimmed():
    data = json.loads(GOOD)
    data["step2"]["music_elements"]["instruments"] = ["strings", " piano "]
    data["step1"]["visual_elements"]["object"] = "  balloon  "
    answer = parse_answer(json.dumps(data))
    assert answer.step2.music_elements.instruments == "strings, piano"
    assert answer.step1.visual_elements.object == "balloon"


@pytest.mark.parametrize("text, reason", [
    ("", "empty answer"),
    ("I think a piano would fit.", "no JSON object in the answer"),
    ('{"step1": {"reasoning": "x",}}', "invalid JSON: Expecting property name enclosed in double quotes at line 1"),
    (GOOD[: len(GOOD) // 2], "invalid JSON"),  # truncated mid-object
])
def test_unusable_text_says_why(text, reason):
    with pytest.raises(AnswerError) as err:
        parse_answer(text)
    assert err.value.reason.startswith(reason), err.value.reason


def test_a_broken_outer_object_is_not_mistaken_for_its_inner_one():
    text = '{"step1": {"reasoning": "fine"}, "step2": oops}'
    with pytest.raises(AnswerError, match="invalid JSON"):
        parse_answer(text)


def test_missing_and_empty_fields_are_named():
    data = json.loads(GOOD)
    del data["step2"]["music_elements"]["rhythm"]
    del data["step3"]
    data["step1"]["visual_elements"]["color"] = " "
    with pytest.raises(AnswerError) as err:
        parse_answer(json.dumps(data))
    assert err.value.reason == ("JSON missing fields: step2.music_elements.rhythm, step3; "
                                "step1.visual_elements.color is empty")


def test_extract_json_returns_the_object():
    assert extract_json('noise ```json\n{"a": 1}\n``` noise') == {"a": 1}


def test_x_rt_field_order_is_exact():
    answer = parse_answer(GOOD)
    assert x_rt(answer) == (
        "Step 1: A single balloon drifting slowly through an open sky feels calm, free and a little dreamy; the "
        "motion is gentle and the red stands out against the blue. "
        "Visual elements: object: a hot air balloon in an open sky; emotion: calm, free, dreamy; dynamic: slow, "
        "gentle floating; color: vivid red against a clear bright blue. "
        "Visual description: A lone red hot air balloon floats slowly and peacefully across a wide, clear blue sky. "
        "Step 2: Gentle floating motion and a calm, open sky call for light orchestral music with airy instruments, "
        "a serene uplifting mood and a slow flowing tempo. "
        "Music elements: genre: light orchestral, ambient; instruments: strings, soft piano, flute; emotion: serene, "
        "uplifting; rhythm: slow, flowing tempo around 70 BPM with no heavy beat.")
    assert x_mt(answer) == EXAMPLE_ANSWER["step3"]["music_description"]
    assert "music_description" not in x_rt(answer) and x_mt(answer) not in x_rt(answer)


def test_direct_answers():
    answer = parse_answer('{"music_description": "Soft piano."}', cot=False)
    assert isinstance(answer, DirectAnswer) and x_mt(answer) == "Soft piano." and x_rt(answer) == ""
    with pytest.raises(AnswerError, match="JSON missing fields: music_description"):
        parse_answer(GOOD, cot=False)
    assert isinstance(parse_answer(GOOD), CotAnswer)
