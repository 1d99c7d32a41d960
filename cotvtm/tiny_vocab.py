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


# Tokenizer *training* (tokenizers' BPE and Unigram trainers) breaks ties in hash-map
# order and is not reproducible run to run, so the tiny vocabularies are constructed
# instead: every corpus word becomes one token through a chain of prefix merges. The
# result is a valid BPE / Unigram model that the standard tokenizer classes load.

PUNCTUATION = list(".,;:-'!?")


def words() -> list[str]:
    """The corpus's distinct lowercase words, sorted."""
    import re

    return sorted({w for s in sentences() for w in re.findall(r"[a-z]+", s.lower())})


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, extra = keep[:], 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, map(chr, chars)))


def _prefix_merges(pieces_per_word: list[list[str]], vocab: dict[str, int]) -> list[tuple[str, str]]:
    merges, seen = [], set()
    for pieces in pieces_per_word:
        prefix = pieces[0]
        for piece in pieces[1:]:
            pair = (prefix, piece)
            prefix += piece
            if pair not in seen:
                seen.add(pair)
                merges.append(pair)
                vocab.setdefault(prefix, len(vocab))
    return merges


def clip_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level BPE with CLIP's '</w>' word ends; one token per corpus word."""
    base = list(_bytes_to_unicode().values())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in base + [b + "</w>" for b in base]:
        vocab.setdefault(symbol, len(vocab))
    pieces = [list(w[:-1]) + [w[-1] + "</w>"] for w in words()]
    return vocab, _prefix_merges(pieces, vocab)


def llama_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """SentencePiece-style BPE ('▁' marks a word start) with byte fallback."""
    return _byte_fallback_bpe(["<unk>", "<s>", "</s>"])


def gemma_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Llama's pieces under Gemma's special tokens and ids (pad 0, eos 1, bos 2, unk 3, mask 4),
    which a T5Gemma config names."""
    return _byte_fallback_bpe(["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"])


def _byte_fallback_bpe(specials: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    vocab = {token: n for n, token in enumerate(specials)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for symbol in ["▁"] + sorted(set("".join(words()))) + PUNCTUATION:
        vocab.setdefault(symbol, len(vocab))
    return vocab, _prefix_merges([["▁", *w] for w in words()], vocab)


def t5_vocab() -> list[tuple[str, float]]:
    """Unigram pieces: specials, '▁', single characters, and '▁word' for every word."""
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(c, -5.0) for c in sorted(set("".join(words()))) + PUNCTUATION]
    pieces += [("▁" + w, -1.0) for w in words()]
    return pieces
