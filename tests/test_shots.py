"""Shot-aware windows: cuts found by ffmpeg's scene score on real encoded video, windows on them."""

import json
import shutil

import pytest

from cotvtm.settings import Resources, SoundtrackConfig
from cotvtm.settings import Access
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
    """``--windows shots --sync cuts --timeline otio/fcp-xml/aaf`` end to end: the sidecar lists the
    cuts and windows that start on them, the music's beats and each cut's offset from its nearest
    beat before and after the music was bent onto the cuts (each stretch within the bound); the
    music is exactly the video's length; the timelines read back with their clips the video's
    frames, the music stem beside them and the cuts marked within a frame."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(cut_video, src / "cuts.mp4")
    cfg = SoundtrackConfig(windows="shots", sync="cuts", timeline=("otio", "fcp-xml", "aaf"))
    summary = run(Access(source=str(src), dest=str(tmp_path / "out"), cache_dir=model_cache), cfg, Resources(), echo=lambda _: None)
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
    sync = data["sync"]
    assert [row["cut"] for row in sync["cut_beats_before"]] == data["cuts"]
    assert all(abs(s["ratio"] - 1) <= sync["bound"] + 1e-9 for s in sync["stretches"])
    skipped = {row["cut"] for row in sync["skipped"]}
    assert all(row["reason"] for row in sync["skipped"])
    moved = [row for row in data["cut_beats"] if row["cut"] not in skipped]
    assert all(abs(row["offset"]) <= 0.02 for row in moved)  # a beat on each cut it could reach
    _check_timelines(tmp_path / "out", data)


def _check_timelines(out, data):
    import opentimelineio as otio
    import soundfile as sf

    from cotvtm.video.timeline import media_path

    editor, duration = data["editor"], data["video"]["duration"]
    music = sf.info(str(out / editor["music"]))
    assert (music.samplerate, music.channels) == (48000, 2)
    assert music.frames == round(data["video"]["duration"] * 48000)
    assert (out / editor["original"]).exists() and (out / editor["timelines"]["aaf"]).stat().st_size > 0
    for kind in ("otio", "fcp-xml"):
        path = out / editor["timelines"][kind]
        timeline = otio.adapters.read_from_file(str(path))
        clips = list(timeline.find_clips())
        rate = clips[0].source_range.duration.rate  # 30: a 10 fps picture is three timeline frames
        assert rate == 30 and len(clips) == 3
        assert all(clip.source_range.duration.to_frames() == round(duration * rate) for clip in clips)
        urls = [clip.media_reference.target_url for clip in clips]
        assert media_path(path, urls[0]).name == data["output"]  # the picture: the output video
        assert any(media_path(path, url) == out / editor["music"] for url in urls)
        cuts = [m.marked_range.start_time.to_seconds() for m in timeline.tracks.markers if m.name == "cut"]
        assert len(cuts) == len(data["cuts"]) and all(abs(a - b) <= 1 / FPS for a, b in zip(cuts, data["cuts"]))
