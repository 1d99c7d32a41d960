"""The bed under a voice-over: loudness over spans (BS.1770 blocks from ffmpeg's ebur128) and the
ducking gain curve, on ffmpeg-made signals."""

import math
import subprocess

import numpy as np
import pytest

from cotvtm.errors import MediaError
from cotvtm.music.ducking import Ducking, duck, full_level_spans
from cotvtm.video.levels import block_loudness, first_audio, integrated
from cotvtm.video.samples import make_video

PART_S = 3.0
RATE = 1000  # the gain curve's tests: a coarse rate keeps the arrays small
DUCKING = Ducking()
DEPTH = np.float32(10 ** (-DUCKING.depth_db / 20))


def _wav(path, graph: str) -> str:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-filter_complex", graph, "-ar", "48000", str(path)], check=True)
    return str(path)


@pytest.fixture(scope="session")
def signals(tmp_path_factory) -> dict[str, str]:
    """Noise then a quieter tone; a -20 dBFS tone then a -40 dBFS one; and each of those alone."""
    folder = tmp_path_factory.mktemp("levels")
    tone = f"aevalsrc={{}}*sin(2*PI*997*t):s=48000:d={PART_S}"
    return {
        "mixed": _wav(folder / "mixed.wav", f"anoisesrc=d={PART_S}:a=0.2:seed=1:r=48000[n];"
                                           f"sine=f=440:d={PART_S}:r=48000,volume=-25dB[s];[n][s]concat=n=2:v=0:a=1"),
        "steps": _wav(folder / "steps.wav", f"{tone.format(0.1)}[a];{tone.format(0.01)}[b];[a][b]concat=n=2:v=0:a=1"),
        "loud": _wav(folder / "loud.wav", tone.format(0.1)),
        "quiet": _wav(folder / "quiet.wav", tone.format(0.01)),
    }


def test_the_whole_signal_measures_as_ffmpegs_own_integrated_loudness(signals):
    blocks = block_loudness([signals["mixed"]], first_audio(0))
    assert len(blocks.end) == round(2 * PART_S * 10)  # a block every 100 ms
    ours = integrated(blocks, [(0.0, 2 * PART_S)])
    print(f"whole: ours {ours:.2f} LUFS, ffmpeg {blocks.whole_lufs:.2f} LUFS")
    assert abs(ours - blocks.whole_lufs) <= 0.2


def test_each_span_measures_its_own_part(signals):
    """Input 1 through the graph, as the mux numbers the music; each span matches its part alone."""
    steps = block_loudness([signals["loud"], signals["steps"]], first_audio(1))
    loud = block_loudness([signals["loud"]], first_audio(0)).whole_lufs
    quiet = block_loudness([signals["quiet"]], first_audio(0)).whole_lufs
    first, second = integrated(steps, [(0.0, PART_S)]), integrated(steps, [(PART_S, 2 * PART_S)])
    print(f"-20 dBFS part {first:.2f} (alone {loud:.2f}), -40 dBFS part {second:.2f} (alone {quiet:.2f})")
    assert abs(first - loud) <= 0.3 and abs(second - quiet) <= 0.3 and loud - quiet > 19
    assert integrated(steps, [(0.0, 1.0), (4.0, 5.0)]) > quiet + 3  # spans together: a gated mean of both
    assert integrated(steps, [(1.0, 1.3)]) == -math.inf  # no whole block fits


def test_a_video_without_audio_is_a_media_error(tmp_path):
    video = make_video(tmp_path / "mute.mp4", duration=1, size="64x48", fps=4)
    with pytest.raises(MediaError, match="no audio track to measure"):
        block_loudness([video], first_audio(0))


def _curve(spans, duration: float, ducking: Ducking = DUCKING) -> tuple[np.ndarray, np.ndarray]:
    count = round(duration * RATE)
    return np.arange(count) / RATE, ducking.gain_curve(spans, 0, count, RATE)


def _inside(t: np.ndarray, spans) -> np.ndarray:
    return np.any([(t >= a) & (t <= b) for a, b in spans], axis=0)


