"""Timelines an editor opens (cotvtm/video/timeline.py): written in each format beside real media,
read back through the same adapters an editor's import would meet."""

import json
import subprocess
from fractions import Fraction

import numpy as np
import opentimelineio as otio
import pytest
import soundfile as sf

from cotvtm.errors import MediaError
from cotvtm.video.shots import detect_cuts
from cotvtm.video.timeline import EXTENSIONS, TimelineSpec, build, edit_rate, media_path, write
from tests.helpers import ffprobe

RATES = {"25": "25", "29.97": "30000/1001"}
CUT_FRAMES = (20, 47)  # where each video's colour changes


def _video(path, rate: str, frames: int):
    """Three solid-colour shots (cuts at CUT_FRAMES) with a tone as the audio stream."""
    shots = (CUT_FRAMES[0], CUT_FRAMES[1] - CUT_FRAMES[0], frames - CUT_FRAMES[1])
    inputs = []
    for colour, count in zip(("red", "blue", "green"), shots):
        inputs += ["-f", "lavfi", "-i", f"color=c={colour}:size=64x64:rate={rate},trim=end_frame={count}"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, "-f", "lavfi", "-i", "sine=r=48000",
                    "-filter_complex", "[0:v][1:v][2:v]concat=n=3:v=1:a=0[v]", "-map", "[v]", "-map", "3:a",
                    "-c:v", "libx264", "-g", "1", "-c:a", "aac", "-frames:v", str(frames), "-shortest", str(path)],
                   check=True)


@pytest.fixture(scope="session", params=list(RATES))
def job(request, tmp_path_factory):
    """An output folder as a job leaves it: the video, the music and original WAVs of its length."""
    folder = tmp_path_factory.mktemp(f"timeline-{request.param}")
    frames = 100
    _video(folder / "clip one.mp4", RATES[request.param], frames)
    stream = next(s for s in ffprobe(folder / "clip one.mp4")["streams"] if s["codec_type"] == "video")
    fps = float(Fraction(stream["avg_frame_rate"]))
    duration = int(stream["nb_read_packets"]) / fps
    samples = round(duration * 48000)
    sf.write(folder / "clip one.music.wav", np.zeros((samples, 2)), 48000, subtype="PCM_24")
    sf.write(folder / "clip one.original.wav", np.zeros(samples), 48000, subtype="PCM_24")
    spec = TimelineSpec(name="clip one", fps=fps, duration=duration, picture="clip one.mp4",
                        music="clip one.music.wav", original="clip one.original.wav",
                        cuts=detect_cuts(folder / "clip one.mp4"), windows=[(0.0, 2.0), (2.0, duration)],
                        beats=list(np.arange(0.25, duration, 0.5)), metadata={"style": "lofi", "seed": 7})
    return folder, spec, int(stream["nb_read_packets"])


@pytest.fixture(scope="session")
def written(job):
    """Each kind written, then read back as an editor's import would."""
    folder, spec, _ = job
    timeline = build(spec)
    for kind, extension in EXTENSIONS.items():
        write(timeline, folder / f"clip one{extension}", kind)
    return {kind: otio.adapters.read_from_file(str(folder / f"clip one{extension}"))
            for kind, extension in EXTENSIONS.items()}


@pytest.mark.parametrize("kind", list(EXTENSIONS))
def test_every_clip_covers_the_videos_frames(job, written, kind):
    _, spec, frames = job
    timeline = written[kind]
    clips = list(timeline.find_clips())
    assert [t.kind for t in timeline.tracks] == ["Video", "Audio", "Audio"]
    assert len(clips) == 3
    for clip in clips:
        assert clip.source_range.start_time.value == 0
        assert clip.source_range.duration.value == frames
        assert clip.source_range.duration.rate == pytest.approx(spec.fps)  # 30000/1001, not 30
        assert clip.source_range.duration.to_seconds() == pytest.approx(spec.duration, abs=1e-9)


@pytest.mark.parametrize("kind", list(EXTENSIONS))
def test_the_music_resolves_beside_the_timeline_to_a_wav_as_long_as_the_video(job, written, kind):
    folder, spec, _ = job
    music = written[kind].tracks[2].find_clips()[0].media_reference
    assert "/" not in music.target_url.removeprefix("file://")  # relative, and encoded: no absolute path
    path = media_path(folder / f"clip one{EXTENSIONS[kind]}", music.target_url)
    assert path == folder / "clip one.music.wav"
    info = sf.info(str(path))
    assert info.frames / info.samplerate == pytest.approx(spec.duration, abs=1 / spec.fps)


@pytest.mark.parametrize("kind", list(EXTENSIONS))
def test_markers_sit_at_the_videos_cuts_windows_and_beats(job, written, kind):
    _, spec, _ = job
    markers = list(written[kind].tracks.markers)
    cuts = [m.marked_range.start_time.to_seconds() for m in markers if m.name == "cut"]
    assert cuts == pytest.approx([f / spec.fps for f in CUT_FRAMES], abs=1 / spec.fps)
    windows = [m.marked_range for m in markers if m.name.startswith("window")]
    assert [w.end_time_exclusive().to_seconds() for w in windows] == pytest.approx([2.0, spec.duration],
                                                                                  abs=1 / spec.fps)
    assert sum(m.name == "beat" for m in markers) == len(spec.beats)
    colours = {m.name.split()[0]: m.color for m in markers}
    # FCP 7 XML has no marker colour: its markers read back red
    assert colours == ({"cut": "RED", "window": "RED", "beat": "RED"} if kind == "fcp-xml"
                       else {"cut": "RED", "window": "BLUE", "beat": "GREEN"})


def test_the_runs_settings_travel_in_otio_and_aaf(job, written):
    _, spec, _ = job
    assert dict(written["otio"].metadata["cotvtm"]) == spec.metadata
    assert json.loads(written["aaf"].metadata["AAF"]["UserComments"]["cotvtm"]) == spec.metadata


def test_the_aaf_describes_the_wavs_as_they_are(job):
    import aaf2

    folder, _, _ = job
    with aaf2.open(str(folder / "clip one.aaf")) as f:
        pcm = {d["Locator"].value[0]["URLString"].value: (d["Channels"].value, d["QuantizationBits"].value)
               for d in (m.descriptor for m in f.content.sourcemobs()) if d is not None and "Channels" in d}
    assert pcm == {"clip%20one.music.wav": (2, 24), "clip%20one.original.wav": (1, 24)}


def test_without_original_audio_the_music_is_the_only_audio_track():
    spec = TimelineSpec(name="silent", fps=25.0, duration=2.0, picture="v.mp4", music="m.wav")
    timeline = build(spec)
    assert [(t.name, t.find_clips()[0].name) for t in timeline.tracks] == [("V1", "v.mp4"), ("A1", "m.wav")]


def test_rates_snap_to_those_editors_know():
    assert edit_rate(30000 / 1001) == 30000 / 1001
    assert edit_rate(23.976) == 24000 / 1001
    assert edit_rate(29.87) == 30000 / 1001  # a phone's variable rate, averaged
    assert edit_rate(25.0) == 25 and edit_rate(30.0) == 30 and edit_rate(12.4) == 24000 / 1001
    assert edit_rate(10.0) == 30 and edit_rate(12.0) == 24  # a whole multiple: each picture a few frames


def test_a_video_without_frames_is_refused():
    with pytest.raises(MediaError, match="0.0 fps"):
        build(TimelineSpec(name="x", fps=0.0, duration=3.0, picture="v.mp4", music="m.wav"))
