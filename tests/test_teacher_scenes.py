"""The scene generator: seeded, stable as N grows, and covering every template."""

from collections import Counter

from cotvtm.teacher.offline import FAMILIES, find_feeling
from cotvtm.teacher.scenes import (DOUBLE_TEMPLATES, EXTENSION_VARIABLES, MOODS, PAPER_VARIABLES, TEMPLATE_FAMILIES,
                                   TEMPLATES, VARIABLES, sample_scenes, variables_of, write_description)


def test_same_seed_same_scenes_other_seed_other_scenes():
    assert sample_scenes(50, seed=7) == sample_scenes(50, seed=7)
    assert [s.text for s in sample_scenes(50, seed=7)] != [s.text for s in sample_scenes(50, seed=8)]


def test_asking_for_more_scenes_extends_the_same_list():
    assert sample_scenes(30, seed=1) == sample_scenes(90, seed=1)[:30]


def test_every_template_is_used_and_values_come_from_its_lists():
    scenes = sample_scenes(len(TEMPLATES), seed=0)
    assert {s.template for s in scenes} == set(TEMPLATES)
    for scene in scenes:
        assert set(scene.values) == set(variables_of(scene.template))
        for name, value in scene.values.items():
            assert value in VARIABLES[name]
    assert len(TEMPLATES) - len(DOUBLE_TEMPLATES) == 13 and len(DOUBLE_TEMPLATES) == 7  # as in B.2


def test_templates_and_lists_are_the_papers():
    """Appendix B.2: its templates word for word, its three place lists of 50; every variable a
    template names has a list (the paper's, or a documented extension)."""
    assert TEMPLATES["natural"] == "Describe an image of a {natural_scenarios}."
    assert TEMPLATES["emotions+sad"] == "Imagine an emotional setting with {character_emotions} and {sad_behaviors}."
    assert {k: len(v) for k, v in PAPER_VARIABLES.items()} == {"natural_scenarios": 50, "urban_scenarios": 50,
                                                              "indoor_scenarios": 50}
    assert PAPER_VARIABLES["natural_scenarios"][-1] == "path by the stream"
    assert PAPER_VARIABLES["urban_scenarios"][9] == "pedestrian street"
    assert PAPER_VARIABLES["indoor_scenarios"][-1] == "banquet hall"
    named = {v for t in TEMPLATES for v in variables_of(t)}
    assert named == set(VARIABLES) and not set(PAPER_VARIABLES) & set(EXTENSION_VARIABLES)
    for name in named:
        assert len(VARIABLES[name]) >= 4, name


def test_over_many_scenes_every_value_appears():
    used = Counter((name, value) for s in sample_scenes(10000, seed=0) for name, value in s.values.items())
    missing = [(n, v) for n, values in VARIABLES.items() for v in values if (n, v) not in used]
    assert not missing


def test_ids_are_unique_and_stable():
    scenes = sample_scenes(100, seed=4)
    assert len({s.id for s in scenes}) == 100 and scenes[12].id == "scene-b2-4-000012"


def test_template_filler_is_deterministic_and_describes_the_scene():
    for scene in sample_scenes(40, seed=2):
        text = write_description(scene)
        assert text == write_description(scene)
        assert all(value.lower() in text.lower() for value in scene.values.values())  # the scene's own values
        assert " a a" not in text.lower() and " a e" not in text.lower()  # articles fixed


def test_families_come_out_even_and_each_description_states_its_own():
    scenes = sample_scenes(400, seed=5)
    shares = Counter(s.feeling for s in scenes)
    fair = len(scenes) / len(FAMILIES)
    assert set(shares) == set(FAMILIES) and all(0.75 * fair <= n <= 1.5 * fair for n in shares.values()), shares
    for scene in scenes:
        assert scene.feeling in TEMPLATE_FAMILIES.get(scene.template, FAMILIES)  # as the instruction asks
        stated = find_feeling(write_description(scene))
        assert (stated.source, stated.family) == ("stated", scene.feeling), write_description(scene)
        if "atmospheres" in scene.values:
            assert scene.values["atmospheres"] == scene.mood


def test_every_family_has_atmospheres_that_state_it():
    assert all(MOODS[family] for family in FAMILIES)
    assert sorted(w for words in MOODS.values() for w in words) == sorted(VARIABLES["atmospheres"])
