"""The exact prompt text: any change to it must be deliberate (and bump PROMPT_VERSION)."""

import json

from cotvtm.teacher import prompt
from cotvtm.teacher.schema import CotAnswer, parse_answer

BALLOON = "A colorful hot air balloon floats over green hills at sunrise."

EXPECTED_SYSTEM = (
    "You are an expert in both visual arts and music composition. You read the mood, movement and color of a "
    "scene at a glance, and you know which instrumental music fits it."
)

EXPECTED_USER = """\
Task: you are given a caption that describes an image or a video. Reason step by step about which instrumental background music fits what the caption shows, then write a music description that a text-to-music model can turn into that music.

Reason in three steps:
Step 1. Visual elements. Identify the key visual elements of the caption: the object (the main subjects and the setting), the emotion (the mood the scene conveys), the dynamic (how much and how fast things move) and the color (the dominant colors, light and tone). Then write a short visual description that combines them.
Step 2. Music elements. From the visual elements, infer the music elements that match them: the genre, the instruments, the emotion the music should convey and the rhythm (tempo and beat). Explain how each one follows from the visuals.
Step 3. Music description. Combine the music elements into one fluent music description of one or two sentences. Describe instrumental music only: no lyrics, no vocals, no names of artists or songs.

Answer with one JSON object only, in exactly the format of the example answer: the key "step1" (holding "reasoning", "visual_elements" with "object", "emotion", "dynamic" and "color", and "visual_description"), the key "step2" (holding "reasoning" and "music_elements" with "genre", "instruments", "emotion" and "rhythm") and the key "step3" (holding "music_description"). Every value is a non-empty string.

Example:
Question: Caption: A red hot air balloon drifts slowly across a clear blue sky.
Rationale: Step 1: the object is a single hot air balloon alone in an open sky. Its slow drift conveys a calm, free and slightly dreamy emotion; the dynamic is a gentle floating motion; the colors are a vivid red against a bright, clear blue. Step 2: calm floating motion suggests light orchestral or ambient music; the airy, soaring feeling calls for strings, a soft piano and a flute; the emotion is serene and uplifting; the rhythm is slow and flowing, with no heavy beat. Step 3: together they make a serene, uplifting light orchestral piece for strings, soft piano and flute at a slow, flowing tempo.
Answer:
{
  "step1": {
    "reasoning": "A single balloon drifting slowly through an open sky feels calm, free and a little dreamy; the motion is gentle and the red stands out against the blue.",
    "visual_elements": {
      "object": "a hot air balloon in an open sky",
      "emotion": "calm, free, dreamy",
      "dynamic": "slow, gentle floating",
      "color": "vivid red against a clear bright blue"
    },
    "visual_description": "A lone red hot air balloon floats slowly and peacefully across a wide, clear blue sky."
  },
  "step2": {
    "reasoning": "Gentle floating motion and a calm, open sky call for light orchestral music with airy instruments, a serene uplifting mood and a slow flowing tempo.",
    "music_elements": {
      "genre": "light orchestral, ambient",
      "instruments": "strings, soft piano, flute",
      "emotion": "serene, uplifting",
      "rhythm": "slow, flowing tempo around 70 BPM with no heavy beat"
    }
  },
  "step3": {
    "music_description": "A serene, uplifting light orchestral piece with soaring strings, soft piano and an airy flute melody, flowing at a slow tempo of about 70 BPM with no heavy beat."
  }
}

Question: Caption: A colorful hot air balloon floats over green hills at sunrise."""


def test_cot_prompt_renders_exactly_for_the_balloon_caption():
    p = prompt.cot_prompt(BALLOON)
    assert p.system == EXPECTED_SYSTEM
    assert p.user == EXPECTED_USER
    assert p.messages() == [{"role": "system", "content": EXPECTED_SYSTEM}, {"role": "user", "content": EXPECTED_USER}]
    assert prompt.PROMPT_VERSION == "cot-v1"


def test_prompt_has_the_five_parts_in_order():
    text = prompt.cot_prompt(BALLOON).user
    marks = ["Task:", "Step 1.", "Step 2.", "Step 3.", "Example:", "Question: Caption: A red", "Rationale:",
             "Answer:", f"Question: Caption: {BALLOON}"]
    positions = [text.index(m) for m in marks]
    assert positions == sorted(positions)
    assert text.endswith(BALLOON)


def test_the_example_answer_is_valid_under_the_schema():
    """The model copies the example's format: it must be exactly what the parser accepts."""
    answer = parse_answer(json.dumps(prompt.EXAMPLE_ANSWER))
    assert isinstance(answer, CotAnswer)
    assert answer.step2.music_elements.instruments == "strings, soft piano, flute"


def test_caption_whitespace_cannot_break_the_layout():
    p = prompt.cot_prompt("  A dog\n\nruns\tfast  ")
    assert p.user.endswith("\n\nQuestion: Caption: A dog runs fast")


def test_direct_prompt_for_the_baseline():
    p = prompt.direct_prompt(BALLOON)
    assert p.system == EXPECTED_SYSTEM
    assert p.user == (
        "Task: you are given a caption that describes an image or a video. Write a music description of one or two "
        "sentences for instrumental background music that fits what the caption shows, one that a text-to-music "
        "model can turn into that music. Describe instrumental music only: no lyrics, no vocals, no names of "
        "artists or songs.\n\n"
        'Answer with one JSON object only, of the form {"music_description": "..."}.\n\n'
        f"Caption: {BALLOON}")
    assert "Step 1" not in p.user and prompt.DIRECT_PROMPT_VERSION == "direct-v1"
