"""Probing inputs (and refusing bad ones with a clear reason) and muxing music into videos."""

import json
import os
import subprocess
import tempfile

import numpy as np
import pytest

from cotvtm.errors import MediaError
from cotvtm.video.frames import read_window_frames
from cotvtm.video.delivery import Original
from cotvtm.video.mux import fit_length, kept_mix, mux_audio
from cotvtm.video.probe import probe
from cotvtm.video.samples import make_audio, make_video, make_sample_videos

SR = 32000  # MusicGen's sample rate
TONE_HZ = 1000.0  # the "music": distinct from the 440 Hz tone already in the test video
ODD_NAME = "-odd name 'single' \"double\" é.mp4"  # spaces, quotes, a leading dash, unicode


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    files = {
        "good": make_video(d / "good.mp4", 12, fps=10, audio=True),
        "silent": make_video(d / "silent.mp4", 3, fps=10),
        "rot90": make_video(d / "rot90.mp4", 3, fps=10, rotate=90),
        "odd": make_video(d / ODD_NAME, 3, fps=10),
        "audio_m4a": make_audio(d / "tone.m4a", 2),
        "audio_mp4": make_audio(d / "tone_only.mp4", 2),
        "empty": d / "empty.mp4",
        "text": d / "notes.mp4",
        "missing": d / "missing.mp4",
    }
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is a text file, not a video\n" * 20)
    return files


def tone(duration: float, channels: int = 1) -> np.ndarray:
    t = np.arange(round(duration * SR)) / SR
    mono = (0.3 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
    return mono if channels == 1 else np.stack([mono] * channels, axis=1)  # channels-last


def streams(path) -> list[dict]:
    """ffprobe's view of every stream, with packets counted."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-show_streams", "-of", "json", f"file:{path}"],
        capture_output=True, check=True,
    ).stdout
    return json.loads(out)["streams"]


def video_md5(path) -> str:
    """MD5 of the first video stream's packets: equal only if the stream was copied bit for bit."""
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-i", f"file:{path}", "-map", "0:v:0", "-c", "copy", "-f", "md5", "-"],
        capture_output=True, check=True, text=True,
    ).stdout.strip()


def dominant_frequency(path) -> float:
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", f"file:{path}", "-map", "0:a:0", "-ac", "1", "-ar", str(SR),
         "-f", "f32le", "-"],
        capture_output=True, check=True,
    ).stdout
    samples = np.frombuffer(pcm, np.float32)
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / SR)[spectrum.argmax()])


# probe


def test_probe_good_file(media):
    info = probe(media["good"])
    assert info.duration == pytest.approx(12.0, abs=0.05)
    assert (info.width, info.height, info.rotation) == (160, 90, 0)
    assert info.fps == pytest.approx(10.0)
    assert info.codec == "h264"
    assert info.nb_frames == 120
    assert info.has_audio is True
    assert info.size_bytes == os.path.getsize(media["good"])
    assert info.path == str(media["good"])


def test_probe_video_without_audio(media):
    assert probe(media["silent"]).has_audio is False


def test_probe_rotation_is_clockwise_degrees(media):
    info = probe(media["rot90"])
    assert (info.width, info.height, info.rotation) == (160, 90, 90)
    assert info.display_size == (90, 160)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("empty", "empty file (0 bytes)"),
        ("missing", "file not found"),
        ("text", "not a media file ffmpeg can read: Invalid data found when processing input"),
        ("audio_m4a", "not a video: ffprobe found no video stream (audio-only file)"),
        ("audio_mp4", "not a video: ffprobe found no video stream (audio-only file)"),
    ],
)
def test_probe_refuses_bad_input_with_a_specific_reason(media, name, reason):
    with pytest.raises(MediaError) as caught:
        probe(media[name])
    assert caught.value.reason.startswith(reason)
    assert caught.value.path == str(media[name])
    assert str(caught.value) == f"{media[name]}: {caught.value.reason}"
    assert "\n" not in caught.value.reason


def test_probe_refuses_a_directory(tmp_path):
    with pytest.raises(MediaError, match="is a directory"):
        probe(tmp_path)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can read any file")
def test_probe_refuses_an_unreadable_file(media, tmp_path):
    path = tmp_path / "locked.mp4"
    path.write_bytes(media["silent"].read_bytes())
    path.chmod(0)
    with pytest.raises(MediaError, match="permission denied"):
        probe(path)


# mux


def test_fit_length_trims_and_pads():
    assert fit_length(np.ones(50), 10, 3.0).shape == (30,)
    padded = fit_length(np.ones((20, 2)), 10, 3.0)  # channels-last
    assert padded.shape == (30, 2)
    assert padded[:20].all() and not padded[20:].any()
    assert fit_length(np.ones(12345), SR, 12.0).shape == (12 * SR,)


def test_mux_copies_video_and_adds_audio_of_equal_length(media, tmp_path):
    source = media["good"]
    info = probe(source)
    out = mux_audio(source, tone(info.duration), SR, tmp_path / "out.mp4", info.duration)
    assert out == tmp_path / "out.mp4"
    before, after = streams(source), streams(out)
    video_before = [s for s in before if s["codec_type"] == "video"][0]
    video_after = [s for s in after if s["codec_type"] == "video"]
    audio_after = [s for s in after if s["codec_type"] == "audio"]
    assert len(video_after) == 1 and len(audio_after) == 1  # the old soundtrack is replaced
    assert video_after[0]["codec_name"] == video_before["codec_name"]
    assert video_after[0]["nb_read_packets"] == video_before["nb_read_packets"] == "120"
    assert video_md5(out) == video_md5(source)
    assert audio_after[0]["codec_name"] == "aac"
    assert float(audio_after[0]["duration"]) == pytest.approx(info.duration, abs=0.1)
    assert dominant_frequency(out) == pytest.approx(TONE_HZ, abs=5)  # our music, not the old track


