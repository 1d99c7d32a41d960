"""Generated scene descriptions (CoT-VTM Appendix B.2): the paper's templates over variable lists.

Captioned images and videos under-represent many moods, times and places that videos need
music for, so the training set is topped up with generated scenes. The templates are B.2's
single- and double-variable instructions word for word ("Describe an image of a
{natural_scenarios}."); the natural, urban and indoor lists are B.2's; the other variables
the templates name (times, seasons, holidays, behaviours, tonalities, atmospheres, ...) are
not listed in the paper and are this project's extensions (``EXTENSION_VARIABLES``).

Every scene states one feeling ("The whole scene feels nostalgic."), of one of the offline
teacher's eight families (``offline.FAMILIES``): the family its template fixes (a sad or lonely
behaviour: melancholic; angry: tense; excited: joyful or energetic; confident: epic or
energetic; the serene template: calm; an atmosphere: its own), else the family the scenes
before it used least, so the families, and the genres the teacher gives them, come out even.
The stated word is one of the family's ``atmospheres`` (``MOODS``).

Sampling with a seed gives N scenes. The scene i of a seed does not depend on N (templates are
visited in a seeded order, the variables of scene i come from a generator seeded by (seed, i),
and its family from the scenes before it), so asking for more scenes later extends the same
list instead of replacing it.

The filled instruction goes to an LLM, which writes the visual description with B.2's example
descriptions as few-shot examples (``prompt.scene_prompt``); with no LLM, ``write_description``
fills a deterministic description from the scene's values.
"""

import random
import re
from collections import Counter
from dataclasses import dataclass

from cotvtm.teacher.offline import FAMILIES, feeling_family

# CoT-VTM Appendix B.2, "Variable": the three place lists the paper gives, in its order.
PAPER_VARIABLES: dict[str, list[str]] = {
    "natural_scenarios": [
        "forest", "tropical rainforest", "mountain range", "desert", "beach", "river", "lake", "waterfall",
        "grassland", "canyon", "wilderness", "plateau", "glacier", "snowy mountains", "hot springs", "swamp", "cave",
        "volcano", "cliff", "sand dunes", "woodland", "deep canyon", "island in lake", "sinkhole", "flower field",
        "orchard", "rice field", "terraced fields", "bamboo forest", "hills", "polar regions", "aurora zone", "seabed",
        "coral reef", "hot springs pool", "stonehenge", "beach rocks", "mangrove forest", "tundra", "great plains",
        "valley", "subtropical forest", "vast wasteland", "wetland", "riverbank", "mountain stream",
        "primitive forest", "beach palm trees", "wilderness under the stars", "path by the stream"],
    "urban_scenarios": [
        "city street", "square", "shopping mall", "park", "subway station", "train station", "airport",
        "residential area", "commercial street", "pedestrian street", "skyscraper", "office building", "restaurant",
        "cafe", "bar", "museum", "theater", "cinema", "school", "library", "hospital", "clinic", "police station",
        "stadium", "amusement park", "swimming pool", "bus stop", "bridge", "dock", "harbor", "vegetable market",
        "night market", "ancient city wall", "open-air market", "sculpture square", "parking lot", "night city lights",
        "bus cabin", "residential balcony", "city skyline", "interchange bridge", "clock tower", "city tunnel",
        "scenic street", "commercial building", "station waiting room", "smart city corner", "city rooftop garden",
        "music fountain square", "riverbank at night"],
    "indoor_scenarios": [
        "bedroom", "living room", "kitchen", "bathroom", "study", "dining room", "office", "conference room",
        "laboratory", "classroom", "library", "theater", "cinema", "gym", "swimming pool room", "music room",
        "dance room", "yoga studio", "cafe", "restaurant", "game room", "children's playroom", "mall", "gallery",
        "museum", "pet store", "storage room", "basement", "attic", "clinic", "waiting room", "hospital ward",
        "pharmacy", "beauty salon", "barbershop", "hot spring room", "garage", "archive room", "bookstore",
        "hotel lobby", "hotel room", "private cinema", "photography studio", "recording studio", "greenhouse",
        "exhibition hall", "pet clinic", "operating room", "BBQ room", "banquet hall"],
}

