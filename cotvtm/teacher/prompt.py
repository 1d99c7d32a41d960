"""The teacher's prompts: the chain-of-thought prompt, the direct baseline, the scene writer.

The CoT prompt has the five parts of the CoT-VTM paper's Appendix A, in order: an expert
role (the system message), the task objective, the three reasoning steps, a worked
example (question, rationale, answer) and the caption. The paper's exact wording was not
available when this was written: the text below is a faithful reconstruction of its
structure and content (the visual elements object/emotion/dynamic/color, the music
elements genre/instruments/emotion/rhythm, a hot-air-balloon worked example), extended
with the JSON answer format that ``schema.py`` validates. Any change to the text must
bump ``PROMPT_VERSION``: labels are stored per prompt version, so a new version is
labelled afresh instead of being mixed with the old one.

The direct prompt (caption -> music description, no reasoning) is the LLM2music baseline.
"""

import json
import re
from dataclasses import dataclass

PROMPT_VERSION = "cot-v1"
DIRECT_PROMPT_VERSION = "direct-v1"
SCENE_PROMPT_VERSION = "scene-v1"

ROLE = (
    "You are an expert in both visual arts and music composition. You read the mood, movement and color "
    "of a scene at a glance, and you know which instrumental music fits it."
)

OBJECTIVE = (
    "Task: you are given a caption that describes an image or a video. Reason step by step about which "
    "instrumental background music fits what the caption shows, then write a music description that a "
    "text-to-music model can turn into that music."
)

STEPS = "\n".join([
    "Reason in three steps:",
    "Step 1. Visual elements. Identify the key visual elements of the caption: the object (the main subjects and "
    "the setting), the emotion (the mood the scene conveys), the dynamic (how much and how fast things move) and "
    "the color (the dominant colors, light and tone). Then write a short visual description that combines them.",
    "Step 2. Music elements. From the visual elements, infer the music elements that match them: the genre, the "
    "instruments, the emotion the music should convey and the rhythm (tempo and beat). Explain how each one "
    "follows from the visuals.",
    "Step 3. Music description. Combine the music elements into one fluent music description of one or two "
    "sentences. Describe instrumental music only: no lyrics, no vocals, no names of artists or songs.",
    "",
    'Answer with one JSON object only, in exactly the format of the example answer: the key "step1" (holding '
    '"reasoning", "visual_elements" with "object", "emotion", "dynamic" and "color", and "visual_description"), '
    'the key "step2" (holding "reasoning" and "music_elements" with "genre", "instruments", "emotion" and '
    '"rhythm") and the key "step3" (holding "music_description"). Every value is a non-empty string.',
])

EXAMPLE_CAPTION = "A red hot air balloon drifts slowly across a clear blue sky."

EXAMPLE_RATIONALE = (
    "Step 1: the object is a single hot air balloon alone in an open sky. Its slow drift conveys a calm, free "
    "and slightly dreamy emotion; the dynamic is a gentle floating motion; the colors are a vivid red against a "
    "bright, clear blue. Step 2: calm floating motion suggests light orchestral or ambient music; the airy, "
    "soaring feeling calls for strings, a soft piano and a flute; the emotion is serene and uplifting; the rhythm "
    "is slow and flowing, with no heavy beat. Step 3: together they make a serene, uplifting light orchestral "
    "piece for strings, soft piano and flute at a slow, flowing tempo."
)

EXAMPLE_ANSWER = {
    "step1": {
        "reasoning": "A single balloon drifting slowly through an open sky feels calm, free and a little dreamy; "
                     "the motion is gentle and the red stands out against the blue.",
        "visual_elements": {
            "object": "a hot air balloon in an open sky",
            "emotion": "calm, free, dreamy",
            "dynamic": "slow, gentle floating",
            "color": "vivid red against a clear bright blue",
        },
        "visual_description": "A lone red hot air balloon floats slowly and peacefully across a wide, clear blue "
                              "sky.",
    },
    "step2": {
        "reasoning": "Gentle floating motion and a calm, open sky call for light orchestral music with airy "
                     "instruments, a serene uplifting mood and a slow flowing tempo.",
        "music_elements": {
            "genre": "light orchestral, ambient",
            "instruments": "strings, soft piano, flute",
            "emotion": "serene, uplifting",
            "rhythm": "slow, flowing tempo around 70 BPM with no heavy beat",
        },
    },
    "step3": {
        "music_description": "A serene, uplifting light orchestral piece with soaring strings, soft piano and an "
                             "airy flute melody, flowing at a slow tempo of about 70 BPM with no heavy beat."
    },
}

DIRECT_TASK = (
    "Task: you are given a caption that describes an image or a video. Write a music description of one or two "
    "sentences for instrumental background music that fits what the caption shows, one that a text-to-music "
    "model can turn into that music. Describe instrumental music only: no lyrics, no vocals, no names of "
    "artists or songs.\n\n"
    'Answer with one JSON object only, of the form {"music_description": "..."}.'
)

SCENE_ROLE = "You write short, concrete visual descriptions of scenes, like the captions of photos or video shots."

SCENE_TASK = (
    "Write one visual description of the scene below, in one or two sentences, as the caption of a photo or a "
    "video shot would: say only what can be seen (the subjects, the setting, the light, the colors and the "
    "movement). Answer with the description only."
)


@dataclass(frozen=True)
class Prompt:
    """One chat request: a system message and a user message."""

    system: str
    user: str

    def messages(self) -> list[dict]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]


def clean_caption(caption: str) -> str:
    """One line, single spaces: a caption must not break the prompt's layout."""
    return re.sub(r"\s+", " ", caption).strip()


def example_block() -> str:
    answer = json.dumps(EXAMPLE_ANSWER, indent=2, ensure_ascii=False)
    return (f"Example:\nQuestion: Caption: {EXAMPLE_CAPTION}\nRationale: {EXAMPLE_RATIONALE}\n"
            f"Answer:\n{answer}")


def cot_prompt(caption: str) -> Prompt:
    """The five-part chain-of-thought prompt for one caption."""
    user = "\n\n".join([OBJECTIVE, STEPS, example_block(), f"Question: Caption: {clean_caption(caption)}"])
    return Prompt(ROLE, user)


def direct_prompt(caption: str) -> Prompt:
    """The LLM2music baseline: caption straight to a music description."""
    return Prompt(ROLE, f"{DIRECT_TASK}\n\nCaption: {clean_caption(caption)}")


def scene_prompt(scene: str) -> Prompt:
    """Ask for a visual description of a generated scene (paper Appendix B.2)."""
    return Prompt(SCENE_ROLE, f"{SCENE_TASK}\n\nScene: {clean_caption(scene)}")


def repair_message(reason: str) -> str:
    """What goes back to the model when its answer could not be used."""
    return (f"Your previous answer could not be used: {reason}. Reply again with only the complete JSON object, "
            "in exactly the required format, keeping every value short.")
