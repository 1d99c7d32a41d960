"""--audio voice and the delivery format, end to end: a voice-over stays on top of the music.

One set of inputs, soundtracked twice with the same seed (so with the same music): ``replace``
gives the music alone, ``voice`` the voice-over with the music under it. The music in the voice
output is found by least squares against the music alone (codec noise is not music), the voice
by removing that music.
"""

import json
import subprocess

import numpy as np
import pytest
import soundfile as sf
from speech_media import SURROUND_TONES, make_speech_video, make_surround_video

from PIL import Image

import cotvtm
from cotvtm.video.delivery import Delivery, Original, audio_format
from cotvtm.video.mux import Loudness, kept_mix, mux_audio, mux_wav
from cotvtm.video.probe import probe
from cotvtm.video.samples import SAMPLE_VIDEOS, make_video
from cotvtm.video.stems import original_stem

RATE = 48000
DURATION = 16.0
LAG = 4096  # the most an encoder's delay may shift one decoding against another


def decode(path, channels: int = 2) -> np.ndarray:
    """The first audio stream at 48 kHz, (samples, channels)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ar", str(RATE),
                          "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.float32).reshape(-1, channels)


def streams(path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                          "stream=sample_rate,channels,channel_layout", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["streams"][0]


def loudness(samples: np.ndarray, tmp_path, name: str) -> float:
    """ffmpeg's own BS.1770 integrated loudness of ``samples`` (48 kHz)."""
    import soundfile as sf

    wav = tmp_path / f"{name}.wav"
    sf.write(wav, samples, RATE, subtype="FLOAT")
    done = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-i", str(wav), "-af", "ebur128", "-f", "null", "-"],
                          capture_output=True, text=True, check=True).stderr
    return float(done[done.rfind("Summary:"):].split("I:")[1].split("LUFS")[0])


