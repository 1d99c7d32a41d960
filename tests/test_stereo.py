"""Stereo end to end (channels-last audio), and continuation from audio context in the composer.

The decoder here is a small numpy stand-in for a decoder that continues from audio: it is the
composer under test, not a model. Its window is its context verbatim, then a ramp per channel
going on from the context's last sample (up in the left channel, down in the right)."""

import json
import math
import subprocess

import numpy as np
import pytest
import soundfile as sf

from cotvtm.music.beats import BeatGrid
from cotvtm.music.channels import mixdown
from cotvtm.music.compose import Composer, TrackState, join_streams
from cotvtm.music.ending import EndingChunks
from cotvtm.music.decoder import WindowMusic
from cotvtm.pipelines.progress import VideoProgress
from cotvtm.storage import open_store
from cotvtm.video.delivery import Delivery, Original, audio_format
from cotvtm.video.mux import Loudness, fit_length, kept_mix, mux_wav, normalise, write_wav
from cotvtm.video.probe import probe as probe_video
from cotvtm.video.samples import make_video
from tests.music_helpers import Track, compose, compose_config, step

RATE = 100
STEP = np.array([2e-4, -3e-4], np.float32)  # the ramp's step per sample, per channel
DURATIONS = [2.0, 1.5, 2.5, 1.0, 2.0]
CFG = compose_config(prompt_s=0.5, crossfade_s=0.1, seed=3)
CONTEXT, FADE = round(CFG.prompt_s * RATE), round(CFG.crossfade_s * RATE)


class ContextRamp:
    """Continues from audio: the window's audio is its context, then ``seconds`` of ramp."""

    sample_rate, channels, continues = RATE, 2, "audio"

    def __init__(self):
        self.requests, self.windows = [], []

    def render(self, requests):
        windows = [self._window(request) for request in requests]
        self.requests += requests
        self.windows += windows
        return windows

    def _window(self, request) -> WindowMusic:
        context = np.zeros((0, 2), np.float32) if request.context is None else request.context
        start = context[-1] if len(context) else np.array([0.05, -0.05], np.float32) + request.stream % 7 * 1e-3
        steps = np.arange(1, math.ceil(request.seconds * RATE) + 1, dtype=np.float32)[:, None]
        audio = np.concatenate([context, start + steps * STEP]).astype(np.float32)
        return WindowMusic(audio, None, 0, prompt_samples=len(context))


def _track(backend, windows: int = len(DURATIONS)) -> np.ndarray:
    rows = np.zeros((windows, 3, 4), np.float32)
    [track] = compose(backend, [Track(rows, np.ones((windows, 3), np.int64), DURATIONS[:windows])], CFG, ["v"])
    return track


def test_each_window_continues_the_tracks_last_audio_and_the_track_is_exact():
    backend = ContextRamp()
    track = _track(backend)
    ends = [round(sum(DURATIONS[:k + 1]) * RATE) for k in range(len(DURATIONS))]
    assert track.shape == (ends[-1], 2) and track.dtype == np.float32
    assert backend.requests[0].context is None  # the stream's first window is fresh, a crossfade longer
    assert backend.requests[0].seconds == pytest.approx(DURATIONS[0] + CFG.crossfade_s)
    for k in range(1, len(DURATIONS)):
        request, before, window = backend.requests[k], backend.windows[k - 1], backend.windows[k]
        made = before.audio[before.prompt_samples:][: ends[k - 1] - (ends[k - 2] if k > 1 else 0)]
        assert request.seconds == DURATIONS[k] and request.context.shape == (CONTEXT, 2)
        assert np.array_equal(request.context, made[-CONTEXT:])  # window k-1's last new audio
        assert np.array_equal(request.context[:-FADE], track[ends[k - 1] - CONTEXT: ends[k - 1] - FADE])
        # the context's re-rendering is skipped: window k's new audio starts right where the track ended
        end = ends[k] - (FADE if k < len(DURATIONS) - 1 else 0)
        new = window.audio[window.prompt_samples:]
        assert np.array_equal(track[ends[k - 1]: end], new[: end - ends[k - 1]])
        assert np.allclose(track[ends[k - 1]] - track[ends[k - 1] - 1], STEP, atol=1e-6)  # no jump at the seam
        # the seam: the track's tail crossfaded (equal power) with the context's re-rendering of it
        ramp = np.linspace(0.0, np.pi / 2, FADE, dtype=np.float32)[:, None]
        tail = request.context[-FADE:]
        assert np.allclose(track[ends[k - 1] - FADE: ends[k - 1]], tail * np.cos(ramp) + tail * np.sin(ramp), atol=1e-6)
    assert not np.allclose(track[:, 0], track[:, 1])  # two channels, kept apart