def _energy_at(path, hz: float) -> float:
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", f"file:{path}", "-map", "0:a:0", "-ac", "1", "-ar",
                          str(SR), "-f", "f32le", "-"], capture_output=True, check=True).stdout
    samples = np.frombuffer(pcm, np.float32)
    spectrum = np.abs(np.fft.rfft(samples))
    freqs = np.fft.rfftfreq(len(samples), 1 / SR)
    return float(spectrum[np.abs(freqs - hz) < 5].max() / spectrum.max())


def test_duck_keeps_the_original_audio_under_the_music(media, tmp_path):
    source = media["good"]  # its own track is a 440 Hz sine
    info = probe(source)
    replaced = mux_audio(source, tone(info.duration), SR, tmp_path / "replaced.mp4", info.duration)
    ducked = mux_audio(source, tone(info.duration), SR, tmp_path / "ducked.mp4", info.duration,
                       kept_mix("ducked.mp4", 1, Original.of(info), 0.25))
    assert dominant_frequency(ducked) == pytest.approx(TONE_HZ, abs=5)  # the music stays on top
    assert _energy_at(ducked, 440) > 0.05 > _energy_at(replaced, 440)  # the original is audible only when ducked
    assert video_md5(ducked) == video_md5(source)


def test_mux_stereo_into_matroska(media, tmp_path):
    source = media["silent"]
    out = mux_audio(source, tone(3.0, channels=2), SR, tmp_path / "out.mkv", 3.0)
    audio = [s for s in streams(out) if s["codec_type"] == "audio"]
    assert audio[0]["channels"] == 2
    assert video_md5(out) == video_md5(source)


@pytest.mark.parametrize("ext", [".mp4", ".mov"])
def test_rotation_survives_mux(media, tmp_path, ext):
    out = mux_audio(media["rot90"], tone(3.0), SR, tmp_path / f"out{ext}", 3.0)
    assert probe(out).rotation == 90
    assert video_md5(out) == video_md5(media["rot90"])


def test_mux_refuses_audio_of_the_wrong_length(media, tmp_path):
    with pytest.raises(ValueError, match="fit_length"):
        mux_audio(media["silent"], tone(2.5), SR, tmp_path / "out.mp4", 3.0)


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Route tempfile to an empty directory so leftover WAVs can be seen."""
    wav_dir = tmp_path / "tmp"
    wav_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(wav_dir))
    return wav_dir


def test_mux_output_appears_atomically(media, tmp_path, private_tmp):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    mux_audio(media["silent"], tone(3.0), SR, out_dir / "ok.mp4", 3.0)
    assert os.listdir(out_dir) == ["ok.mp4"]

    previous = out_dir / "clip.webm"
    previous.write_bytes(b"previous output")
    with pytest.raises(MediaError, match="mux failed: .*WebM"):  # H.264 cannot go into WebM
        mux_audio(media["silent"], tone(3.0), SR, previous, 3.0)
    assert previous.read_bytes() == b"previous output"
    with pytest.raises(MediaError, match="unsupported output container '.xyz'"):
        mux_audio(media["silent"], tone(3.0), SR, out_dir / "clip.xyz", 3.0)
    assert sorted(os.listdir(out_dir)) == ["clip.webm", "ok.mp4"]
    assert os.listdir(private_tmp) == []


def test_mux_failure_on_bad_input_is_a_media_error(media, tmp_path):
    with pytest.raises(MediaError, match="mux failed: Invalid data found when processing input"):
        mux_audio(media["text"], tone(3.0), SR, tmp_path / "out.mp4", 3.0)
    assert os.listdir(tmp_path) == []


def test_odd_file_names_work_everywhere(media, tmp_path):
    source = media["odd"]
    info = probe(source)
    assert info.duration == pytest.approx(3.0, abs=0.05)
    assert read_window_frames(source, [1.0], 64).shape == (1, 64, 114, 3)
    out = mux_audio(source, tone(3.0), SR, tmp_path / ODD_NAME, 3.0)
    assert out.name == ODD_NAME
    assert probe(out).has_audio
    assert os.listdir(tmp_path) == [ODD_NAME]


def test_sample_videos_are_distinct_and_made_once(tmp_path):
    paths = make_sample_videos(tmp_path)
    infos = [probe(p) for p in paths]
    assert len(paths) >= 3
    assert all(4 <= i.duration <= 14 and i.codec == "h264" for i in infos)
    assert any(i.duration > 10 for i in infos) and any(i.has_audio for i in infos)
    firsts = [read_window_frames(p, [2.0], 32)[0] for p in paths]
    for i in range(len(firsts)):
        for j in range(i + 1, len(firsts)):
            assert np.abs(firsts[i].astype(int) - firsts[j]).mean() > 10
    stamps = [p.stat().st_mtime_ns for p in paths]
    assert make_sample_videos(tmp_path) == paths
    assert [p.stat().st_mtime_ns for p in paths] == stamps
