"""The teacher's prompts: the chain-of-thought prompt, the direct baseline, the scene writer.

Two chain-of-thought prompts, each with the five parts of the CoT-VTM paper's Appendix A in
order: an expert role (the system message), the task objective, the three reasoning steps with
the output format, a worked example (question, rationale, answer) and the caption.

``cot-paper-v1`` (the default) is the paper's own text: the task, steps and output format of
Appendix A.1 word for word (the output format made a valid JSON object: the paper's listing
drops its braces), and the child-with-the-red-balloon sample of Appendix A.3 as the worked
example. The paper describes the expert role without quoting it; its system message says
what the paper says the role is.

``cot-v1`` is the earlier reconstruction (nested ``step1``/``step2``/``step3`` answer, a
hot-air-balloon example), kept so that its labels stay readable and comparable.

Any change to a prompt's text must bump its version: labels are stored per prompt version, so
a new version is labelled afresh instead of being mixed with the old one.

The direct prompt (caption -> music description, no reasoning) is the LLM2music baseline.
"""

import json
import re
from dataclasses import dataclass

PAPER_PROMPT_VERSION = "cot-paper-v1"
V1_PROMPT_VERSION = "cot-v1"
PROMPT_VERSION = PAPER_PROMPT_VERSION  # the default
COT_PROMPT_VERSIONS = (PAPER_PROMPT_VERSION, V1_PROMPT_VERSION)
DIRECT_PROMPT_VERSION = "direct-v1"
SCENE_PROMPT_VERSION = "scene-paper-v1"

# -- cot-paper-v1: CoT-VTM, Appendix A.1 (task, steps, output format) and A.3 (the sample) ---

PAPER_ROLE = (  # Appendix A.1, "the expert role section": analyse images and create background music
    "You are an expert in analyzing images and creating background music for them: you reason precisely "
    "about what a scene shows and generate the music that fits it."
)

PAPER_TASK = (
    "Your task is to generate a textual description of background music that matches the scene depicted in the "
    "image. Since there is no direct correspondence between the visual and music domains, the task must be broken "
    "down into steps for structured output. Follow these instructions:"
)

PAPER_STEPS = "\n".join([
    "Step 1: Based on the scene description, analyze the following visual elements:",
    "- Object: Identify the objects present in the scene that might influence the music (e.g., animals, people, "
    "trees, etc.).",
    "- Emotion: What emotions does the scene evoke (e.g., tranquil, joyful, energetic)?",
    "- Dynamic: What is the overall dynamic of the scene (e.g., calm, energetic, fast-paced)?",
    "- Color: What is the dominant color or color scheme (e.g., warm tones, cool tones)?",
    "Step 2: Based on the visual elements extracted in Step 1, analyze the corresponding music elements:",
    "- Genre: Suggest an appropriate music genre (e.g., melodic, classical, upbeat, electronic).",
    "- Instruments: List the instruments that suit the atmosphere (e.g., piano, guitar, strings, electronic "
    "sounds).",
    "- Emotion: What emotion should the music evoke (e.g., peaceful, joyful, energetic)?",
    "- Rhythm: Describe the tempo and pacing of the music (e.g., slow, fast, syncopated, steady).",
    "Step 3: Based on the musical elements extracted in Step 2, synthesize and generate the final music "
    "description.",
])

PAPER_FORMAT = "\n".join([
    "Output Format: Provide the final output in JSON format as follows:",
    "{",
    '  "image_description": "<input description>",',
    '  "step1 reasoning": "<reason>",',
    '  "visual elements": {',
    '    "object": "<object description>",',
    '    "emotion": "<emotion description>",',
    '    "dynamic": "<dynamic description>",',
    '    "color": "<color description>"',
    "  },",
    '  "visual description": "<visual description>",',
    '  "step2 reasoning": "<reason>",',
    '  "music elements": {',
    '    "genre": "<genre>",',
    '    "instruments": ["<instrument1>", ...],',
    '    "emotion": "<emotion>",',
    '    "rhythm": "<rhythm>"',
    "  },",
    '  "step3 reasoning": "<reason>",',
    '  "music description": "<music description>"',
    "}",
])

# Appendix A.3: the CoT sample (its image description is the B.2 "Result" sentence it quotes).
PAPER_EXAMPLE_CAPTION = ("A child holds a bright red balloon, standing at the edge of a calm lake. The balloon sways "
                         "gently in the breeze, reflecting the afternoon sun.")
PAPER_STEP1 = ("The visual scene evokes a peaceful, serene atmosphere. The presence of the child with the bright red "
               "balloon suggests innocence and joy, while the calm lake and gentle breeze further add to the "
               "tranquility of the moment.")
PAPER_STEP2 = ("The serene and joyful atmosphere of the visual scene suggests music that is peaceful yet uplifting. "
               "The gentle movement of the balloon and the calmness of the lake call for slow-paced, melodic music. "
               "The bright red balloon indicates a sense of lightheartedness and innocence, which can be reflected "
               "in the choice of instruments.")
PAPER_STEP3 = ("The combination of a peaceful, calm scene with a sense of joy and innocence calls for music that "
               "complements the tranquility of the lake while still capturing the lighthearted joy of the child with "
               "the balloon. The melody should be soothing, with gentle instrumentation to reflect the overall "
               "dynamic of the scene.")