# Variables the paper's templates name without listing their values: documented extensions.
EXTENSION_VARIABLES: dict[str, list[str]] = {
    "time_periods": ["dawn", "early morning", "noon", "a lazy afternoon", "sunset", "dusk", "night", "midnight"],
    "seasons": ["spring", "summer", "autumn", "winter"],
    "holidays": ["Christmas", "New Year's Eve", "Halloween", "Lunar New Year", "Thanksgiving", "Diwali",
                 "a birthday", "a wedding", "a summer festival"],
    "excited_behaviors": ["people jumping with joy", "a crowd cheering", "children running and shouting",
                          "friends dancing wildly", "fans waving flags"],
    "sad_behaviors": ["someone crying quietly", "a person staring out of a rainy window", "a mourner holding flowers",
                      "a child sitting alone with a broken toy", "an old man looking at a faded photo"],
    "angry_behaviors": ["two drivers shouting at each other", "a man slamming a door", "a protester yelling",
                        "a player kicking the ground", "someone tearing up a letter"],
    "lonely_behaviors": ["a person eating alone", "someone walking an empty street", "a figure sitting on a pier",
                         "an old woman waiting at a bus stop", "a lone traveller on a train"],
    "confident_behaviors": ["a proud, upright posture", "a bold stride across a stage", "a wide, assured smile",
                            "arms raised in victory", "a steady gaze at the crowd"],
    "calm_behaviors": ["someone reading in the shade", "a person meditating", "a fisherman waiting by the water",
                       "a couple strolling slowly", "a painter at an easel"],
    "character_actions": ["people hurrying to work", "vendors calling out", "cyclists weaving through traffic",
                          "tourists taking photos", "street performers playing"],
    "character_emotions": ["grief", "longing", "regret", "quiet sorrow", "homesickness"],
    "outdoor_natural_objects": ["tall pine trees", "a quiet pond", "smooth river stones", "wildflowers",
                                "drifting clouds"],
    "tonalities": ["warm golden", "cold blue", "soft pastel", "black and white", "neon", "vivid", "muted earthy",
                   "dark shadowy"],
    "atmospheres": ["peaceful", "tense", "joyful", "melancholic", "mysterious", "romantic", "energetic", "nostalgic",
                    "solemn", "dreamy", "cheerful", "playful", "serene", "wistful", "anxious", "uneasy", "loving",
                    "intimate", "eerie", "haunting", "lively", "exhilarating", "majestic", "triumphant"],
}

VARIABLES: dict[str, list[str]] = {**PAPER_VARIABLES, **EXTENSION_VARIABLES}

# CoT-VTM Appendix B.2, "Variable Templates", word for word: single-variable ones, then the
# double-variable ones (the first of which names animals literally).
TEMPLATES: dict[str, str] = {
    "natural": "Describe an image of a {natural_scenarios}.",
    "urban": "Imagine a {urban_scenarios} scene.",
    "indoor": "Create a detailed description of an {indoor_scenarios} setting.",
    "time": "Describe a scene that takes place during {time_periods}.",
    "season": "Illustrate an image showcasing the {seasons} season.",
    "holiday": "Imagine an image set in a {holidays} celebration.",
    "excited": "Describe a vivid picture with {excited_behaviors}.",
    "sad": "Imagine a melancholy scene with {sad_behaviors}.",
    "angry": "Create an image focusing on {angry_behaviors}.",
    "lonely": "Describe a scene conveying {lonely_behaviors}.",
    "confident": "Imagine an image where someone is displaying {confident_behaviors}.",
    "tonality": "Describe an artwork using {tonalities} tones.",
    "atmosphere": "Create a picture that conveys a {atmospheres} mood.",
    "season+animals": "Describe a {seasons} landscape with animals moving through it.",
    "calm+objects": "Imagine a serene scene with {calm_behaviors} and {outdoor_natural_objects}.",
    "confident+tonality": "Describe a vivid image featuring {confident_behaviors} and {tonalities} shades.",
    "urban+holiday": "Illustrate a {urban_scenarios} environment during {holidays}.",
    "natural+atmosphere": "Create a peaceful image showing {natural_scenarios} and {atmospheres}.",
    "urban+actions": "Describe a bustling scene featuring {urban_scenarios} and {character_actions}.",
    "emotions+sad": "Imagine an emotional setting with {character_emotions} and {sad_behaviors}.",
}
DOUBLE_TEMPLATES = ("season+animals", "calm+objects", "confident+tonality", "urban+holiday", "natural+atmosphere",
                    "urban+actions", "emotions+sad")

# The feeling families a template's instruction fixes ("a melancholy scene", "angry behaviors");
# an atmosphere template's family is its atmosphere's, and the other templates leave it free.
TEMPLATE_FAMILIES: dict[str, tuple[str, ...]] = {
    "excited": ("joyful", "energetic"), "sad": ("melancholic",), "lonely": ("melancholic",),
    "emotions+sad": ("melancholic",), "angry": ("tense",), "confident": ("epic", "energetic"),
    "confident+tonality": ("epic", "energetic"), "calm+objects": ("calm",),
}
# family -> the atmospheres that state it (the offline teacher's lexicon says which): the words
# a scene's description says it feels
MOODS: dict[str, list[str]] = {family: [a for a in VARIABLES["atmospheres"] if feeling_family(a) == family]
                               for family in FAMILIES}

_FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Scene:
    """One sampled scene: which template, which values, the scene text, and the feeling family
    its description states in ``mood``."""

    id: str
    template: str
    values: dict
    text: str
    feeling: str
    mood: str


