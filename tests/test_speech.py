"""Speech detection (cotvtm/video/speech.py) on real espeak-ng speech with Silero's real model."""

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from speech_media import make_speech_video

from cotvtm.errors import MediaError
from cotvtm.video import speech
from cotvtm.video.speech import detect_speech

DURATION = 16.0
TOLERANCE_S = 0.3


@dataclass(frozen=True)
class Media:
    speech: Path
    spoken: tuple[float, float]  # as measured on the made audio
    room_tone: Path
    corrupt: Path


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> Media:
    folder = tmp_path_factory.mktemp("speech")
    speech, room_tone, corrupt = folder / "voice over.mkv", folder / "room tone.mp4", folder / "corrupt.mkv"
    spoken = make_speech_video(speech, DURATION)
    make_speech_video(room_tone, DURATION, speech=None)
    # the header intact (the file still probes as video and audio), every packet after it noise
    data = speech.read_bytes()
    noise = np.random.default_rng(1).integers(0, 256, len(data) - 4000, np.uint8).tobytes()
    corrupt.write_bytes(data[:4000] + noise)
    return Media(speech, spoken, room_tone, corrupt)


def test_the_speech_is_one_span_and_nothing_else_is(media):
    spans = detect_speech(media.speech, DURATION)
    start, end = media.spoken
    # the pauses between sentences do not split the voice-over: one span, over the speech only
    assert len(spans) == 1, spans
    assert abs(spans[0][0] - start) <= TOLERANCE_S and abs(spans[0][1] - end) <= TOLERANCE_S, (spans, media.spoken)
    assert all(round(t, 3) == t for t in spans[0])


def test_only_the_first_duration_seconds_are_read(media):
    start, _ = media.spoken
    spans = detect_speech(media.speech, start + 2.0)
    assert len(spans) == 1 and abs(spans[0][0] - start) <= TOLERANCE_S and spans[0][1] == start + 2.0


def test_room_tone_alone_has_no_speech(media):
    assert detect_speech(media.room_tone, DURATION) == []


def test_an_undecodable_audio_stream_is_a_media_error_naming_the_file(media):
    with pytest.raises(MediaError, match="speech detection failed: .*Invalid data") as raised:
        detect_speech(media.corrupt, DURATION)
    assert raised.value.path == str(media.corrupt)


def test_a_detection_past_its_time_limit_kills_ffmpeg_and_says_so(media, monkeypatch):
    monkeypatch.setattr(speech, "TIMEOUT_S", 0.01)
    monkeypatch.setattr(speech, "TIMEOUT_S_PER_S", 0.0)
    with pytest.raises(MediaError, match="speech detection did not finish in 0 s"):
        detect_speech(media.speech, DURATION)


def test_torchs_thread_count_is_left_as_it_was(media):
    """In a fresh process, since importing silero_vad sets the count to 1 as a side effect; the
    scoring runs on one thread and puts the count back too."""
    code = ("import sys, torch; torch.set_num_threads(3); from cotvtm.video.speech import detect_speech; "
            "spans = detect_speech(sys.argv[1], 6.0); assert 'silero_vad.model' in sys.modules; "
            "print(len(spans), torch.get_num_threads())")
    done = subprocess.run([sys.executable, "-c", code, str(media.speech)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "3"]
