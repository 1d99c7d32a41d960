"""Retrieval banks as the teacher writes them: one entry per captioned scene, its description the
teacher's music for it (the prior reads banks, ``prior/bank.py``, and never imports the teacher).

The shipped bank (``prior.bank.SHIPPED``) is ``from_scenes()``: scene texts from the paper's scene
templates, whose feelings cycle evenly through the offline teacher's eight families, labelled by
the offline teacher, whose stated feeling decides each description's genre, emotion and tempo
range; ``feeling`` is that family (``python -m cotvtm.teacher.bank`` writes it again).
``cotvtm bank LABELS OUT`` is ``from_labels``: any labels folder (an LLM teacher's labels make a
better bank), its feelings from the labels' step-1 emotions.
"""

from __future__ import annotations

import re
from pathlib import Path

from cotvtm.prior.bank import SHIPPED, BankEntry, BankError, write_bank
from cotvtm.teacher.ingest import CaptionItem
from cotvtm.teacher.offline import OfflineTeacher, feeling_family
from cotvtm.teacher.records import read_labels
from cotvtm.teacher.scenes import sample_scenes, write_description

SHIPPED_SCENES = 480  # entries in the shipped bank (scene seed 0)
MAX_SCENE_DRAWS = 2  # scenes drawn per entry at most: repeated captions are rare (one in the shipped 480)
MAX_FEELING_CHARS = 24  # a feeling is one word ("melancholic" has 11 letters); longer free text is a phrase
_ONE_WORD = re.compile(rf"[a-z][a-z-]{{0,{MAX_FEELING_CHARS - 1}}}")


def from_labels(labels: str | Path) -> list[BankEntry]:
    """One entry per distinct caption of a labels folder's labelled records (the first)."""
    if not Path(labels).is_dir():
        raise BankError(labels, "no such folder (a labels folder from `cotvtm label`)")
    seen, entries = set(), []
    for record in read_labels(labels):
        caption, description = str(record.caption).strip(), str(record.x_mt).strip()
        if caption and description and caption not in seen:
            seen.add(caption)
            entries.append(BankEntry(record.id, caption, description, record_feeling(record)))
    if not entries:
        raise BankError(labels, "no labelled records with a caption and a music description")
    return entries


def record_feeling(record) -> str | None:
    """A labelled record's step-1 emotion as a bank feeling: the offline teacher's family for
    the words it knows ("quiet longing" -> "melancholic"), else the text itself when it is one
    short word, else None (a phrase no family fits says nothing one word could)."""
    try:
        emotion = str(record.parsed["step1"]["visual_elements"]["emotion"]).strip().lower()
    except (KeyError, TypeError):  # a direct answer, or no answer: no step 1
        return None
    return feeling_family(emotion) or (emotion if _ONE_WORD.fullmatch(emotion) else None)


def from_scenes(count: int = SHIPPED_SCENES, seed: int = 0) -> list[BankEntry]:
    """``count`` scenes of the paper's templates with distinct captions (a scene that repeats an
    earlier caption is passed over for the next), each labelled by the offline teacher, whose
    family is the entry's feeling: how the shipped bank is made."""
    teacher, entries, seen = OfflineTeacher(), [], set()
    for scene in sample_scenes(count * MAX_SCENE_DRAWS, seed):
        caption = write_description(scene)
        if caption not in seen and len(entries) < count:
            seen.add(caption)
            record = teacher.label(CaptionItem(scene.id, caption))
            entries.append(BankEntry(scene.id, caption, record.x_mt, record_feeling(record)))
    return entries


if __name__ == "__main__":
    print(write_bank(from_scenes(), SHIPPED))