def aligned(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``other`` shifted to line up with ``reference`` (an encoder's delay), as long as it."""
    a, b = reference[:, 0], other[:, 0]
    scores = [float(np.dot(a[LAG:-LAG], b[LAG + lag: len(b) - LAG + lag])) for lag in range(-LAG, LAG + 1)]
    lag = int(np.argmax(scores)) - LAG
    shifted = np.roll(other, -lag, axis=0)
    return shifted[: len(reference)]


def part(samples: np.ndarray, start: float, end: float) -> np.ndarray:
    return samples[round(start * RATE): round(end * RATE)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, model_cache, ray_session):
    root = tmp_path_factory.mktemp("voice")
    inputs = root / "in"
    inputs.mkdir()
    spoken = make_speech_video(inputs / "talk.mp4", DURATION)
    make_surround_video(inputs / "surround.mp4", 3.0)
    make_video(inputs / "mute.mp4", duration=3.0, size="64x48", fps=4)  # no audio stream
    Image.new("RGB", (48, 32), (200, 120, 20)).save(inputs / "poster.png")
    bars = "colour_bars_hue_6s.mp4"  # one of the demo's inputs: 25 fps, a silent audio track
    make_video(inputs / bars, size="320x180", fps=25, **SAMPLE_VIDEOS[bars])
    made = {}
    for mode in ("replace", "voice"):
        timeline = ["otio", "fcp-xml"] if mode == "voice" else []  # the editor's files: a list is taken too
        summary = cotvtm.soundtrack(inputs, root / mode, cache_dir=model_cache, audio=mode, ending="cut",
                                    timeline=timeline, echo=lambda line: None)
        assert (summary.ok, summary.failed) == (5, 0), [o.reason for o in summary.outcomes]
        made[mode] = {name: (next((root / mode).glob(f"{name}.*.mp4")),
                             json.loads(next((root / mode).glob(f"{name}.*.json")).read_text()))
                      for name in ("talk.mp4", "surround.mp4", "mute.mp4", "colour_bars_hue_6s.mp4")}
        made[mode]["poster.png"] = (next((root / mode).glob("poster.png.*.m4a")),
                                    json.loads(next((root / mode).glob("poster.png.*.json")).read_text()))
    return inputs, spoken, made


@pytest.mark.slow
def test_the_voice_stays_on_top_and_the_music_sits_under_it(runs, tmp_path):
    """Test video: espeak-ng speech from 4 s to about 11 s over room tone, 48 kHz stereo, 16 s; no
    loudness target. The music is at the bed level outside speech, at least 12 dB lower while
    someone speaks and then at least 15 dB under the voice; the voice passes through as it was."""
    inputs, spoken, made = runs
    output, sidecar = made["voice"]["talk.mp4"]
    assert streams(output) == {"sample_rate": "48000", "channels": 2, "channel_layout": "stereo"}
    original = decode(inputs / "talk.mp4")
    voice_out = aligned(original, decode(output))
    music = aligned(voice_out, decode(made["replace"]["talk.mp4"][0]))  # the same music, alone
    speech = sidecar["speech"]
    [[start, end]] = speech["spans"]
    assert abs(start - spoken[0]) <= 0.3 and abs(end - spoken[1]) <= 0.3  # what must show 3
    ramp = speech["attack_s"] + 0.1, speech["release_s"] + 0.1
    outside = [(0.5, start - ramp[0]), (end + ramp[1], DURATION - 0.5)]
    inside = (start + 0.2, end - 0.2)
    residual = voice_out - original

    def gain(a, b):  # the music's gain in the output there, by least squares
        m = part(music, a, b).ravel()
        return float(np.dot(part(residual, a, b).ravel(), m) / np.dot(m, m))

    bed = [gain(*span) for span in outside]
    under = gain(*inside)
    depth_db = 20 * np.log10(np.mean(bed) / under)
    assert depth_db >= 12 and abs(20 * np.log10(bed[0] / bed[1])) < 0.5
    music_out = np.concatenate([part(music, *span) * g for span, g in zip(outside, bed)])
    bed_lufs = loudness(music_out, tmp_path, "bed")
    voice_lufs = loudness(part(original, *inside), tmp_path, "voice")
    under_lufs = loudness(part(music, *inside) * under, tmp_path, "under")
    assert abs(bed_lufs - (voice_lufs + speech["bed_level_lu"])) <= 1.0  # at the bed level
    assert voice_lufs - under_lufs >= 15  # under the voice
    spans, gains = [*outside, inside], [*bed, under]
    cleaned = np.concatenate([part(voice_out, *span) - g * part(music, *span) for span, g in zip(spans, gains)])
    kept = np.concatenate([part(original, *span) for span in spans])
    correlation = np.corrcoef(cleaned.ravel(), kept.ravel())
    assert correlation[0, 1] > 0.99  # the original, unchanged apart from the codec
    assert speech["bed_gain_db"] == pytest.approx(20 * np.log10(np.mean(bed)), abs=0.5)
    assert sidecar["audio"]["mode"] == "voice" and sidecar["audio"]["changes"] == []
    assert sidecar["licences"]["speech_detector"]["id"] == "MIT" and speech["detector"].startswith("silero-vad 6.")
    print(f"talk.mp4: depth {depth_db:.1f} dB; bed {bed_lufs:.1f} LUFS vs voice {voice_lufs:.1f} LUFS "
          f"(asked {speech['bed_level_lu']} LU); music under the voice by {voice_lufs - under_lufs:.1f} LU; "
          f"voice correlation {correlation[0, 1]:.4f}; spans {speech['spans']} vs spoken {spoken}")


@pytest.mark.slow
def test_every_output_is_delivered_at_48_khz_and_a_kept_original_keeps_its_layout(runs):
    """replace: 48 kHz stereo whatever the music's rate (an image's music too); voice keeps a 5.1 original 5.1 (no speech
    in it: the music at its own level, said so), and a video with no audio gets the music alone."""
    _, _, made = runs
    for name, (output, sidecar) in made["replace"].items():
        assert streams(output) == {"sample_rate": "48000", "channels": 2, "channel_layout": "stereo"}, name
        assert sidecar["audio"]["sample_rate"] == 48000 and sidecar["speech"] is None
    surround, sidecar = made["voice"]["surround.mp4"]
    assert streams(surround) == {"sample_rate": "48000", "channels": 6, "channel_layout": "5.1"}
    assert sidecar["speech"]["spans"] == [] and "no speech" in sidecar["speech"]["note"]
    assert sidecar["audio"]["original"] == {"sample_rate": 48000, "channels": 6, "layout": "5.1"}
    mute, sidecar = made["voice"]["mute.mp4"]
    assert streams(mute)["channels"] == 2 and "no audio stream" in sidecar["speech"]["note"]


def test_duck_keeps_a_surround_originals_layout_with_the_music_in_front(tmp_path):
    """--audio duck over a 48 kHz 5.1 original: 5.1 out, each channel's own tone kept, the (mono)
    music only in the front left and right."""
    source = tmp_path / "surround.mp4"
    make_surround_video(source, 2.0)
    info = probe(source)
    assert (info.audio_rate, info.audio_channels, info.audio_layout) == (48000, 6, "5.1")
    t = np.arange(2 * 16000) / 16000
    out = mux_audio(source, (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), 16000, tmp_path / "out.mp4",
                    2.0, kept_mix("out.mp4", 1, Original.of(info), 0.25))
    assert streams(out) == {"sample_rate": "48000", "channels": 6, "channel_layout": "5.1"}
    pcm = decode(out, 6)
    spectrum = np.abs(np.fft.rfft(pcm[4800:-4800], axis=0))
    freqs = np.fft.rfftfreq(len(pcm) - 9600, 1 / RATE)

    def at(hz):
        return spectrum[np.argmin(np.abs(freqs - hz))]

    for channel, hz in enumerate(SURROUND_TONES.values()):  # each channel still carries its own tone
        assert at(hz)[channel] > 10 * np.delete(at(hz), channel).max()
    music = at(1000)
    assert music[0] > 0 and music[1] > 0 and music[2:].max() < 0.01 * music[:2].min()  # the music in front only


def test_a_loudness_target_is_met_by_the_speech(runs, tmp_path):
    """--loudness with --audio voice: the mix measured over the speech spans lands on the target
    (dialogue-anchored), whatever the music does around them."""
    import soundfile as sf

    inputs, spoken, made = runs
    info = probe(inputs / "talk.mp4")
    noise = np.random.default_rng(0).normal(0, 0.1, round(DURATION * 16000)).astype(np.float32)
    sf.write(tmp_path / "music.wav", noise, 16000, subtype="FLOAT")
    out = tmp_path / "loud.mp4"
    mix = kept_mix(out, 1, Original.of(info), 1.0, music_gain_db=-6.0)
    fitted = mux_wav(inputs / "talk.mp4", tmp_path / "music.wav", out, mix, Loudness(-23.0), anchor=[spoken])
    assert fitted["anchor"] == "speech" and abs(fitted["result_lufs"] - -23.0) <= 0.3
    mixed = decode(out)
    assert abs(loudness(part(mixed, spoken[0] + 0.2, spoken[1] - 0.2), tmp_path, "speech") - -23.0) <= 1.0
    assert abs(loudness(mixed, tmp_path, "whole") - -23.0) > 1.0  # not the whole mix's loudness: the speech's
    short = mux_wav(inputs / "talk.mp4", tmp_path / "music.wav", out, mix, Loudness(-23.0), anchor=[(5.0, 5.3)])
    assert short["anchor"].startswith("the whole mix")  # no 400 ms block fits a 0.3 s utterance


def test_an_original_that_starts_late_stays_in_sync(tmp_path):
    """An audio track starting 1 s after the picture is kept 1 s in, not pulled to the start."""
    source = tmp_path / "late.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=3",
                    "-itsoffset", "1", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2",
                    "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "flac", str(source)], check=True)
    info = probe(source)
    out = mux_audio(source, np.zeros(3 * 16000, np.float32), 16000, tmp_path / "out.mkv", 3.0,
                    kept_mix("out.mkv", 1, Original.of(info), 1.0))
    level = np.abs(decode(out)[:, 0])
    onset = np.flatnonzero(level > 0.1)[0] / RATE
    assert onset == pytest.approx(1.0, abs=0.05)
    original_stem(source, 3.0, tmp_path / "original.wav")  # the timeline's A1: on the same clock, as long
    stem, rate = sf.read(tmp_path / "original.wav", dtype="float32", always_2d=True)
    assert rate == 48000 and len(stem) == 3 * 48000
    assert np.flatnonzero(np.abs(stem[:, 0]) > 0.1)[0] / rate == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("codec, original, asked, expected", [
    ("aac", None, Delivery(), (48000, "stereo", "256k", [])),  # the delivery default
    ("aac", None, Delivery(44100, 1, "96k"), (44100, "mono", "96k", [])),
    ("aac", Original(44100, 6, "5.1(side)"), Delivery(), (44100, "5.1", "512k", [])),  # the same speakers, renamed
    ("aac", Original(48000, 1, "mono"), Delivery(), (48000, "stereo", "256k", [])),  # widened, centred
    ("aac", Original(48000, 24, "22.2"), Delivery(), (48000, "stereo", "256k", ["22.2 layout (24 channels) cannot "
                                                                                "be carried by aac"])),
    ("libopus", Original(44100, 2, "stereo"), Delivery(), (48000, "stereo", "256k", ["44100 Hz cannot be carried"])),
    ("libopus", Original(48000, 4, "4.0"), Delivery(), (48000, "stereo", "256k", ["4.0 layout"])),
    ("aac", Original(48000, 6, "5.1"), Delivery(channels=2), (48000, "stereo", "256k", ["mixed to stereo"])),
    ("aac", Original(16000, 1, "mono"), Delivery(), (48000, "stereo", "256k", ["16000 Hz raised to 48000"])),
    ("libopus", None, Delivery(bitrate="1024k"), (48000, "stereo", "512k", ["1024k is more than libopus takes"])),
])
def test_what_a_kept_original_keeps_and_why_not(codec, original, asked, expected):
    fmt = audio_format(asked, codec, original)
    rate, layout, bitrate, changes = expected
    assert (fmt.sample_rate, fmt.layout, fmt.bitrate) == (rate, layout, bitrate)
    assert len(fmt.changes) == len(changes) and all(said in change for said, change in zip(changes, fmt.changes))


@pytest.mark.slow
def test_timelines_open_with_the_picture_the_original_and_the_music(runs):
    """--timeline otio and fcp-xml beside each video of the voice run (a 10 fps voice-over, a
    demo input at 25 fps, a 5.1 one, one without audio): read back through OpenTimelineIO (the
    FCP XML through its adapter), each clip the video's length in the timeline's frames, its
    media beside it, the WAV stems 48 kHz and as long as the video."""
    import opentimelineio as otio

    from cotvtm.video.timeline import media_path

    _, _, made = runs
    for name in ("talk.mp4", "colour_bars_hue_6s.mp4", "surround.mp4", "mute.mp4"):
        output, sidecar = made["voice"][name]
        editor, duration = sidecar["editor"], sidecar["video"]["duration"]
        assert (editor["original"] is None) == (name == "mute.mp4")
        for stem in (editor["music"], editor["original"]):
            if stem:
                info = sf.info(str(output.parent / stem))
                assert info.samplerate == 48000 and info.frames == round(duration * 48000), (name, stem)
        for kind in ("otio", "fcp-xml"):
            path = output.parent / editor["timelines"][kind]
            timeline = otio.adapters.read_from_file(str(path))
            clips = list(timeline.find_clips())
            rate = clips[0].source_range.duration.rate
            assert rate == {"talk.mp4": 30, "colour_bars_hue_6s.mp4": 25}.get(name, rate)
            assert len(clips) == (2 if name == "mute.mp4" else 3)
            assert all(c.source_range.duration.to_frames() == round(duration * rate) for c in clips)
            files = [media_path(path, c.media_reference.target_url) for c in clips]
            assert files[0] == output and all(f.exists() for f in files), (name, kind)
    assert made["voice"]["poster.png"][1]["editor"] is None
    assert any("no timeline" in w for w in made["voice"]["poster.png"][1]["warnings"])
