"""The Python API at the package's face: the jobs as functions with settings by name."""

import json

import pytest

import cotvtm
from cotvtm.errors import CotvtmError
from cotvtm.video.samples import make_video
from helpers import ends_in_silence


def test_soundtrack_from_python_takes_settings_by_name(tmp_path, model_cache, ray_session):
    (tmp_path / "in").mkdir()
    make_video(tmp_path / "in" / "a.mp4", duration=3, size="64x48", fps=4)
    lines = []
    summary = cotvtm.soundtrack(tmp_path / "in", tmp_path / "out", cache_dir=model_cache, echo=lines.append,
                                mode="independent", slots=2, seed=3, ending="fade")
    assert (summary.ok, summary.failed) == (1, 0) and summary.exit_code == 0
    [sidecar], [video] = (tmp_path / "out").glob("a.*.json"), (tmp_path / "out").glob("a.*.mp4")
    said = json.loads(sidecar.read_text())
    assert (said["config"]["mode"], said["config"]["seed"]) == ("independent", 3)
    assert said["ending"] == {"mode": "fade", "starts_at": 1.0, "beat": None, "fade_seconds": 2.0}
    assert isinstance(said["beats"], list) and said["warnings"] == []  # a fade ending: beats tracked for the report
    assert ends_in_silence(video)  # the tiny MusicGen's music, faded to silence on the last frame
    assert any(line.startswith("ok       a.mp4") for line in lines)


def test_label_from_python_runs_the_offline_teacher(tmp_path, ray_session):
    built = cotvtm.label(tmp_path / "data", scenes=6, seed=1)
    assert built.ok == 6 and built.labels_dir.startswith(str(tmp_path / "data"))


@pytest.mark.parametrize("call", [lambda: cotvtm.soundtrack("in", "out", window_length=3),
                                  lambda: cotvtm.label("out", scenes=1, template="x"),
                                  lambda: cotvtm.distill("shards", "out", epochs=2),
                                  lambda: cotvtm.embed("labels", "out", musicgen="x")])
def test_an_unknown_setting_is_named(call):
    with pytest.raises(CotvtmError, match="unknown setting"):
        call()