SPANS = [(1.0, 2.0), (2.8, 3.5), (6.0, 7.0)]  # a short gap (stays ducked), then a long one
DURATION = 9.0


def test_the_gain_is_the_depth_under_speech_and_exactly_one_where_the_bed_is_measured():
    t, gain = _curve(SPANS, DURATION)
    assert gain.dtype == np.float32
    assert np.all(gain[_inside(t, SPANS)] == DEPTH)
    full = full_level_spans(SPANS, DURATION, DUCKING)
    assert full == [(0.0, 0.7), (4.3, 5.7), (7.8, DURATION)]
    assert np.all(gain[_inside(t, full)] == 1.0)
    assert np.all(gain[~_inside(t, full)] < 1.0)  # everywhere else the bed is below its level
    assert np.all(gain >= DEPTH)


def test_ramps_end_at_the_onset_start_at_the_end_and_are_monotonic():
    t, gain = _curve(SPANS, DURATION)
    fall = gain[(t >= 1.0 - DUCKING.attack_s) & (t <= 1.0)]
    rise = gain[(t >= 3.5) & (t <= 3.5 + DUCKING.release_s)]
    assert fall[0] == 1.0 and fall[-1] == DEPTH and np.all(np.diff(fall) <= 0)
    assert rise[0] == DEPTH and rise[-1] == 1.0 and np.all(np.diff(rise) >= 0)
    assert fall[len(fall) // 2] == pytest.approx(10 ** (-DUCKING.depth_db / 40), rel=1e-3)  # half the dB midway


def test_gaps_merge_only_when_too_short_for_the_bed_to_come_back():
    t, gain = _curve(SPANS, DURATION)
    assert np.all(gain[(t >= 2.0) & (t <= 2.8)] == DEPTH)  # 0.8 s gap < attack + release + hold
    assert gain[(t > 3.5) & (t < 6.0)].max() == 1.0  # 2.5 s gap: back to full level
    shortest = DUCKING.attack_s + DUCKING.release_s + DUCKING.hold_s
    assert len(DUCKING.merged([(1.0, 2.0), (2.0 + shortest - 0.01, 5.0)])) == 1
    assert len(DUCKING.merged([(1.0, 2.0), (2.0 + shortest, 5.0)])) == 2
    assert DUCKING.merged([(3.0, 4.0), (0.5, 1.0), (3.5, 3.6), (2.0, 2.0)]) == [(0.5, 1.0), (3.0, 4.0)]


def test_a_span_at_the_start_and_one_running_to_the_end():
    spans = [(0.0, 1.0), (5.0, DURATION)]
    t, gain = _curve(spans, DURATION)
    assert gain[0] == DEPTH and gain[-1] == DEPTH
    assert full_level_spans(spans, DURATION, DUCKING) == [(1.8, 4.7)]
    assert full_level_spans([], DURATION, DUCKING) == [(0.0, DURATION)]
    assert full_level_spans([(0.0, DURATION)], DURATION, DUCKING) == []


@pytest.mark.parametrize("channels", [1, 2])
def test_ducking_is_the_same_whatever_the_chunking(channels):
    rng = np.random.default_rng(0)
    shape = (round(DURATION * RATE),) + ((channels,) if channels > 1 else ())
    track = rng.uniform(-1, 1, shape).astype(np.float32)
    whole = np.concatenate(list(duck([track], SPANS, RATE, DUCKING)))
    _, gain = _curve(SPANS, DURATION)
    assert np.array_equal(whole, track * (gain[:, None] if channels > 1 else gain))
    cuts = np.sort(rng.choice(np.arange(1, len(track)), 40, replace=False))
    chunked = list(duck(np.split(track, cuts), SPANS, RATE, DUCKING))
    assert len(chunked) == 41 and chunked[0].shape[1:] == track.shape[1:]
    assert np.array_equal(np.concatenate(chunked), whole)
    assert np.array_equal(DUCKING.gain_curve(SPANS, 2345, 10, RATE), gain[2345:2355])
