"""Parsing model answers: tolerant of wrapping, exact about what is missing."""

import json

import pytest

from cotvtm.teacher.prompt import EXAMPLE_ANSWER, PAPER_EXAMPLE_ANSWER
from cotvtm.teacher.schema import (AnswerError, CotAnswer, DirectAnswer, extract_json, parse_answer, parse_answer_format,
                                   x_mt, x_rt)

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


PAPER = json.dumps(PAPER_EXAMPLE_ANSWER)


@pytest.mark.parametrize("text", [
    PAPER,
    f"```json\n{json.dumps(PAPER_EXAMPLE_ANSWER, indent=2)}\n```",
    f"Here is my analysis.\n{PAPER}\nI hope this helps.",
    json.dumps({k.replace(" ", "_").title(): v for k, v in PAPER_EXAMPLE_ANSWER.items()}),  # Step1_Reasoning, ...
])
def test_the_papers_format_is_read_whatever_the_wrapping_and_key_spelling(text):
    answer, found = parse_answer_format(text)
    assert found == "paper" and answer == parse_answer_format(PAPER)[0]
    assert answer.step1.visual_elements.object == "A child, a bright red balloon, calm lake"
    assert answer.step2.music_elements.instruments == "piano, strings, acoustic guitar"  # a list, as the paper has it


def test_both_formats_give_rationale_and_music_in_the_documented_order():
    paper, v1 = parse_answer(PAPER), parse_answer(GOOD)
    for answer in (paper, v1):
        text = x_rt(answer)
        marks = ["Step 1: ", "Visual elements: object: ", "Visual description: ", "Step 2: ",
                 "Music elements: genre: "]
        assert [text.index(m) for m in marks] == sorted(text.index(m) for m in marks)
    assert x_rt(paper).split("Step 3: ")[1] == PAPER_EXAMPLE_ANSWER["step3 reasoning"]
    assert "Step 3: " not in x_rt(v1)  # cot-v1 answers have no step 3 reasoning
    assert x_mt(paper) == PAPER_EXAMPLE_ANSWER["music description"]


def test_a_paper_answer_missing_fields_is_told_in_the_papers_names():
    data = dict(PAPER_EXAMPLE_ANSWER, **{"visual elements": {"object": "a lake"}})
    del data["music description"]
    with pytest.raises(AnswerError) as caught:
        parse_answer_format(json.dumps(data))
    assert caught.value.reason == ("JSON missing fields: visual elements.emotion, visual elements.dynamic, "
                                   "visual elements.color, music description")
    with pytest.raises(AnswerError) as caught:  # neither format: named as the prompt asked
        parse_answer_format('{"answer": "calm piano"}', expected="paper")
    assert caught.value.reason.startswith("JSON missing fields: step1 reasoning, visual elements")
    with pytest.raises(AnswerError) as caught:
        parse_answer_format('{"answer": "calm piano"}', expected="cot-v1")
    assert caught.value.reason == "JSON missing fields: step1, step2, step3"
