"""A bank's music says what its captions feel: the shipped bank and a fresh one pass the
coherence rules, and lines of the bank the earlier rules made fail them."""

import json
from collections import Counter
from dataclasses import replace

import pytest

from cotvtm.prior.bank import SHIPPED, BankEntry, _entry, read_bank, write_bank
from cotvtm.teacher.bank import SHIPPED_SCENES, from_labels, from_scenes
from cotvtm.teacher.coherence import (MAX_OPENING_SHARE, bank_problems, contradiction, entry_problems, opening,
                                      spread_problems)
from cotvtm.teacher.ingest import CaptionItem
from cotvtm.teacher.offline import FAMILIES, OfflineTeacher
from cotvtm.teacher.records import ShardWriter, labels_dir

# Verbatim lines of the bank the first offline rules made: a tense caption with serene music,
# a solemn one with cheerful pop, an energetic one with calm music at a driving 128 BPM, a
# nostalgic one at 128 BPM, and driving dance music at a gentle 70 BPM.
EARLIER = [json.loads(line) for line in r"""
{"id": "scene-b2-0-000027", "caption": "A city street, seen in soft natural light: pigeons scatter across the pavement. The whole scene feels tense.", "description": "A serene and relaxed ambient piece with soft piano, warm synth pads, flute and light percussion, clean in timbre, at a moderate tempo around 100 BPM with a steady groove."}
{"id": "scene-b2-0-000030", "caption": "A recording studio with two drivers shouting at each other, seen in bright daylight: steam rises from a cup. The whole scene feels solemn.", "description": "A cheerful and bright upbeat acoustic pop piece with acoustic guitar, ukulele, hand claps and glockenspiel, bright in timbre, at a moderate tempo around 100 BPM with a steady groove."}
{"id": "scene-b2-0-000002", "caption": "A clinic at a lazy afternoon, seen in warm afternoon light: people hurry past with umbrellas. The whole scene feels energetic.", "description": "A serene and relaxed ambient piece with soft piano, warm synth pads, flute and mellow electric piano, warm in timbre, at a fast tempo around 128 BPM with a driving beat."}
{"id": "scene-b2-0-000003", "caption": "A swimming pool during Thanksgiving, seen in warm golden light: people hurry past with umbrellas. The whole scene feels nostalgic.", "description": "A wistful and tender neo-classical piece with solo piano, cello, strings and mellow electric piano, warm in timbre, at a fast tempo around 128 BPM with a driving beat."}
{"id": "scene-b2-0-000091", "caption": "A pet store, seen in vivid tones: someone sits by the window. The whole scene feels energetic.", "description": "An energetic and driving electronic dance piece with synthesizers, electronic drums, bass and glockenspiel, bright in timbre, at a slow tempo around 70 BPM with a gentle, flowing pulse."}
""".strip().splitlines()]
FRESH_SCENES = 240


def test_the_shipped_bank_passes_and_every_entry_states_its_family():
    entries = read_bank(SHIPPED)
    assert len(entries) == SHIPPED_SCENES
    assert bank_problems(entries) == []
    assert {e.feeling for e in entries} == set(FAMILIES)


def test_a_fresh_bank_of_another_seed_passes():
    entries = from_scenes(FRESH_SCENES, seed=1)
    assert len(entries) == FRESH_SCENES and bank_problems(entries) == []
    shares = Counter(e.feeling for e in entries)
    assert max(shares.values()) <= 2 * min(shares.values())  # the families come out even


def test_every_line_of_the_earlier_bank_quoted_fails():
    for line in EARLIER:
        assert entry_problems(line["caption"], line["description"]), line["id"]
    tense, solemn, calm_at_128, nostalgic_at_128, dance_at_70 = (entry_problems(e["caption"], e["description"])
                                                                 for e in EARLIER)
    assert tense[0] == "feelings disagree: caption tense, music calm"
    assert solemn[0] == "feelings disagree: caption epic, music joyful"
    assert any("contradicts itself" in p for p in calm_at_128)
    assert nostalgic_at_128 == ["128 BPM is outside melancholic's 60-84"]
    assert any("contradicts itself" in p for p in dance_at_70)


def test_spread_rules_flag_a_bank_that_repeats_one_music():
    entries = [BankEntry(e["id"], e["caption"], e["description"]) for e in EARLIER]
    serene = [e for e in entries if opening(e.description) == "A serene and relaxed ambient"]
    lopsided = entries + [replace(e, id=f"{e.id}-{n}") for n in range(3) for e in serene]
    problems = spread_problems(lopsided)
    assert any(p.startswith("family calm holds 8 of 11") for p in problems)
    assert any(p.startswith("opening 'A serene and relaxed ambient' starts 8 of 11") for p in problems)
    assert 8 / 11 > MAX_OPENING_SHARE and spread_problems(from_scenes(16)) == []


def test_a_feeling_field_that_disagrees_is_flagged():
    caption, description = EARLIER[2]["caption"], EARLIER[4]["description"].replace("70 BPM", "132 BPM")
    description = description.replace("slow tempo", "fast tempo").replace("a gentle, flowing pulse", "a driving beat")
    assert entry_problems(caption, description, "energetic") == []
    assert entry_problems(caption, description, "calm") == ["feelings disagree: caption energetic, feeling calm, "
                                                            "music energetic"]
    assert entry_problems(caption, description, "bittersweet") == []  # not a family: nothing to compare


@pytest.mark.parametrize("contradicting, consistent", [
    ("A gentle lullaby at a fast tempo around 140 BPM.", "A gentle lullaby at a slow tempo around 64 BPM."),
    ("An urgent march at a slow tempo with a gentle pulse.", "An urgent march at a fast tempo, pounding."),
])
def test_calm_words_with_driving_ones_contradict(contradicting, consistent):
    assert contradiction(contradicting) is not None
    assert contradiction(consistent) is None


def test_write_bank_leaves_out_unknown_feelings(tmp_path):
    path = write_bank([BankEntry("a", "a lake", "soft piano"), BankEntry("b", "a storm", "low drums", "tense")],
                      tmp_path / "bank.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [{"id": "a", "caption": "a lake", "description": "soft piano"},
                     {"id": "b", "caption": "a storm", "description": "low drums", "feeling": "tense"}]
    assert read_bank(path)[1].feeling == "tense" and _entry(1, json.dumps(lines[0])).feeling is None


def _labels(tmp_path, emotions: dict[str, str | None]):
    """A labels folder of offline records whose step-1 emotion is replaced as an LLM might write it."""
    teacher, out = OfflineTeacher(), labels_dir(tmp_path, "cot-v1", "llm")
    with ShardWriter(out) as writer:
        for n, (caption, emotion) in enumerate(emotions.items()):
            record = teacher.label(CaptionItem(f"c{n}", caption))
            parsed = json.loads(json.dumps(record.parsed))
            parsed["step1"]["visual_elements"]["emotion"] = emotion
            writer.write(replace(record, parsed=parsed if emotion is not None else None).to_json())
    return out


def test_from_labels_takes_the_feeling_from_step_one(tmp_path):
    labels = _labels(tmp_path, {"A rainy pier.": "a quiet longing for home", "A fairground.": "Awe",
                                "A hall.": "Whimsical", "A cave.": "something hard to put in one word",
                                "A road.": None})
    feelings = {e.caption: e.feeling for e in from_labels(labels)}
    assert feelings == {"A rainy pier.": "melancholic", "A fairground.": "epic", "A hall.": "whimsical",
                        "A cave.": None, "A road.": None}
