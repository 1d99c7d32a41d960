"""The offline teacher: the three CoT steps done with lexicons and rules, no LLM.

It exists so that the data pipeline, the demo and the tests run with no endpoint and no
cost. It is deterministic (same caption, same answer), writes the very schema the LLM
teacher is asked for, and marks every record ``teacher: "offline-rules"`` so that its
labels are never mistaken for an LLM's. Its music is plausible, not insightful.

Step 1 finds objects, motion words and colour words in the caption, and the emotion family
(one of ``FAMILIES``) from, in this order: the feeling the caption states ("feels tense",
"a serene scene", "conveys a joyful mood", "heavy with grief"); else words that name a
feeling or a feeling's behaviour anywhere ("crying", "cheering", "lonely"); else the votes
of scene words ("storm", "candle", "balloon"). The first of these to find anything decides,
and the reasoning quotes the words that did.
Step 2 maps the family to genre, instruments and musical emotion (a stated feeling with a
shade of its own, such as "nostalgic", names it); the family sets a tempo range
(``TEMPO_RANGE``) and the motion words only place the tempo within it, so a calm piece is
never given a driving 128 BPM beat; colour -> timbre (one more instrument and an adjective).
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
MODEL = "offline-rules-v2"  # bump when a lexicon or rule changes: labels are stored per model

FAMILIES = ("joyful", "calm", "melancholic", "tense", "romantic", "mysterious", "energetic", "epic")

OBJECTS = [
    "balloon", "sky", "hill", "mountain", "sea", "ocean", "beach", "wave", "lake", "river", "waterfall", "forest",
    "tree", "flower", "meadow", "field", "desert", "snow", "city", "street", "road", "highway", "car", "bus",
    "train", "station", "bridge", "building", "skyscraper", "market", "crowd", "people", "child", "children",
    "family", "couple", "man", "woman", "dog", "cat", "bird", "horse", "dancer", "musician", "runner", "cyclist",
    "kitchen", "library", "cafe", "room", "window", "candle", "fire", "lamp", "book", "piano", "guitar", "boat",
    "ship", "plane", "island", "garden", "park", "rain", "storm", "fog", "cloud", "moon", "star", "sun", "festival",
    "party", "wedding", "concert", "stadium", "alley", "harbour", "museum", "classroom", "gym", "hospital",
]

# family -> words that name the feeling: stated ("feels tense") or named anywhere ("a sad man"),
# such a word decides the family
FEELINGS = {
    "joyful": ["joyful", "joyous", "joy", "happy", "happiness", "cheerful", "playful", "merry", "festive", "jubilant",
               "delighted", "glad", "lighthearted", "carefree", "gleeful", "elated"],
    "calm": ["calm", "peaceful", "peace", "serene", "serenity", "tranquil", "relaxed", "relaxing", "restful",
             "soothing", "dreamy", "meditative", "contemplative", "placid", "idyllic", "cosy", "cozy"],
    "melancholic": ["melancholic", "melancholy", "sad", "sadness", "sorrow", "sorrowful", "lonely", "loneliness",
                    "nostalgic", "nostalgia", "wistful", "grief", "mournful", "longing", "regret", "homesickness",
                    "homesick", "gloomy", "somber", "sombre", "bittersweet", "forlorn", "heartbroken", "desolate",
                    "despair"],
    "tense": ["tense", "tension", "angry", "anger", "rage", "furious", "anxious", "anxiety", "uneasy", "fearful",
              "fear", "afraid", "scared", "frightening", "terrifying", "menacing", "threatening", "suspenseful",
              "hostile", "panicked", "frantic", "dread", "nervous"],
    "romantic": ["romantic", "romance", "loving", "love", "intimate", "affectionate", "passionate"],
    "mysterious": ["mysterious", "mystery", "eerie", "haunting", "haunted", "mystical", "enigmatic", "ominous",
                   "spooky", "uncanny", "otherworldly", "surreal", "magical"],
    "energetic": ["energetic", "lively", "exhilarating", "excited", "excitement", "exciting", "vibrant", "dynamic",
                  "exuberant", "thrilling", "euphoric", "rowdy"],
    "epic": ["epic", "majestic", "solemn", "grand", "triumphant", "heroic", "awe", "awestruck", "proud", "pride",
             "confident", "sublime", "reverent", "glorious", "victorious", "stately", "monumental"],
}
# family -> actions that show the feeling (B.2's excited, sad, angry, lonely, confident and calm
# behaviours among them): named anywhere, they count with the feeling words
BEHAVIOURS = {
    "joyful": ["laughing", "laughs", "smiling", "smiles", "celebrating", "celebrates", "giggling"],
    "calm": ["meditating", "meditates", "reading", "resting", "rests", "strolling", "strolls", "napping", "dozing"],
    "melancholic": ["crying", "cries", "weeping", "weeps", "tears", "mourner", "mourning", "mourns", "grieving",
                    "sighing", "alone"],
    "tense": ["shouting", "yelling", "yells", "screaming", "screams", "slamming", "slams", "fighting", "fights",
              "arguing", "kicking", "tearing", "protester", "fleeing", "chasing"],
    "romantic": ["kissing", "kisses", "embracing", "embraces", "cuddling", "hugging"],
    "mysterious": ["whispering", "lurking", "hiding", "vanishing"],
    "energetic": ["cheering", "cheers", "dancing", "dances", "jumping", "jumps", "racing", "sprinting", "partying",
                  "waving"],
    "epic": ["victory", "triumph", "assured", "bold", "upright", "conquering"],
}
# Words that state the feeling that follows them ("feels tense", "heavy with grief", "conveys a
# joyful mood"; up to three words on, within the sentence) or that precedes them ("a serene scene").
_STATES_AFTER = re.compile(r"\b(?:feels?|feeling|seems|looks|conveys?|conveying|evokes?|evoking|exudes?|"
                           r"radiates?|heavy with|full of|filled with|sense of|air of|mood is|atmosphere is)"
                           r"(?=((?: +[a-z]+){1,3}))")
_STATES_BEFORE = re.compile(r"\b([a-z]+) (?:mood|atmosphere|feeling|air|tone|vibe|scene|image|picture|setting|"
                            r"moment)\b")

# family -> (slowest, fastest) BPM its music is written at: motion places the tempo within the
# range (slow: its floor, fast: its ceiling), never outside it, so no calm piece gets a driving beat
TEMPO_RANGE = {
    "calm": (60, 80), "melancholic": (60, 84), "romantic": (66, 96), "mysterious": (60, 96), "epic": (70, 110),
    "joyful": (96, 128), "tense": (90, 150), "energetic": (116, 150),
}
SLOW_MAX_BPM = 84  # up to here a tempo reads "slow ... gentle, flowing pulse": the pace of a ballad
FAST_MIN_BPM = 116  # from here "fast ... driving beat": dance and chase music; between them "moderate"

# scene words that suggest an emotion class when no feeling is stated or named (the class with
# most hits; ties go to the class named first)
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
# a stated feeling with a shade of its own names it in the music's emotion
SHADES = {
    "nostalgic": "nostalgic and wistful", "solemn": "solemn and stately", "dreamy": "dreamy and serene",
    "playful": "playful and bright", "eerie": "eerie and haunting", "triumphant": "triumphant and soaring",
    "anxious": "anxious and suspenseful", "lively": "lively and bouncing",
}
PULSE = {"slow": "a gentle, flowing pulse", "moderate": "a steady groove", "fast": "a driving beat"}
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


def _lookup(lexicon: dict[str, list[str]]) -> dict[str, str]:
    return {w: cls for cls, entries in lexicon.items() for w in entries}


FEELING_OF = _lookup(FEELINGS)
_NAMED_OF = {**_lookup(BEHAVIOURS), **FEELING_OF}
_SCENE_WORD_OF = _lookup(EMOTION_WORDS)


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
    lookup = _lookup(lexicon)
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


def _vote(hits: list[tuple[str, str]]) -> tuple[str, list[str]] | None:
    """(family, its words) for the family with the most (family, word) hits; ties go to the
    family named first. None for no hits."""
    if not hits:
        return None
    counts = Counter(family for family, _ in hits)
    best = max(counts, key=counts.get)  # a Counter keeps first-seen order: the first named wins ties
    return best, [word for family, word in hits if family == best]


def stated_feelings(text: str) -> list[tuple[str, str]]:
    """(feeling word, the words that state it) for each feeling ``text`` states, in text order:
    "feels tense" -> ("tense", "feels tense"), "a serene scene" -> ("serene", "serene scene")."""
    text, found = text.lower(), {}
    for match in _STATES_AFTER.finditer(text):
        for word in _WORD.finditer(text, match.start(1), match.end(1)):
            if word.group() in FEELING_OF:
                found.setdefault(word.start(), (word.group(), text[match.start():word.end()]))
    for match in _STATES_BEFORE.finditer(text):
        if match.group(1) in FEELING_OF:
            found.setdefault(match.start(1), (match.group(1), match.group(0)))
    return [found[position] for position in sorted(found)]


def feeling_family(text: str) -> str | None:
    """The family ``text`` (a caption, or an LLM's free-text emotion such as "quiet longing")
    states or names, by the rules of step 1; None when it names none."""
    stated = stated_feelings(text)
    hits = [(FEELING_OF[w], w) for w, _ in stated] or [(_NAMED_OF[w], w) for w in _words(text) if w in _NAMED_OF]
    vote = _vote(hits)
    return vote[0] if vote else None


@dataclass(frozen=True)
class Feeling:
    """The emotion family, how it was found, and the words that decided it."""

    family: str
    source: str  # "stated", "named", "scene words" or "default"
    words: list[str]  # quoted in the reasoning
    word: str | None  # the feeling word that decided, where one did (it may give a shade)


def find_feeling(text: str) -> Feeling:
    """Step 1's emotion: the stated feeling, else feeling words and behaviours, else scene words."""
    stated = stated_feelings(text)
    vote = _vote([(FEELING_OF[w], phrase) for w, phrase in stated])
    if vote:
        word = next(w for w, _ in stated if FEELING_OF[w] == vote[0])
        return Feeling(vote[0], "stated", vote[1], word)
    words = _words(text)
    vote = _vote([(_NAMED_OF[w], w) for w in words if w in _NAMED_OF])
    if vote:
        return Feeling(vote[0], "named", vote[1], next((w for w in vote[1] if w in FEELING_OF), None))
    vote = _vote([(_SCENE_WORD_OF[w], w) for w in words if w in _SCENE_WORD_OF])
    if vote:
        return Feeling(vote[0], "scene words", vote[1], None)
    return Feeling("calm", "default", [], None)


def tempo(family: str, motion: str) -> int:
    """The BPM for ``motion`` within the family's range: slow its floor, fast its ceiling."""
    low, high = TEMPO_RANGE[family]
    return {"slow": low, "moderate": (low + high) // 2, "fast": high}[motion]


def pace(bpm: int) -> str:
    return "slow" if bpm <= SLOW_MAX_BPM else "fast" if bpm >= FAST_MIN_BPM else "moderate"


def rhythm(bpm: int) -> str:
    return f"{pace(bpm)} tempo around {bpm} BPM with {PULSE[pace(bpm)]}"


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
    feeling: Feeling
    motion: str
    colour: str
    hits: dict

    @property
    def emotion(self) -> str:
        return self.feeling.family

    @property
    def bpm(self) -> int:
        return tempo(self.emotion, self.motion)

    @property
    def music_emotion(self) -> str:
        return SHADES.get(self.feeling.word, MUSIC_EMOTION[self.emotion])


def see(caption: str) -> Visuals:
    """Step 1: objects, emotion family, motion and colour from the caption's words."""
    text = clean_caption(caption)
    words = _words(text)
    objects = _objects(words)
    motion, motion_hits = _classify(words, MOTION_WORDS, "moderate")
    colour, colour_hits = _classify(words, COLOUR_WORDS, "neutral")
    return Visuals(text, ", ".join(objects) if objects else "the scene as a whole", find_feeling(text), motion,
                   colour, {"motion": motion_hits, "colour": colour_hits})


def _emotion_reason(feeling: Feeling) -> str:
    words, family = _quote(feeling.words), feeling.family
    return {"stated": f"The caption states the feeling ({words}), so the emotion is {family}.",
            "named": f"No feeling is stated, but words such as {words} convey a {family} emotion.",
            "scene words": f"No feeling is stated or named; scene words such as {words} suggest a {family} emotion.",
            "default": f"No feeling is stated and no word suggests one, so the mood is taken as {family}."}[
        feeling.source]


def _step1(v: Visuals) -> dict:
    hits = v.hits
    reasoning = " ".join([
        f"The main objects are: {v.objects}.",
        _emotion_reason(v.feeling),
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
    low, high = TEMPO_RANGE[v.emotion]
    moved = f"{v.motion} movement ({_quote(v.hits['motion'])})" if v.hits["motion"] else f"{v.motion} movement"
    reasoning = (f"A {v.emotion} scene suits {v.music_emotion} {GENRE[v.emotion]} music with "
                 f"{', '.join(INSTRUMENTS[v.emotion])}; {v.emotion} music moves between {low} and {high} BPM, "
                 f"and {moved} places it at {v.bpm} BPM; {COLOUR_TEXT[v.colour]} add a {adjective} timbre with {extra}.")
    return {"reasoning": _an(reasoning),
            "music_elements": {"genre": GENRE[v.emotion], "instruments": ", ".join(INSTRUMENTS[v.emotion] + [extra]),
                               "emotion": v.music_emotion, "rhythm": rhythm(v.bpm)}}


def _step3(v: Visuals) -> dict:
    adjective, extra = TIMBRE[v.colour]
    description = (f"A {v.music_emotion} {GENRE[v.emotion]} piece with "
                   f"{', '.join(INSTRUMENTS[v.emotion])} and {extra}, {adjective} in timbre, at a {rhythm(v.bpm)}.")
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
