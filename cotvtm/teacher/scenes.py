"""Generated scene descriptions (paper Appendix B.2): templates over variable lists.

Captioned images and videos under-represent many moods, times and places that videos
need music for, so the training set is topped up with generated scenes. A template has
one or two variables ("{natural} at {time}"); sampling with a seed gives N scenes. The
scene i of a seed does not depend on N (templates are visited in a seeded order, and the
variables of scene i come from a generator seeded by (seed, i)), so asking for more scenes
later extends the same list instead of replacing it.

The visual description is then written by an LLM (``prompt.scene_prompt``) or, with no
LLM, by ``write_description``: a deterministic template filler.
"""

import random
import re
from dataclasses import dataclass

VARIABLES: dict[str, list[str]] = {
    "natural": ["a sandy beach", "a pine forest", "a snowy mountain", "a desert", "a mountain lake", "a waterfall",
                "a flower meadow", "the open ocean", "a river valley", "a bamboo grove", "a volcanic island",
                "a wheat field"],
    "urban": ["a busy city street", "a subway station", "a rooftop terrace", "a night market", "a skyscraper district",
              "a narrow alley", "a harbour", "a highway", "a city park", "a train station", "a shopping mall",
              "a construction site"],
    "indoor": ["a cozy kitchen", "a quiet library", "a small cafe", "a living room", "a classroom", "a concert hall",
               "a museum gallery", "a bedroom", "a gym", "a workshop", "a dance studio", "a hospital corridor"],
    "time": ["dawn", "early morning", "noon", "a lazy afternoon", "sunset", "dusk", "night", "midnight"],
    "season": ["spring", "summer", "autumn", "winter"],
    "weather": ["in light rain", "in heavy snow", "in thick fog", "in a thunderstorm", "under a clear sky",
                "in strong wind"],
    "holiday": ["Christmas", "New Year's Eve", "Halloween", "Lunar New Year", "Thanksgiving", "Diwali",
                "a birthday", "a wedding", "a summer festival"],
    "behaviour": ["people dancing", "children playing", "a couple walking hand in hand", "a crowd cheering",
                  "someone reading alone", "a runner training", "friends laughing together", "a musician playing",
                  "workers building", "a family having dinner", "a cyclist racing", "an old man resting"],
    "tonality": ["warm golden", "cold blue", "soft pastel", "black and white", "neon", "vivid", "muted earthy",
                 "dark shadowy"],
    "atmosphere": ["peaceful", "tense", "joyful", "melancholic", "mysterious", "romantic", "energetic", "nostalgic",
                   "solemn", "dreamy"],
}

# name -> template. Single-variable templates first, then double-variable ones.
TEMPLATES: dict[str, str] = {
    "natural": "{natural}",
    "urban": "{urban}",
    "indoor": "{indoor}",
    "behaviour": "{behaviour}",
    "holiday": "people celebrating {holiday}",
    "atmosphere": "a {atmosphere} scene",
    "natural+time": "{natural} at {time}",
    "natural+season": "{natural} in {season}",
    "natural+weather": "{natural} {weather}",
    "urban+time": "{urban} at {time}",
    "urban+weather": "{urban} {weather}",
    "indoor+holiday": "{indoor} during {holiday}",
    "behaviour+natural": "{behaviour} in {natural}",
    "behaviour+urban": "{behaviour} in {urban}",
    "urban+tonality": "{urban} in {tonality} tones",
    "natural+atmosphere": "{natural} with a {atmosphere} atmosphere",
    "indoor+atmosphere": "{indoor} with a {atmosphere} atmosphere",
    "season+holiday": "{holiday} in {season}",
}

_FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Scene:
    """One sampled scene: which template, which values, and the scene text."""

    id: str
    template: str
    values: dict
    text: str


def _articles(text: str) -> str:
    """'a energetic scene' -> 'an energetic scene'."""
    return re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", r"\1n ", text)


def variables_of(template: str) -> list[str]:
    return _FIELD.findall(TEMPLATES[template])


def sample_scenes(count: int, seed: int = 0) -> list[Scene]:
    """``count`` scenes; the same (seed, i) always gives the same scene."""
    order = list(TEMPLATES)
    random.Random(f"templates-{seed}").shuffle(order)
    scenes = []
    for index in range(count):
        name = order[index % len(order)]
        rng = random.Random(f"scene-{seed}-{index}")
        values = {var: rng.choice(VARIABLES[var]) for var in variables_of(name)}
        text = _articles(TEMPLATES[name].format(**values))
        scenes.append(Scene(id=f"scene-{seed}-{index:06d}", template=name, values=values, text=text))
    return scenes


# The template filler: a visual description from the scene's own values plus details
# chosen from small lists by a generator seeded with the scene id.
SUBJECTS = {
    "natural": ["a few birds cross the sky", "tall grass sways in the wind", "waves roll in slowly",
                "a lone hiker walks along the edge", "leaves drift down"],
    "urban": ["cars and buses pass by", "people hurry past with umbrellas", "neon signs flicker",
              "a street musician plays", "pigeons scatter across the pavement"],
    "indoor": ["a lamp glows in the corner", "someone sits by the window", "steam rises from a cup",
               "shelves are full of books", "people move quietly"],
}
LIGHT = {
    "dawn": "pale pink light", "early morning": "soft morning light", "noon": "bright overhead sunlight",
    "a lazy afternoon": "warm afternoon light", "sunset": "golden orange light", "dusk": "fading purple light",
    "night": "dark blue shadows and scattered lights", "midnight": "deep darkness and a few cold lights",
}
DEFAULT_LIGHT = ["soft natural light", "bright daylight", "warm golden light", "cool grey light"]


def _place_kind(scene: Scene) -> str:
    for kind in ("natural", "urban", "indoor"):
        if kind in scene.values:
            return kind
    return "urban" if "holiday" in scene.values else "natural"


def write_description(scene: Scene) -> str:
    """A one-to-two-sentence visual description of ``scene``; deterministic, no LLM."""
    rng = random.Random(scene.id)
    values = scene.values
    opening = scene.text[0].upper() + scene.text[1:]
    light = LIGHT.get(values.get("time"), None) or rng.choice(DEFAULT_LIGHT)
    detail = rng.choice(SUBJECTS[_place_kind(scene)])
    mood = values.get("atmosphere") or rng.choice(VARIABLES["atmosphere"])
    extra = f" in {values['season']}" if "season" in values and "in " + values["season"] not in scene.text else ""
    return f"{opening}{extra}, seen in {light}: {detail}. The whole scene feels {mood}."
