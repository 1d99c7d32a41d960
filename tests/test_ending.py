"""``--ending``: the track fades to silence on the video's last sample, from a beat with ``beat``."""

import numpy as np
import pytest

from cotvtm.music.beats import BeatGrid, cut_offsets
from cotvtm.music.ending import FADE_S, MAX_FADE_S, MIN_FADE_S, EndingChunks

RATE = 22050
PERIOD, FIRST = 0.5, 0.25  # 120 beats per minute, the first click at 0.25 s


def _click_track(seconds: float) -> np.ndarray:
    """Decaying 1 kHz clicks on a known grid, over a quiet hum (so nothing is silent between)."""
    t = np.arange(int(seconds * RATE)) / RATE
    audio = 0.02 * np.sin(2 * np.pi * 110 * t)
    click = np.sin(2 * np.pi * 1000 * t[:2000]) * np.exp(-t[:2000] * 60)
    for beat in np.arange(FIRST, seconds, PERIOD):
        start = int(beat * RATE)
        audio[start:start + len(click)] += 0.6 * click[:len(audio) - start]
    return audio.astype(np.float32)


def _ended(audio: np.ndarray, samples: int, mode: str, chunk: int = 7919):
    ending = EndingChunks((audio[i:i + chunk] for i in range(0, len(audio), chunk)), samples, RATE, mode)
    out = np.concatenate(list(ending))
    return out, ending.info


def _silent_end(audio: np.ndarray) -> bool:
    """The last 50 ms below -50 dBFS."""
    return float(np.abs(audio[-int(0.05 * RATE):]).max()) < 10 ** (-50 / 20)


@pytest.mark.parametrize("video_s", [14.3, 9.87])
def test_a_beat_ending_fades_from_a_true_beat_to_silence_on_the_last_sample(video_s):
    """The music runs past the video's end (as made for it, then cut); the fade starts on one of
    the click track's beats, 1 to 4 s before the end, and the track is exactly the video's length."""
    samples = round(video_s * RATE)
    out, info = _ended(_click_track(video_s + 1.5), samples, "beat")
    assert len(out) == samples and out[-1] == 0.0 and _silent_end(out)
    grid = np.arange(FIRST, video_s + 2, PERIOD)
    assert np.abs(grid - info["beat"]).min() < 0.05  # a true beat, within 50 ms
    assert info["starts_at"] == pytest.approx(info["beat"], abs=1 / RATE)
    assert MIN_FADE_S <= video_s - info["beat"] <= MAX_FADE_S
    assert info["fade_seconds"] == pytest.approx(video_s - info["starts_at"], abs=1e-3)
    before = int(info["starts_at"] * RATE) - 1
    assert np.array_equal(out[:before], _click_track(video_s + 1.5)[:before])  # untouched before the fade


def test_fade_and_cut_endings_and_short_tracks():
    audio = _click_track(6.0)
    out, info = _ended(audio, round(5.0 * RATE), "fade")
    assert info == {"mode": "fade", "starts_at": 3.0, "beat": None, "fade_seconds": FADE_S}
    assert len(out) == 5 * RATE and _silent_end(out)
    out, info = _ended(audio, round(5.0 * RATE), "cut")
    assert info == {"mode": "cut"} and np.array_equal(out, audio[:5 * RATE])
    out, info = _ended(audio[:RATE], round(1.5 * RATE), "beat")  # shorter than any fade, and padded
    assert len(out) == round(1.5 * RATE) and info["starts_at"] <= 0.5 and out[-1] == 0.0  # the 0.25 s beat, or 0


def test_a_track_without_a_pulse_fades_like_fade():
    noise = np.random.default_rng(0).uniform(-0.01, 0.01, 8 * RATE).astype(np.float32)  # nothing to track
    silence = np.zeros(8 * RATE, np.float32)
    for audio in (noise, silence):
        out, info = _ended(audio, len(audio), "beat")
        assert info["beat"] is None or MIN_FADE_S <= 8 - info["beat"] <= MAX_FADE_S
        assert len(out) == len(audio) and out[-1] == 0.0


def test_the_beat_grid_of_a_streamed_track_is_the_click_tracks():
    """Beats tracked piece by piece (pieces of any size) fall within 50 ms of the true grid, and
    every shot cut gets its offset from the nearest one."""
    audio = _click_track(40.0)
    grid = BeatGrid((audio[i:i + 30011] for i in range(0, len(audio), 30011)), RATE)
    assert np.array_equal(np.concatenate(list(grid)), audio)  # the chunks pass through untouched
    beats, truth = np.array(grid.beats()), np.arange(FIRST, 40.0, PERIOD)
    assert len(beats) >= 0.95 * len(truth)
    assert max(np.abs(truth - beat).min() for beat in beats) < 0.05
    rows = cut_offsets([10.1, 20.3], list(beats))
    assert [row["beat"] for row in rows] == [pytest.approx(10.25, abs=0.05), pytest.approx(20.25, abs=0.05)]
    assert rows[0]["offset"] == pytest.approx(10.1 - rows[0]["beat"], abs=1e-3)
    assert cut_offsets([1.0], []) == [{"cut": 1.0, "beat": None, "offset": None}]


def test_unusable_audio_costs_the_beats_never_the_track():
    """A NaN or an infinity (which librosa refuses) anywhere in the music: the chunks still pass
    through untouched, no beats, a warning naming the time; a beat ending fades like ``fade``."""
    for bad in (np.nan, np.inf):
        audio = _click_track(16.0)  # the ending reads the last 12 s: the bad sample is in both
        audio[int(7.5 * RATE)] = bad
        grid = BeatGrid((audio[i:i + 7919] for i in range(0, len(audio), 7919)), RATE)
        passed = np.concatenate(list(grid))
        assert np.array_equal(passed, audio, equal_nan=True)
        assert grid.beats() == [] and grid.warning.startswith("no beats tracked: the music holds a NaN or infinite")
        assert "7.50 s" in grid.warning
        out, info = _ended(audio, len(audio), "beat")
        assert len(out) == len(audio) and info["beat"] is None and info["fade_seconds"] == FADE_S
        assert info["warning"] == grid.warning  # the tail's time counted from the track's start
    clean = BeatGrid([_click_track(12.0)], RATE)
    list(clean)
    assert clean.beats() and clean.warning is None
