"""Other systems' audio (``--external``): one file per item at a defined path, and only the
item's length decoded, however long the file."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from s3server import s3_env, s3_server  # noqa: F401  (pytest fixtures)

from cotvtm.errors import CotvtmError
from cotvtm.eval.external import load_external
from cotvtm.eval.testset import REFERENCE_RATE, Item, decode_audio
from cotvtm.storage import open_store
from cotvtm.video.samples import make_audio, run_ffmpeg

REPO = Path(__file__).resolve().parents[1]
LONG_S = 1800  # a full half-hour track, where each item needs 10 s of it
WHOLE_MB = LONG_S * REFERENCE_RATE * 4 / 2**20  # the track decoded whole as float32: 220 MB


def _item(ident: str, seconds: float = 10.0) -> Item:
    return Item(ident, ident, "image", f"{ident}.png", 0.0, seconds, np.zeros((1, 2, 2, 3), np.uint8),
                np.zeros(1, np.float32))


def _silence(path: Path, seconds: float) -> Path:
    """Stereo silence at 44.1 kHz: a half-hour FLAC of it is a few hundred KB."""
    run_ffmpeg(["-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", str(seconds), "-c:a", "flac", str(path)])
    return path


@pytest.fixture(scope="module")
def long_flac(tmp_path_factory) -> Path:
    return _silence(tmp_path_factory.mktemp("long") / "item3.flac", LONG_S)


def _rms(clip: np.ndarray) -> float:
    return float(np.sqrt(np.mean(clip.astype(np.float64) ** 2)))


def test_only_the_items_length_is_decoded(long_flac):
    assert long_flac.stat().st_size < 1_000_000  # small on disk, 220 MB once decoded whole
    for seconds in (10.0, 2.345):
        samples = len(decode_audio(str(long_flac), seconds=seconds))
        assert abs(samples - seconds * REFERENCE_RATE) <= 2, (seconds, samples)


def test_a_half_hour_file_costs_what_its_item_needs(long_flac):
    """Peak memory of a fresh interpreter around load_external, for a 10 s item: the clip, not the track."""
    code = "\n".join([
        "import numpy as np",
        "from cotvtm.eval.external import load_external",
        "from cotvtm.eval.testset import Item",
        "hwm = lambda: int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) // 1024",
        "before = hwm()",
        "item = Item('item3', 'item3', 'image', 'x.png', 0.0, 10.0, np.zeros((1, 2, 2, 3), np.uint8), np.zeros(1))",
        f"[clip] = load_external('sys', {str(long_flac.parent)!r}, [item])",
        "print(len(clip), hwm() - before)",
    ])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    samples, grown = map(int, proc.stdout.split())
    print(f"\n{LONG_S} s FLAC, 10 s item: peak memory grew {grown} MB (whole track: {WHOLE_MB:.0f} MB)")
    assert samples == 10 * REFERENCE_RATE
    assert grown < WHOLE_MB / 10, f"grew {grown} MB: the {WHOLE_MB:.0f} MB track was decoded whole"


def test_the_file_in_the_folder_itself_is_used_never_one_in_a_subfolder(tmp_path):
    make_audio(tmp_path / "item3.wav", 3, codec="pcm_s16le")  # a tone
    (tmp_path / "sub").mkdir()
    _silence(tmp_path / "sub" / "item3.ogg", 3)  # listed after item3.wav: the last match once won
    make_audio(tmp_path / "sub" / "item4.wav", 3, codec="pcm_s16le")
    [clip] = load_external("sys", str(tmp_path), [_item("item3", 3.0)])
    assert _rms(clip) > 0.05  # the tone, not the silence
    with pytest.raises(CotvtmError) as missing:
        load_external("sys", str(tmp_path), [_item("item3", 3.0), _item("item4", 3.0)])
    assert str(missing.value) == (f"--external sys={tmp_path}: no audio for test item 'item4': expected "
                                  f"{tmp_path}/item4.wav, .flac, .mp3, .ogg, .opus, .m4a or .aac "
                                  "(subfolders are not searched)")


def test_two_files_for_one_item_are_an_error_naming_both(tmp_path):
    make_audio(tmp_path / "item3.wav", 1, codec="pcm_s16le")
    make_audio(tmp_path / "item3.MP3", 1, codec="libmp3lame")
    with pytest.raises(CotvtmError) as two:
        load_external("sys", str(tmp_path), [_item("item3", 1.0)])
    assert str(two.value) == (f"--external sys={tmp_path}: 2 files for test item 'item3' ({tmp_path}/item3.MP3, "
                              f"{tmp_path}/item3.wav): keep one")


def test_an_s3_folder_follows_the_same_rule(s3_server, s3_env, tmp_path, long_flac):
    bucket = s3_server.make_bucket()
    store = open_store(f"s3://{bucket}/sys")
    store.upload(long_flac, "item3.flac")
    store.upload(make_audio(tmp_path / "tone.wav", 3, codec="pcm_s16le"), "sub/item3.wav")
    [clip] = load_external("sys", f"s3://{bucket}/sys", [_item("item3", 10.0)])
    assert len(clip) == 10 * REFERENCE_RATE and _rms(clip) == 0.0  # the top-level silence, not the tone
    store.upload(tmp_path / "tone.wav", "item3.wav")
    with pytest.raises(CotvtmError, match=rf"2 files for test item 'item3' \(s3://{bucket}/sys/item3.flac, "
                                          rf"s3://{bucket}/sys/item3.wav\): keep one"):
        load_external("sys", f"s3://{bucket}/sys", [_item("item3", 10.0)])
