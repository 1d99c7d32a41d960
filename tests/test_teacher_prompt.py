"""The exact prompt text: any change to it must be deliberate (and bump its version)."""

import json

from cotvtm.teacher import prompt
from cotvtm.teacher.schema import CotAnswer, parse_answer, parse_answer_format, x_mt, x_rt

V1 = prompt.V1_PROMPT_VERSION

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


def test_cot_v1_prompt_renders_exactly_for_the_balloon_caption():
    p = prompt.cot_prompt(BALLOON, V1)
    assert p.system == EXPECTED_SYSTEM
    assert p.user == EXPECTED_USER
    assert p.messages() == [{"role": "system", "content": EXPECTED_SYSTEM}, {"role": "user", "content": EXPECTED_USER}]
    assert V1 == "cot-v1" and prompt.PROMPT_VERSION == "cot-paper-v1"


def test_cot_v1_prompt_has_the_five_parts_in_order():
    text = prompt.cot_prompt(BALLOON, V1).user
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
    for version in prompt.COT_PROMPT_VERSIONS:
        p = prompt.cot_prompt("  A dog\n\nruns\tfast  ", version)
        assert p.user.endswith("\n\nQuestion: Caption: A dog runs fast")


# CoT-VTM Appendix A.1 and A.3, as printed in the paper (their lines, in order).
A1_TASK = ("Your task is to generate a textual description of background music that matches the scene depicted in "
           "the image. Since there is no direct correspondence between the visual and music domains, the task must be "
           "broken down into steps for structured output. Follow these instructions:")
A1_STEPS = [
    "Step 1: Based on the scene description, analyze the following visual elements:",
    "Object: Identify the objects present in the scene that might influence the music (e.g., animals, people, "
    "trees, etc.).",
    "Emotion: What emotions does the scene evoke (e.g., tranquil, joyful, energetic)?",
    "Dynamic: What is the overall dynamic of the scene (e.g., calm, energetic, fast-paced)?",
    "Color: What is the dominant color or color scheme (e.g., warm tones, cool tones)?",
    "Step 2: Based on the visual elements extracted in Step 1, analyze the corresponding music elements:",
    "Genre: Suggest an appropriate music genre (e.g., melodic, classical, upbeat, electronic).",
    "Instruments: List the instruments that suit the atmosphere (e.g., piano, guitar, strings, electronic sounds).",
    "Emotion: What emotion should the music evoke (e.g., peaceful, joyful, energetic)?",
    "Rhythm: Describe the tempo and pacing of the music (e.g., slow, fast, syncopated, steady).",
    "Step 3: Based on the musical elements extracted in Step 2, synthesize and generate the final music description.",
    "Output Format: Provide the final output in JSON format as follows:",
]
A1_KEYS = ['"image_description": "<input description>"', '"step1 reasoning": "<reason>"', '"visual elements": {',
           '"object": "<object description>"', '"color": "<color description>"',
           '"visual description": "<visual description>"', '"step2 reasoning": "<reason>"', '"music elements": {',
           '"genre": "<genre>"', '"instruments": ["<instrument1>", ...]', '"rhythm": "<rhythm>"',
           '"step3 reasoning": "<reason>"', '"music description": "<music description>"']
A3 = {
    "question": "A child holds a bright red balloon, standing at the edge of a calm lake. The balloon sways gently in "
                "the breeze, reflecting the afternoon sun.",
    "step1": "The visual scene evokes a peaceful, serene atmosphere. The presence of the child with the bright red "
             "balloon suggests innocence and joy, while the calm lake and gentle breeze further add to the "
             "tranquility of the moment.",
    "objects": "A child, a bright red balloon, calm lake",
    "colors": "warm tones (afternoon sun), bright red balloon",
    "instruments": ["piano", "strings", "acoustic guitar"],
    "step3": "The combination of a peaceful, calm scene with a sense of joy and innocence calls for music that "
             "complements the tranquility of the lake while still capturing the lighthearted joy of the child with "
             "the balloon. The melody should be soothing, with gentle instrumentation to reflect the overall dynamic "
             "of the scene.",
    "music": "A soft piano melody with light string harmonies, accompanied by gentle acoustic guitar strumming, "
             "creating a peaceful and warm atmosphere with a slow, steady rhythm.",
}


def test_paper_prompt_is_appendix_a1_with_the_a3_balloon_sample_as_its_example():
    p = prompt.cot_prompt(BALLOON)  # the default version
    text = p.user
    assert p.system == prompt.PAPER_ROLE and "analyzing images and creating background music" in p.system
    assert text.startswith(A1_TASK + "\n\n")
    lines = [text.index(line) for line in A1_STEPS]  # every A.1 line, in the paper's order
    assert lines == sorted(lines)
    keys = [text.index(key) for key in A1_KEYS]
    assert keys == sorted(keys) and keys[0] > lines[-1]
    example = text.index("Example:\nQuestion: Caption: " + A3["question"])
    assert example > keys[-1] and text.index("Rationale: Step 1 - Visual Reasoning: " + A3["step1"]) > example
    assert text.index("Step 3 - Music Reasoning Refinement: " + A3["step3"]) > example
    answer = json.loads(text[text.index("Answer:\n") + 8: text.index("\n\nQuestion: Caption: " + BALLOON)])
    assert answer["image_description"] == A3["question"] and answer["music description"] == A3["music"]
    assert answer["visual elements"]["object"] == A3["objects"] and answer["visual elements"]["color"] == A3["colors"]
    assert answer["music elements"]["instruments"] == A3["instruments"] and answer["step1 reasoning"] == A3["step1"]
    assert text.endswith(f"\n\nQuestion: Caption: {BALLOON}")


def test_the_paper_example_answer_parses_as_the_paper_format():
    answer, found = parse_answer_format(json.dumps(prompt.PAPER_EXAMPLE_ANSWER))
    assert found == "paper" and x_mt(answer) == A3["music"]
    assert answer.step2.music_elements.instruments == "piano, strings, acoustic guitar"
    rationale = x_rt(answer)
    assert rationale.startswith("Step 1: " + A3["step1"]) and rationale.endswith("Step 3: " + A3["step3"])


def test_scene_prompt_gives_the_b2_examples():
    p = prompt.scene_prompt("Describe an image of a forest.")
    assert p.user.count("\n- ") == 6 and prompt.SCENE_EXAMPLES[2] in p.user
    assert p.user.endswith("Scene: Describe an image of a forest.")


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
