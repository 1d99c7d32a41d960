"""The offline teacher: the three CoT steps done with lexicons and rules, no LLM.

It exists so that the data pipeline, the demo and the tests run with no endpoint and no
cost. It is deterministic (same caption, same answer), writes the very schema the LLM
teacher is asked for, and marks every record ``teacher: "offline-rules"`` so that its
labels are never mistaken for an LLM's. Its music is plausible, not insightful.

Step 1 finds objects, emotion words, motion words and colour words in the caption.
Step 2 maps emotion -> genre, instruments and musical emotion; motion -> rhythm;
colour -> timbre (one more instrument and an adjective).
Step 3 fills a description template from the music elements.
"""

import json
import re
from collections import Counter
from dataclasses import dataclass

from cotvtm.teacher.ingest import CaptionItem
from cotvtm.teacher.prompt import DIRECT_PROMPT_VERSION, PAPER_PROMPT_VERSION, PROMPT_VERSION, clean_caption
from cotvtm.teacher.records import LabelRecord
from cotvtm.teacher.schema import CotAnswer, DirectAnswer, paper_json, x_mt, x_rt

TEACHER = "offline-rules"
MODEL = "offline-rules-v1"  # bump when a lexicon or rule changes: labels are stored per model

OBJECTS = [
    "balloon", "sky", "hill", "mountain", "sea", "ocean", "beach", "wave", "lake", "river", "waterfall", "forest",
    "tree", "flower", "meadow", "field", "desert", "snow", "city", "street", "road", "highway", "car", "bus",
    "train", "station", "bridge", "building", "skyscraper", "market", "crowd", "people", "child", "children",
    "family", "couple", "man", "woman", "dog", "cat", "bird", "horse", "dancer", "musician", "runner", "cyclist",
    "kitchen", "library", "cafe", "room", "window", "candle", "fire", "lamp", "book", "piano", "guitar", "boat",
    "ship", "plane", "island", "garden", "park", "rain", "storm", "fog", "cloud", "moon", "star", "sun", "festival",
    "party", "wedding", "concert", "stadium", "alley", "harbour", "museum", "classroom", "gym", "hospital",
]

# emotion class -> words that signal it (first listed class wins ties)
EMOTION_WORDS = {
    "joyful": ["happy", "joy", "joyful", "smiling", "smile", "laughing", "laugh", "colorful", "colourful",
               "celebrating", "celebration", "festive", "festival", "party", "playing", "playful", "birthday",
               "cheerful", "bright", "sunny", "fun", "christmas", "holiday", "balloon"],
    "calm": ["calm", "quiet", "peaceful", "serene", "gentle", "still", "tranquil", "relaxing", "resting", "lazy",
             "soft", "floats", "floating", "drifts", "drifting", "lake", "meadow", "reading", "sunrise", "dawn"],
    "melancholic": ["sad", "lonely", "alone", "lone", "empty", "grey", "gray", "rain", "rainy", "tears", "old",
                    "abandoned", "melancholic", "nostalgic", "autumn", "fading", "memories", "goodbye"],
    "tense": ["tense", "storm", "thunderstorm", "danger", "chase", "chasing", "fire", "police", "fight", "war",
              "scream", "siren", "crash", "escape", "threatening", "hurry"],
    "romantic": ["romantic", "love", "couple", "kiss", "wedding", "candle", "candlelight", "hand", "embrace",
                 "hugging", "valentine"],
    "mysterious": ["mysterious", "fog", "foggy", "mist", "misty", "shadow", "shadowy", "cave", "midnight",
                   "moonlight", "moon", "secret", "ghost", "halloween", "dark"],
    "energetic": ["energetic", "dancing", "dance", "running", "race", "racing", "crowd", "cheering", "concert",
                  "sport", "football", "stadium", "jumping", "busy", "neon", "training", "workout", "gym"],
    "epic": ["epic", "majestic", "vast", "mountain", "mountains", "ocean", "sky", "hills", "canyon", "volcanic",
             "towering", "skyline", "waterfall", "eagle", "solemn"],
}

# motion class -> words
MOTION_WORDS = {
    "fast": ["runs", "running", "race", "racing", "speeding", "rushing", "rushes", "jumps", "jumping", "dancing",
             "dances", "flying", "flies", "crashing", "chase", "chasing", "spinning", "spins", "hurry", "hurries",
             "busy", "fast", "quickly", "cheering", "storm", "thunderstorm", "wind"],
    "slow": ["floats", "floating", "drifts", "drifting", "walks", "walking", "strolls", "strolling", "rests",
             "resting", "sits", "sitting", "sleeps", "sleeping", "glides", "gliding", "slowly", "slow", "sways",
             "swaying", "reading", "waits", "waiting", "still", "calm", "quiet"],
}

