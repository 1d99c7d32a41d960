"""Paired test-set manifests: parsing, logical video windows, images, and one-line errors."""

import numpy as np
import pytest
from PIL import Image

from cotvtm.errors import CotvtmError
from cotvtm.eval.settings import EvalConfig
from cotvtm.eval.testset import REFERENCE_RATE, load_testset, read_testset_manifest
from cotvtm.video.samples import make_audio, make_video
from helpers import write_jsonl as _write


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("pairs")
    make_video(d / "clip.mp4", 3, audio=True)
    make_video(d / "mute.mp4", 1)
    make_audio(d / "song.m4a", 4)
    Image.fromarray(np.full((90, 120, 3), 200, np.uint8)).save(d / "still.png")
    return d


def _cfg(**kw):
    return EvalConfig(testset="", out="", window_s=2.0, frames_per_window=3, short_side=32, **kw)


def test_video_windows_and_images_become_paired_items(media):
    manifest = _write(media / "set.jsonl", [
        {"id": "v", "visual": "clip.mp4", "audio": "clip.mp4", "caption": "a test pattern"},
        {"id": "i", "image": "still.png", "audio": "song.m4a"},
    ])
    testset = load_testset(manifest, _cfg())
    assert [i.id for i in testset.items] == ["v#0", "v#1", "i"]
    first, second, image = testset.items
    assert (first.start, first.end, second.start, second.end) == (0.0, 2.0, 2.0, 3.0)
    assert first.frames.shape[0] == 3 and first.frames.shape[1] == 32  # sampled frames, short side 32
    assert len(first.reference) == 2 * REFERENCE_RATE and len(second.reference) == REFERENCE_RATE
    assert np.abs(first.reference).max() > 0.1  # the video's own sine track is the reference
    assert first.caption == "a test pattern" and image.caption is None
    assert image.kind == "image" and image.frames.shape == (1, 32, 43, 3)  # scaled down like frames
    assert image.seconds == 2.0 and len(image.reference) == 2 * REFERENCE_RATE  # capped at one window
    assert testset.notes == []


def test_csv_manifests_and_short_references(media):
    (media / "set.csv").write_text("id,video,audio\nm,mute.mp4,song.m4a\nv,clip.mp4,song.m4a\n")
    assert [e.id for e in read_testset_manifest(media / "set.csv")] == ["m", "v"]
    cut = media / "short.m4a"
    make_audio(cut, 1)
    manifest = _write(media / "short.jsonl", [{"id": "v", "visual": "clip.mp4", "audio": "short.m4a"}])
    testset = load_testset(manifest, _cfg())
    assert "padded with silence: v" in testset.notes[0]
    assert np.abs(testset.items[1].reference).max() == 0.0


@pytest.mark.parametrize("rows, message", [
    ([{"id": "a", "visual": "clip.mp4"}], "set.jsonl:1: missing 'audio'"),
    ([{"visual": "clip.mp4", "audio": "song.m4a"}], "missing 'id'"),
    ([{"id": "a", "visual": "gone.mp4", "audio": "song.m4a"}], "file not found: "),
    ([{"id": "a", "visual": "clip.mp4", "audio": "song.m4a"}] * 2, "set.jsonl:2: duplicate id 'a'"),
])
def test_bad_rows_name_the_file_and_line(media, rows, message):
    with pytest.raises(CotvtmError, match=message):
        read_testset_manifest(_write(media / "set.jsonl", rows))


def test_bad_media_and_manifests_are_one_line_errors(media):
    manifest = _write(media / "bad.jsonl", [{"id": "m", "visual": "mute.mp4", "audio": "mute.mp4"}])
    with pytest.raises(CotvtmError, match=r"bad.jsonl:1: .*mute.mp4: no audio stream"):
        load_testset(manifest, _cfg())
    (media / "broken.jsonl").write_text("{not json\n")
    with pytest.raises(CotvtmError, match="broken.jsonl:1: not valid JSON"):
        read_testset_manifest(media / "broken.jsonl")
    with pytest.raises(CotvtmError, match="unsupported test-set manifest"):
        read_testset_manifest(media / "still.png")
    with pytest.raises(CotvtmError, match="not found"):
        read_testset_manifest(media / "nothing.jsonl")