def _articles(text: str) -> str:
    """'a energetic scene' -> 'an energetic scene', 'an gym' -> 'a gym'."""
    text = re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", r"\1n ", text)
    return re.sub(r"\b([Aa])n (?=[^aeiouAEIOU\W])", r"\1 ", text)


def variables_of(template: str) -> list[str]:
    return _FIELD.findall(TEMPLATES[template])


def sample_scenes(count: int, seed: int = 0) -> list[Scene]:
    """``count`` scenes; the same (seed, i) always gives the same scene, whatever ``count``."""
    order = list(TEMPLATES)
    random.Random(f"templates-{seed}").shuffle(order)
    scenes, used = [], Counter()
    for index in range(count):
        name = order[index % len(order)]
        scenes.append(_scene(f"scene-b2-{seed}-{index:06d}", name, random.Random(f"scene-{seed}-{index}"), used))
        used[scenes[-1].feeling] += 1
    return scenes


def _scene(ident: str, name: str, rng: random.Random, used: Counter) -> Scene:
    """One scene of template ``name``: its family is the one its template allows (an atmosphere
    template: its atmosphere's) that the scenes before it used least (ties drawn), so the
    families, and with them the genres, come out even."""
    values = {var: rng.choice(VARIABLES[var]) for var in variables_of(name)}
    allowed = (feeling_family(values["atmospheres"]),) if "atmospheres" in values else \
        TEMPLATE_FAMILIES.get(name, FAMILIES)
    fewest = min(used[family] for family in allowed)
    family = rng.choice([f for f in allowed if used[f] == fewest])
    mood = values.get("atmospheres") or rng.choice(MOODS[family])
    if "character_emotions" in values:
        mood = f"heavy with {values['character_emotions']}"
    text = _articles(TEMPLATES[name].format(**values))
    return Scene(id=ident, template=name, values=values, text=text, feeling=family, mood=mood)


# The template filler: a visual description from the scene's own values plus details
# chosen from small lists by a generator seeded with the scene id.
PLACES = ("natural_scenarios", "urban_scenarios", "indoor_scenarios")
PEOPLE = ("excited_behaviors", "sad_behaviors", "angry_behaviors", "lonely_behaviors", "confident_behaviors",
          "calm_behaviors", "character_actions")
SUBJECTS = {
    "natural_scenarios": ["a few birds cross the sky", "tall grass sways in the wind", "water moves slowly",
                          "a lone hiker walks along the edge", "leaves drift down"],
    "urban_scenarios": ["cars and buses pass by", "people hurry past with umbrellas", "neon signs flicker",
                        "a street musician plays", "pigeons scatter across the pavement"],
    "indoor_scenarios": ["a lamp glows in the corner", "someone sits by the window", "steam rises from a cup",
                         "shelves line the walls", "people move quietly"],
}
LIGHT = {
    "dawn": "pale pink light", "early morning": "soft morning light", "noon": "bright overhead sunlight",
    "a lazy afternoon": "warm afternoon light", "sunset": "golden orange light", "dusk": "fading purple light",
    "night": "dark blue shadows and scattered lights", "midnight": "deep darkness and a few cold lights",
}
DEFAULT_LIGHT = ["soft natural light", "bright daylight", "warm golden light", "cool grey light"]


def _place(scene: Scene, rng: random.Random) -> tuple[str, str]:
    """(which place list, the place): the scene's own, else one drawn to suit it."""
    for kind in PLACES:
        if kind in scene.values:
            return kind, scene.values[kind]
    kind = "natural_scenarios" if {"seasons", "outdoor_natural_objects"} & scene.values.keys() else rng.choice(PLACES)
    return kind, rng.choice(VARIABLES[kind])


def write_description(scene: Scene) -> str:
    """A two-sentence visual description of ``scene``; deterministic, no LLM."""
    rng = random.Random(scene.id)
    values = scene.values
    kind, place = _place(scene, rng)
    parts = [f"a {place}"]
    for key, word in (("seasons", "in"), ("holidays", "during"), ("time_periods", "at")):
        if key in values:
            parts.append(f"{word} {values[key]}")
    people = next((values[k] for k in PEOPLE if k in values), None)
    if people:
        parts.append(f"with {people}")
    if "outdoor_natural_objects" in values:
        parts.append(f"among {values['outdoor_natural_objects']}")
    if scene.template == "season+animals":
        parts.append("with animals moving through it")
    opening = _articles(" ".join(parts))
    light = LIGHT.get(values.get("time_periods"), None) or rng.choice(DEFAULT_LIGHT)
    if "tonalities" in values:
        light = f"{values['tonalities']} tones"
    detail = rng.choice(SUBJECTS[kind])
    return f"{opening[0].upper()}{opening[1:]}, seen in {light}: {detail}. The whole scene feels {scene.mood}."