COLOUR_WORDS = {
    "warm": ["red", "orange", "golden", "gold", "yellow", "amber", "sunset", "sunrise", "fire", "warm", "candle",
             "candlelight", "autumn"],
    "cool": ["blue", "green", "teal", "turquoise", "ocean", "sea", "snow", "snowy", "ice", "icy", "winter", "cold",
             "silver", "lake"],
    "vivid": ["colorful", "colourful", "neon", "bright", "vivid", "rainbow", "pink", "purple", "sunny", "pastel"],
    "muted": ["grey", "gray", "pale", "foggy", "fog", "misty", "mist", "dim", "muted", "brown", "earthy", "white",
              "rain", "rainy"],
    "dark": ["dark", "black", "night", "midnight", "shadow", "shadowy", "moonlight", "dusk"],
}

GENRE = {
    "joyful": "upbeat acoustic pop", "calm": "ambient", "melancholic": "neo-classical",
    "tense": "cinematic thriller", "romantic": "soft jazz", "mysterious": "dark ambient",
    "energetic": "electronic dance", "epic": "orchestral",
}
INSTRUMENTS = {
    "joyful": ["acoustic guitar", "ukulele", "hand claps"], "calm": ["soft piano", "warm synth pads", "flute"],
    "melancholic": ["solo piano", "cello", "strings"], "tense": ["low strings", "taiko drums", "brass stabs"],
    "romantic": ["piano", "saxophone", "upright bass"], "mysterious": ["drones", "celesta", "distant choir"],
    "energetic": ["synthesizers", "electronic drums", "bass"], "epic": ["full strings", "french horns", "timpani"],
}
MUSIC_EMOTION = {
    "joyful": "cheerful and bright", "calm": "serene and relaxed", "melancholic": "wistful and tender",
    "tense": "suspenseful and urgent", "romantic": "warm and intimate", "mysterious": "mysterious and haunting",
    "energetic": "energetic and driving", "epic": "majestic and uplifting",
}
RHYTHM = {
    "fast": "fast tempo around 128 BPM with a driving beat",
    "moderate": "moderate tempo around 100 BPM with a steady groove",
    "slow": "slow tempo around 70 BPM with a gentle, flowing pulse",
}
DYNAMIC = {"fast": "fast, lively movement", "moderate": "moderate, steady movement",
           "slow": "slow, gentle movement"}
TIMBRE = {  # colour -> (adjective, extra instrument)
    "warm": ("warm", "mellow electric piano"), "cool": ("airy", "glassy bells"),
    "vivid": ("bright", "glockenspiel"), "muted": ("soft, hazy", "muted guitar"),
    "dark": ("deep, shadowy", "sub bass"), "neutral": ("clean", "light percussion"),
}
COLOUR_TEXT = {"warm": "warm tones", "cool": "cool tones", "vivid": "vivid, saturated colors",
               "muted": "muted, soft colors", "dark": "dark, low-key light", "neutral": "natural, balanced colors"}

_WORD = re.compile(r"[a-z]+")


def _words(caption: str) -> list[str]:
    return _WORD.findall(caption.lower())