def test_a_stereo_state_saved_and_restored_mid_track_gives_the_identical_track(tmp_path):
    """Two windows, the state and audio saved as the Music stage saves them and read back, then
    the rest in a new composer: the same samples, bit for bit, as the track made in one go."""
    whole, backend = _track(ContextRamp()), ContextRamp()
    rows, mask = np.zeros((1, 3, 4), np.float32), np.ones((1, 3), np.int64)
    first, state = Composer(backend, CFG), TrackState()
    for k in range(2):
        step(first, [state], rows, mask, [DURATIONS[k]], ["v"])
    progress = VideoProgress(open_store(tmp_path).child(".cotvtm-progress"), "digest", "v")
    progress.save_audio(0, first.take(state), state, ["d0", "d1"])
    resumed, second = progress.load_state(0), Composer(ContextRamp(), CFG)
    assert resumed.context.shape == (CONTEXT, 2) and np.array_equal(resumed.context, state.context)
    assert resumed.tail.shape == (FADE, 2) and np.array_equal(resumed.tail, state.tail)
    pieces = [progress.load_audio(0)]
    for k in range(2, len(DURATIONS)):
        step(second, [resumed], rows, mask, [DURATIONS[k]], ["v"])
        pieces.append(second.take(resumed, last=k == len(DURATIONS) - 1))
    assert np.array_equal(np.concatenate(pieces), whole)


def test_a_state_saved_before_audio_context_existed_still_loads():
    arrays = {k: v for k, v in TrackState(np.ones(3, np.float32), 10, 10.0, 1).to_arrays().items() if k != "context"}
    state = TrackState.from_arrays(arrays)
    assert state.window == 1 and state.context.shape == (0,)


def test_stereo_streams_endings_and_beats_keep_both_channels():
    """Streams crossfade, the ending fades and the chunks pass the beat grid in stereo; the beats
    are the mixdown's."""
    t = np.arange(6 * RATE * 40) / (RATE * 40)
    left = 0.3 * np.sin(2 * np.pi * 110 * t) * (1 + np.sin(2 * np.pi * 2 * t))
    audio = np.stack([left, -0.5 * left], axis=1).astype(np.float32)
    one, two = audio[:2000], audio[1990:]
    joined = np.concatenate(list(join_streams([one, two], {1}, 10)))
    assert joined.shape == (len(audio), 2)
    rate = RATE * 40
    ending = EndingChunks((joined[i:i + 777] for i in range(0, len(joined), 777)), len(joined) + 50, rate, "fade")
    grid = BeatGrid(ending, rate)
    ended = np.concatenate(list(grid))
    assert ended.shape == (len(joined) + 50, 2) and not ended[-1].any()
    assert np.array_equal(ended[:, 1] / -0.5, ended[:, 0]) and np.abs(ended[-100:]).max() < np.abs(ended[:100]).max()
    mono = BeatGrid([mixdown(ended)], rate)
    list(mono)
    assert grid.beats() == mono.beats()


def test_a_stereo_wav_and_its_loudness_stay_stereo(tmp_path):
    """Music written from stereo chunks, ducked over a mono original and brought to a loudness:
    the output's audio stream is stereo, its channels as different as the music's."""
    rate, seconds = 16000, 3.0
    t = np.arange(int(seconds * rate)) / rate
    music = np.stack([0.2 * np.sin(2 * np.pi * 330 * t), 0.2 * np.sin(2 * np.pi * 550 * t)], axis=1)
    short = music[:-700]
    wav = write_wav((short[i:i + 5000] for i in range(0, len(short), 5000)), rate, seconds, tmp_path / "m.wav")
    written, _ = sf.read(wav, dtype="float32")
    assert written.shape == (len(music), 2) and not written[-700:].any()  # zero-padded, in stereo
    video = make_video(tmp_path / "talk.mp4", duration=seconds, size="64x48", fps=4, audio=True)
    fitted = mux_wav(video, wav, tmp_path / "out.mp4", kept_mix("out.mp4", 2, Original.of(probe_video(video)), 0.3),
                     Loudness(-18.0))
    assert abs(fitted["result_lufs"] - -18.0) <= 0.3
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a", "-show_entries",
                                       "stream=channels", "-of", "json", str(tmp_path / "out.mp4")],
                                      capture_output=True, text=True, check=True).stdout)
    assert [s["channels"] for s in probe["streams"]] == [2]
    fmt = audio_format(Delivery(), "aac", None)
    loud, _ = normalise(music.astype(np.float32), rate, Loudness(-18.0), fmt)  # delivered at 48 kHz
    assert loud.shape == (3 * len(music), 2) and not np.allclose(loud[:, 0], loud[:, 1])
    assert fit_length(music, rate, 2.0).shape == (2 * rate, 2) and fit_length(music, rate, 4.0)[-1].tolist() == [0, 0]
