"""Frame reading: right frames, right size, upright, sparse decoding, and clean failures."""

import functools
import subprocess

import numpy as np
import pytest

from cotvtm.errors import MediaError
from cotvtm.video.frames import ReadStats, read_window_frames
from cotvtm.video.probe import probe
from cotvtm.video.samples import make_video, run_ffmpeg
from cotvtm.video.types import Window
from cotvtm.video.windows import plan_windows, sample_times

LONG_S, FPS = 30, 10  # 300 frames of 160x90, a keyframe every 2 s (-g 20)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Videos made once for the module: testsrc2 shows a clock, so every frame differs."""
    d = tmp_path_factory.mktemp("frames")
    long = make_video(d / "long.mp4", LONG_S, fps=FPS, gop=20, faststart=True)
    files = {"mp4": long}
    for ext in ("ts", "mkv"):  # same packets, other containers (MPEG-TS seeks land late)
        files[ext] = d / f"long.{ext}"
        run_ffmpeg(["-i", str(long), "-c", "copy", str(files[ext])])
    for degrees in (90, 180, 270):
        files[f"rot{degrees}"] = make_video(d / f"rot{degrees}.mp4", 3, fps=FPS, rotate=degrees)
    for ext in ("mp4", "mkv"):  # a download cut off at 40 %
        data = files[ext].read_bytes()
        files[f"truncated_{ext}"] = d / f"truncated.{ext}"
        files[f"truncated_{ext}"].write_bytes(data[: int(len(data) * 0.4)])
    files["garbage"] = d / "garbage.mp4"
    files["garbage"].write_bytes(b"\x00\x01 not a video " * 500)
    return files


@functools.lru_cache(maxsize=None)
def ffmpeg_frame(path, t: float) -> np.ndarray:
    """What ffmpeg itself shows at ``t`` (accurate seek, autorotation on), as RGB."""
    info = probe(path)
    width, height = info.display_size
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", str(t), "-i", str(path), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def diff(a, b) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_frames_are_rgb_scaled_to_short_side(media):
    frames = read_window_frames(media["mp4"], sample_times(Window(0, 0.0, 10.0)), short_side=64)
    assert frames.dtype == np.uint8
    assert frames.shape == (8, 64, 114, 3)  # 160x90 -> 114x64, aspect kept
    native = read_window_frames(media["mp4"], [1.0, 2.0], short_side=None)
    assert native.shape == (2, 90, 160, 3)


def test_window_is_read_by_seeking_and_stopping(media):
    """8 frames of the last 10 s of a 300-frame video: one seek to the keyframe at 20 s,
    decode to 29.4 s, convert only the 8 chosen frames."""
    stats = ReadStats()
    frames = read_window_frames(media["mp4"], sample_times(Window(2, 20.0, 30.0)), 64, stats=stats)
    assert len(frames) == 8
    assert stats.frames_converted == 8
    assert 8 <= stats.frames_decoded < 150
    assert stats.frames_decoded <= 100  # 20.0 .. 29.4 s is 95 frames


@pytest.mark.parametrize("container", ["mp4", "ts", "mkv"])
def test_frames_are_the_ones_shown_at_the_timestamps(media, container):
    """Each frame equals ffmpeg's own frame at that time (first frame at or after it), in every
    container: MPEG-TS seeks land late and must be retried from earlier."""
    times = [0.0, 0.05, 3.33, 12.34, 20.625, 29.375]
    together = read_window_frames(media[container], times, short_side=None)
    for t, frame in zip(times, together):
        alone = read_window_frames(media[container], [t], short_side=None)[0]  # its own seek
        expected = ffmpeg_frame(media["mp4"], t)  # ffmpeg's own seek in MPEG-TS is not exact
        assert diff(frame, expected) < 1.0, f"{container} at {t} s"
        assert diff(alone, expected) < 1.0, f"{container} at {t} s, read alone"
        assert diff(frame, ffmpeg_frame(media["mp4"], t + 0.1)) > 1.0  # neighbours do differ


def test_frames_at_different_times_differ(media):
    frames = read_window_frames(media["mp4"], sample_times(Window(1, 10.0, 20.0)), 64)
    for i in range(len(frames) - 1):
        assert diff(frames[i], frames[i + 1]) > 1.0


def test_results_follow_the_order_of_times_and_share_repeated_frames(media):
    stats = ReadStats()
    frames = read_window_frames(media["mp4"], [5.0, 1.0, 1.0, 1.01], 64, stats=stats)
    forward = read_window_frames(media["mp4"], [1.0, 5.0], 64)
    assert np.array_equal(frames[0], forward[1]) and np.array_equal(frames[1], forward[0])
    assert np.array_equal(frames[1], frames[2])
    assert not np.array_equal(frames[2], frames[3])  # 1.01 s -> the frame at 1.1 s
    assert stats.frames_converted == 3


def test_time_after_the_last_frame_gives_the_last_frame(media):
    """The last frame starts at 29.9 s and is on screen until 30 s."""
    last = read_window_frames(media["mp4"], [29.95], None)[0]
    assert diff(last, ffmpeg_frame(media["mp4"], 29.9)) < 1.0


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotated_video_frames_are_upright_like_ffmpeg_shows_them(media, degrees):
    path = media[f"rot{degrees}"]
    info = probe(path)
    assert info.rotation == degrees
    frames = read_window_frames(path, [1.05, 2.05], short_side=90, rotation=info.rotation)
    expected = ffmpeg_frame(path, 1.05)  # ffmpeg autorotates
    assert frames.shape[1:] == expected.shape == ((160, 90, 3) if degrees != 180 else (90, 160, 3))
    assert diff(frames[0], expected) < 1.0
    assert diff(np.rot90(frames[0], 2), expected) > 20  # the opposite turn would be caught


def test_truncated_mp4_gives_early_frames_then_media_error(media):
    path = media["truncated_mp4"]
    assert probe(path).duration == LONG_S  # the index is intact: only reading finds the damage
    windows = plan_windows(LONG_S)
    assert read_window_frames(path, sample_times(windows[0]), 64).shape == (8, 64, 114, 3)
    for window in windows[1:]:
        with pytest.raises(MediaError, match=r"truncated or corrupt: decoding failed at \d+\.\d s"):
            read_window_frames(path, sample_times(window), 64)


def test_truncated_mkv_reports_where_frames_stop(media):
    path = media["truncated_mkv"]
    windows = plan_windows(LONG_S)
    assert read_window_frames(path, sample_times(windows[0]), 64).shape == (8, 64, 114, 3)
    with pytest.raises(MediaError, match=r"truncated or corrupt: video frames stop at 1\d\.\d s"):
        read_window_frames(path, sample_times(windows[2]), 64)


def test_garbage_raises_media_error(media):
    with pytest.raises(MediaError, match="cannot open video"):
        read_window_frames(media["garbage"], [1.0], 64)


@pytest.mark.parametrize("reader", ["opencv", "decord"])
def test_unknown_reader_is_rejected(media, reader):
    with pytest.raises(ValueError, match=rf"unknown frame reader '{reader}'; choose one of \('pyav',\)"):
        read_window_frames(media["mp4"], [1.0], 64, reader=reader)