PAPER_EXAMPLE_RATIONALE = (f"Step 1 - Visual Reasoning: {PAPER_STEP1} Step 2 - Music Reasoning: {PAPER_STEP2} "
                           f"Step 3 - Music Reasoning Refinement: {PAPER_STEP3}")
PAPER_EXAMPLE_ANSWER = {
    "image_description": PAPER_EXAMPLE_CAPTION,
    "step1 reasoning": PAPER_STEP1,
    "visual elements": {
        "object": "A child, a bright red balloon, calm lake",
        "emotion": "peaceful, joyful, serene",
        "dynamic": "calm, gentle",
        "color": "warm tones (afternoon sun), bright red balloon",
    },
    "visual description": "The scene depicts a child standing by the lake, holding a bright red balloon. The lake is "
                          "calm, and the soft breeze makes the balloon sway gently. The warm afternoon sun adds a "
                          "golden glow to the surroundings, creating a peaceful and joyful atmosphere.",
    "step2 reasoning": PAPER_STEP2,
    "music elements": {
        "genre": "melodic, acoustic",
        "instruments": ["piano", "strings", "acoustic guitar"],
        "emotion": "peaceful, joyful",
        "rhythm": "slow, steady, gentle",
    },
    "step3 reasoning": PAPER_STEP3,
    "music description": "A soft piano melody with light string harmonies, accompanied by gentle acoustic guitar "
                         "strumming, creating a peaceful and warm atmosphere with a slow, steady rhythm.",
}

# -- cot-v1: the earlier reconstruction ------------------------------------------------------

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
    "movement), with rich visual details like the examples. Answer with the description only."
)

# Appendix B.2, "Example": the sample visual descriptions the paper gives its scene writer.
SCENE_EXAMPLES = (
    "A broad, open field extends to the horizon, dotted with patches of wildflowers. A gentle breeze moves through "
    "the tall grasses, creating ripples across the landscape.",
    "A vast mountain range stretches across the horizon, its jagged peaks touching the sky. The landscape is bathed "
    "in the warm glow of the setting sun, casting long shadows over the valleys below.",
    "A fluffy gray cat's paws rest gently on the windowsill, its claws just visible. The rain outside drizzles down "
    "the window, with tiny droplets clinging to the glass.",
    "A white ceramic coffee cup sits on a wooden table, steam rising from the dark liquid inside. The sunlight "
    "reflects off the surface, casting a soft glow on the cup's edge.",
    "The vast ocean stretches out as far as the eye can see, crashing against the rocky cliffs below. The waves "
    "shimmer under the midday sun, and seagulls circle high above.",
    "A hand grips a fountain pen, the ink flowing steadily onto a piece of paper. The fingers, slightly aged, press "
    "gently against the smooth surface, leaving a dark trail behind.",
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


def example_block(version: str = V1_PROMPT_VERSION) -> str:
    """The worked example as a (question, rationale, answer) tuple."""
    if version == PAPER_PROMPT_VERSION:
        caption, rationale, answer = PAPER_EXAMPLE_CAPTION, PAPER_EXAMPLE_RATIONALE, PAPER_EXAMPLE_ANSWER
    else:
        caption, rationale, answer = EXAMPLE_CAPTION, EXAMPLE_RATIONALE, EXAMPLE_ANSWER
    text = json.dumps(answer, indent=2, ensure_ascii=False)
    return f"Example:\nQuestion: Caption: {caption}\nRationale: {rationale}\nAnswer:\n{text}"


def cot_prompt(caption: str, version: str = PROMPT_VERSION) -> Prompt:
    """The five-part chain-of-thought prompt of ``version`` for one caption."""
    if version not in COT_PROMPT_VERSIONS:
        raise ValueError(f"unknown prompt version {version!r}; choose one of {', '.join(COT_PROMPT_VERSIONS)}")
    question = f"Question: Caption: {clean_caption(caption)}"
    if version == PAPER_PROMPT_VERSION:
        parts = [PAPER_TASK, PAPER_STEPS, PAPER_FORMAT, example_block(version), question]
        return Prompt(PAPER_ROLE, "\n\n".join(parts))
    return Prompt(ROLE, "\n\n".join([OBJECTIVE, STEPS, example_block(version), question]))


def direct_prompt(caption: str) -> Prompt:
    """The LLM2music baseline: caption straight to a music description."""
    return Prompt(ROLE, f"{DIRECT_TASK}\n\nCaption: {clean_caption(caption)}")


def scene_prompt(scene: str) -> Prompt:
    """Ask for a visual description of a generated scene, the B.2 examples as few-shot examples."""
    examples = "\n".join(f"- {example}" for example in SCENE_EXAMPLES)
    return Prompt(SCENE_ROLE, f"{SCENE_TASK}\n\nExamples:\n{examples}\n\nScene: {clean_caption(scene)}")


def repair_message(reason: str) -> str:
    """What goes back to the model when its answer could not be used."""
    return (f"Your previous answer could not be used: {reason}. Reply again with only the complete JSON object, "
            "in exactly the required format, keeping every value short.")
