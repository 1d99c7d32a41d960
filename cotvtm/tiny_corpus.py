"""A small deterministic text corpus for training the tiny preset's tokenizers.

The tiny models are random, but their tokenizers must really tokenize the kind of
text the system feeds them (captions, visual elements, music descriptions), so
they are trained on sentences built from these word lists.
"""

import itertools

SUBJECTS = [
    "a red car", "a small dog", "two children", "an old man", "a city street", "a forest",
    "the ocean", "a mountain lake", "a crowded market", "a dancer", "a chef", "a bicycle",
    "a cat", "a skyline", "a snowy field", "a desert road", "a football team", "a candle",
]
SCENES = [
    "at night", "in the rain", "at sunset", "on a sunny beach", "in a kitchen", "under neon lights",
    "in slow motion", "from above", "in a quiet room", "during a storm", "in spring", "at dawn",
]
ACTIONS = ["runs", "drives", "dances", "waits", "jumps", "glows", "moves", "rests", "spins", "cooks"]
GENRES = ["ambient", "rock", "jazz", "electronic", "orchestral", "folk", "hip hop", "pop", "lo-fi", "cinematic"]
INSTRUMENTS = [
    "piano", "strings", "drums", "electric guitar", "acoustic guitar", "synth pads", "bass",
    "violin", "cello", "flute", "brass", "marimba", "choir", "harp",
]
MOODS = ["calm", "happy", "tense", "sad", "energetic", "dreamy", "dark", "uplifting", "playful", "epic"]
RHYTHMS = ["slow tempo", "fast tempo", "steady beat", "syncopated groove", "gentle pulse", "driving rhythm"]
COLOURS = ["red", "blue", "golden", "green", "grey", "purple", "warm", "cold", "bright", "dim"]


def sentences() -> list[str]:
    """Visual captions and music descriptions in the shape the pipeline produces."""
    out = []
    for subject, action, scene in itertools.product(SUBJECTS, ACTIONS, SCENES):
        out.append(f"{subject} {action} {scene}.")
    for genre, inst, mood, rhythm in zip(
        itertools.cycle(GENRES), INSTRUMENTS * 3, itertools.cycle(MOODS), itertools.cycle(RHYTHMS)
    ):
        out.append(f"A {mood} {genre} piece with {inst}, {rhythm}.")
        out.append(f"Visual elements: {mood} emotion, {COLOURS[len(out) % len(COLOURS)]} colours; music: {genre}.")
    out.extend(" ".join(words) for words in (GENRES, INSTRUMENTS, MOODS, RHYTHMS, COLOURS))
    return out