def _stem_forms(word: str) -> set[str]:
    forms = {word}
    for suffix in ("es", "s"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            forms.add(word[: -len(suffix)])
    return forms


def _classify(words: list[str], lexicon: dict[str, list[str]], default: str) -> tuple[str, list[str]]:
    """The class with the most hits (ties: the first in the lexicon), and the words that hit."""
    lookup = {w: cls for cls, entries in lexicon.items() for w in entries}
    counts, hits = Counter(), {}
    for word in words:
        cls = lookup.get(word)
        if cls is not None:
            counts[cls] += 1
            hits.setdefault(cls, []).append(word)
    if not counts:
        return default, []
    best = max(lexicon, key=lambda cls: counts.get(cls, 0))
    return best, hits[best]


def _objects(words: list[str]) -> list[str]:
    wanted, found = set(OBJECTS), []
    for word in words:
        match = next((f for f in sorted(_stem_forms(word)) if f in wanted), None)
        if match and match not in found:
            found.append(match)
    return found[:4]


def _an(text: str) -> str:
    """'a energetic' -> 'an energetic' in generated text."""
    return re.sub(r"\b([Aa]) (?=[aeiou])", r"\1n ", text)


def _quote(words: list[str]) -> str:
    return ", ".join(f"'{w}'" for w in dict.fromkeys(words))


@dataclass(frozen=True)
class Visuals:
    """Step 1's findings: classes, and the caption words that decided them."""

    text: str
    objects: str
    emotion: str
    motion: str
    colour: str
    hits: dict


def see(caption: str) -> Visuals:
    """Step 1: objects, emotion, motion and colour from the caption's words."""
    text = clean_caption(caption)
    words = _words(text)
    objects = _objects(words)
    emotion, emotion_hits = _classify(words, EMOTION_WORDS, "calm")
    motion, motion_hits = _classify(words, MOTION_WORDS, "moderate")
    colour, colour_hits = _classify(words, COLOUR_WORDS, "neutral")
    return Visuals(text, ", ".join(objects) if objects else "the scene as a whole", emotion, motion, colour,
                   {"emotion": emotion_hits, "motion": motion_hits, "colour": colour_hits})


def _step1(v: Visuals) -> dict:
    hits = v.hits
    reasoning = " ".join([
        f"The main objects are: {v.objects}.",
        f"Words such as {_quote(hits['emotion'])} convey a {v.emotion} emotion." if hits["emotion"]
        else f"No strong emotion words appear, so the mood is taken as {v.emotion}.",
        f"The motion ({_quote(hits['motion'])}) is {v.motion}." if hits["motion"] else "The motion is moderate.",
        f"The colors ({_quote(hits['colour'])}) are {v.colour}." if hits["colour"] else "No colors are named.",
    ])
    summary = f": a {v.emotion} scene with {DYNAMIC[v.motion]} and {COLOUR_TEXT[v.colour]}."
    return {"reasoning": _an(reasoning),
            "visual_elements": {"object": v.objects, "emotion": v.emotion, "dynamic": DYNAMIC[v.motion],
                                "color": COLOUR_TEXT[v.colour]},
            "visual_description": v.text.rstrip(".") + _an(summary)}


def _step2(v: Visuals) -> dict:
    adjective, extra = TIMBRE[v.colour]
    reasoning = (f"A {v.emotion} scene suits {GENRE[v.emotion]} music with {', '.join(INSTRUMENTS[v.emotion])}; "
                 f"{v.motion} movement sets a {RHYTHM[v.motion].split(' with ')[0]}; "
                 f"{COLOUR_TEXT[v.colour]} add a {adjective} timbre with {extra}.")
    return {"reasoning": _an(reasoning),
            "music_elements": {"genre": GENRE[v.emotion], "instruments": ", ".join(INSTRUMENTS[v.emotion] + [extra]),
                               "emotion": MUSIC_EMOTION[v.emotion], "rhythm": RHYTHM[v.motion]}}


def _step3(v: Visuals) -> dict:
    adjective, extra = TIMBRE[v.colour]
    description = (f"A {MUSIC_EMOTION[v.emotion]} {GENRE[v.emotion]} piece with "
                   f"{', '.join(INSTRUMENTS[v.emotion])} and {extra}, {adjective} in timbre, at a {RHYTHM[v.motion]}.")
    return {"music_description": _an(description)}


def reason(caption: str) -> CotAnswer:
    """The three steps for one caption."""
    v = see(caption)
    return CotAnswer.model_validate({"step1": _step1(v), "step2": _step2(v), "step3": _step3(v)})


class OfflineTeacher:
    """Labels caption items with the rules above; a drop-in for the LLM teacher."""

    teacher = TEACHER
    model = MODEL

    def __init__(self, cot: bool = True, prompt: str = PROMPT_VERSION):
        self.cot = cot
        self.prompt_version = prompt if cot else DIRECT_PROMPT_VERSION

    def label(self, item: CaptionItem, caption: str | None = None) -> LabelRecord:
        caption = caption if caption is not None else item.caption
        if item.error:  # no caption could be written: nothing to label
            return LabelRecord(id=item.id, caption="", media=item.media, source=item.source, teacher=TEACHER,
                               model=MODEL, prompt_version=self.prompt_version, status="failed", reason=item.error,
                               caption_source=item.caption_source)
        answer = reason(caption)
        raw, answer_format = answer.model_dump_json(), "cot-v1"
        if not self.cot:
            answer = DirectAnswer(music_description=x_mt(answer))
            raw, answer_format = answer.model_dump_json(), "direct"
        elif self.prompt_version == PAPER_PROMPT_VERSION:  # answered as the paper's prompt asks
            raw, answer_format = json.dumps(paper_json(answer, caption), ensure_ascii=False), "paper"
        return LabelRecord(id=item.id, caption=caption, media=item.media, source=item.source,
                           teacher=TEACHER, model=MODEL, prompt_version=self.prompt_version, status="ok",
                           raw=raw, parsed=answer.model_dump(), x_rt=x_rt(answer), x_mt=x_mt(answer),
                           answer_format=answer_format, caption_source=item.caption_source)
