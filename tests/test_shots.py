"""Shot-aware windows: cuts found by ffmpeg's scene score on real encoded video, windows on them."""

import json
import shutil

import pytest

from cotvtm.settings import Resources, SoundtrackConfig
from cotvtm.pipelines.context import Where
from cotvtm.pipelines.runner import run
from cotvtm.video.samples import make_shots_video
from cotvtm.video.shots import detect_cuts
from cotvtm.video.windows import plan_shot_windows

FPS = 10
# hard cuts at 6, 11 and 19 s; the third shot fades out to black and back in over its middle
# (no cut there); the last shot is 30 s long.
SHOTS = [("testsrc2", 6), ("mandelbrot", 5), ("smptebars", 8), ("cellauto", 30)]
CUTS = [6.0, 11.0, 19.0]


@pytest.fixture(scope="module")
def cut_video(tmp_path_factory):
    return make_shots_video(tmp_path_factory.mktemp("shots") / "cuts.mp4", SHOTS, fps=FPS, fade=2, audio=True)


def test_cuts_are_found_within_a_frame_and_a_fade_is_not_a_cut(cut_video):
    cuts = detect_cuts(cut_video)
    assert len(cuts) == len(CUTS)
    assert all(abs(found - cut) <= 1 / FPS for found, cut in zip(cuts, CUTS)), cuts


def test_every_window_boundary_that_should_sit_on_a_cut_does(cut_video):
    windows = plan_shot_windows(49.0, detect_cuts(cut_video))
    boundaries = [w.start for w in windows[1:]]
    for cut in CUTS:
        assert min(abs(b - cut) for b in boundaries) <= 1 / FPS, (cut, boundaries)
    assert len(windows) == 6 and all(4.0 <= w.duration <= 14.0 for w in windows)
    assert not [b for b in boundaries if 13.0 < b < 17.0]  # nothing inside the fade


def test_the_job_follows_the_cuts(cut_video, tmp_path, model_cache, ray_session):
    """``--windows shots`` end to end: the sidecar lists the cuts and windows that start on them,
    the music's beats and each cut's offset from its nearest beat; the music is exactly the
    video's length."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(cut_video, src / "cuts.mp4")
    summary = run(Where(str(src), str(tmp_path / "out"), cache_dir=model_cache), SoundtrackConfig(windows="shots"),
                  Resources(), echo=lambda _: None)
    assert summary.ok == 1, [o.reason for o in summary.outcomes]
    [sidecar] = (tmp_path / "out").glob("cuts.*.json")
    data = json.loads(sidecar.read_text())
    assert [round(c, 1) for c in data["cuts"]] == CUTS and data["config"]["windows"] == "shots"
    starts = [w["start"] for w in data["windows"]]
    assert all(any(abs(s - cut) <= 1 / FPS for s in starts) for cut in CUTS)
    assert data["windows"][-1]["end"] == pytest.approx(data["video"]["duration"])
    beats = data["beats"]  # the music's beats, and each cut's offset from the nearest
    assert beats == sorted(beats) and all(0 <= b <= data["video"]["duration"] for b in beats)
    assert [row["cut"] for row in data["cut_beats"]] == data["cuts"]
    for row in data["cut_beats"]:
        assert row["beat"] in beats and row["offset"] == pytest.approx(row["cut"] - row["beat"], abs=1e-3)
