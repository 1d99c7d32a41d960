"""Whether a bank's music says what its captions feel: rules over texts, no models.

An entry is coherent when the family of the feeling its caption states or names (the offline
teacher's step-1 rules), its ``feeling`` where that is a family, and the emotion family of its
description (the teacher's genre it names, else its feeling words) are one family wherever
they are known; when the description's tempo lies in that family's range (``TEMPO_RANGE``);
and when it does not pair calm words ("serene", "gentle") with driving ones ("urgent",
"driving beat", 128 BPM). A bank is spread when no family holds more than
``MAX_FAMILY_SHARE`` times its fair share of the entries and no description opening (its
first ``OPENING_WORDS`` words) more than ``MAX_OPENING_SHARE`` of them, so that retrieval has
more than a few kinds of music to choose from.
"""

import re
from collections import Counter

from cotvtm.teacher.offline import FAMILIES, GENRE, TEMPO_RANGE, find_feeling, feeling_family, pace

MAX_FAMILY_SHARE = 2.0  # times the fair share (1/8): one family at a quarter of the bank is already lopsided
OPENING_WORDS = 5  # "A serene and relaxed ambient": the emotion and genre of a template-made description
MAX_OPENING_SHARE = 0.25  # twice a family's fair share: a bank needs no opening more often than its family
CALM_WORDS = ("serene", "relaxed", "peaceful", "tranquil", "calm", "gentle", "soothing", "dreamy", "slow tempo")
DRIVING_WORDS = ("urgent", "driving", "energetic", "frantic", "pounding", "fast tempo")

_GENRES = sorted(GENRE.items(), key=lambda item: -len(item[1]))  # "dark ambient" before "ambient"
_BPM = re.compile(r"(\d+)\s*bpm\b")


def music_family(description: str) -> str | None:
    """The family whose genre the description names, else the one its feeling words name."""
    text = description.lower()
    genre = next((family for family, name in _GENRES if re.search(rf"\b{re.escape(name)}\b", text)), None)
    return genre or feeling_family(text)


def bpm_of(description: str) -> int | None:
    found = _BPM.search(description.lower())
    return int(found.group(1)) if found else None


def _says(text: str, words: tuple[str, ...]) -> list[str]:
    return [w for w in words if re.search(rf"\b{w}\b", text)]


def contradiction(description: str) -> str | None:
    """Why the description contradicts itself (calm words with driving ones), or None."""
    text, bpm = description.lower(), bpm_of(description)
    calm, driving = _says(text, CALM_WORDS), _says(text, DRIVING_WORDS)
    if bpm is not None:
        (calm if pace(bpm) == "slow" else driving if pace(bpm) == "fast" else []).append(f"{bpm} BPM")
    return f"calm ({', '.join(calm)}) yet driving ({', '.join(driving)})" if calm and driving else None


def _families(caption: str, description: str, feeling: str | None) -> dict[str, str]:
    """Each known family of the entry: of its caption, its feeling field, its music."""
    seen = find_feeling(caption)
    found = {"caption": seen.family if seen.source in ("stated", "named") else None,
             "feeling": feeling if feeling in FAMILIES else None, "music": music_family(description)}
    return {k: v for k, v in found.items() if v is not None}


def entry_problems(caption: str, description: str, feeling: str | None = None) -> list[str]:
    """What is wrong with one entry: disagreeing families, a tempo outside the range, a
    self-contradiction; empty when nothing is."""
    problems, families = [], _families(caption, description, feeling)
    if len(set(families.values())) > 1:
        problems.append("feelings disagree: " + ", ".join(f"{k} {v}" for k, v in families.items()))
    family, bpm = families.get("caption") or families.get("music"), bpm_of(description)
    if family and bpm is not None and not TEMPO_RANGE[family][0] <= bpm <= TEMPO_RANGE[family][1]:
        problems.append(f"{bpm} BPM is outside {family}'s {TEMPO_RANGE[family][0]}-{TEMPO_RANGE[family][1]}")
    if (why := contradiction(description)) is not None:
        problems.append(f"the music contradicts itself: {why}")
    return problems


def opening(description: str) -> str:
    return " ".join(description.split()[:OPENING_WORDS])


def spread_problems(entries) -> list[str]:
    """Families or openings that take far more of the bank than their share."""
    if not entries:
        return []
    families = Counter(e.feeling if e.feeling in FAMILIES else music_family(e.description) for e in entries)
    limit = MAX_FAMILY_SHARE * len(entries) / len(FAMILIES)
    problems = [f"family {f} holds {n} of {len(entries)} entries (over {limit:.0f})"
                for f, n in families.items() if f is not None and n > limit]
    openings = Counter(opening(e.description) for e in entries)
    return problems + [f"opening {o!r} starts {n} of {len(entries)} descriptions (over {MAX_OPENING_SHARE:.0%})"
                       for o, n in openings.items() if n > MAX_OPENING_SHARE * len(entries)]


def bank_problems(entries) -> list[str]:
    """Every problem of a bank's entries (``id: why``), then of its spread."""
    return [f"{e.id}: {p}" for e in entries for p in entry_problems(e.caption, e.description, e.feeling)] \
        + spread_problems(entries)
