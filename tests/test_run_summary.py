"""What the console and the summary line say of a run: counts in words, images apart from
videos, every output of an input, and existing outputs a signed run leaves unsigned. The
runner's own functions over a real output folder; no models, no Ray."""

import json

import pytest

from cotvtm.counted import counted, media
from cotvtm.pipelines import names
from cotvtm.pipelines.job import Outcome
from cotvtm.pipelines.runner import Summary, _Say, _existing, _todo
from cotvtm.settings import Access, SoundtrackConfig
from cotvtm.storage import open_store

DIGEST = "0123abcd45"
UNSIGNED, SIGNED, NEW, IMAGE = "old.mp4", "signed.mp4", "new.mp4", "poster.png"


def test_counts_read_as_words():
    assert [counted(n, "input") for n in (0, 1, 2)] == ["0 inputs", "1 input", "2 inputs"]
    assert counted(1, "entry", "entries") == "1 entry" and counted(3, "entry", "entries") == "3 entries"
    assert [media(2, 1), media(1, 0), media(0, 2), media(0, 0)] == ["2 videos and 1 image", "1 video", "2 images",
                                                                    "nothing"]


def test_the_summary_counts_videos_and_images_apart():
    outcomes = [Outcome("a.mp4", "ok"), Outcome("a.mp4", "ok", variant=2), Outcome("b.mov", "ok"),
                Outcome("c.png", "ok"), Outcome("d.jpg", "error"), Outcome("e.mp4", "skipped")]
    line = Summary(ok=4, failed=1, skipped=1, outcomes=outcomes).line()
    assert "; 2 videos and 1 image soundtracked, " in line and "unsigned" not in line
    assert "; nothing soundtracked, " in Summary().line()


@pytest.fixture
def library(tmp_path):
    """An output folder holding the outputs of two inputs, one made unsigned, one signed."""
    out = open_store(tmp_path / "out")
    for key, c2pa in ((UNSIGNED, None), (SIGNED, {"subject": "CN=signer", "outputs": {}})):
        video, sidecar = names.output_keys(key, DIGEST)
        out.put_bytes(video, b"made")
        out.put_bytes(sidecar, json.dumps({"input": key, "provenance": {"metadata": {}, "c2pa": c2pa}}).encode())
    keys = {key: "" for key in (UNSIGNED, SIGNED, NEW, IMAGE)}
    return out, keys


def _todo_of(library, **signing):
    out, keys = library
    lines = []
    say = _Say(Summary(), out, "run", lines.append)
    signed = {"sign_cert": "c.pem", "sign_key": "k.pem"} if signing.pop("signing", False) else {}
    where = Access(source="in", dest="out", **signing, **signed)
    styled = {key: (identity, None) for key, identity in keys.items()}
    jobs = _existing(*_todo(styled, out, DIGEST, SoundtrackConfig(image_video=True), say), out, say, where)
    return jobs, say, lines


def test_without_signing_existing_outputs_are_skipped_and_not_read(library):
    out, _ = library
    out.put_bytes(names.output_keys(UNSIGNED, DIGEST)[1], b"not JSON: never read without signing")
    jobs, say, lines = _todo_of(library)
    assert sorted(job.key for job in jobs) == [NEW, IMAGE] and say.summary.skipped == 2
    assert say.summary.unsigned == 0 and not any("unsigned" in line for line in lines)


def test_a_signed_rerun_says_which_outputs_stay_unsigned(library):
    jobs, say, lines = _todo_of(library, signing=True)
    assert sorted(job.key for job in jobs) == [NEW, IMAGE] and say.summary.skipped == 2
    said = "1 existing output left unsigned (made without --sign-cert); add --resign to make it again, signed"
    assert lines[-1] == f"signing  {said}"
    assert say.summary.unsigned == 1 and say.summary.line().endswith(f"; {said}")


def test_resign_makes_the_unsigned_outputs_again(library):
    jobs, say, lines = _todo_of(library, signing=True, resign=True)
    assert sorted(job.key for job in jobs) == [NEW, UNSIGNED, IMAGE]
    assert [o.key for o in say.summary.outcomes] == [SIGNED] and say.summary.unsigned == 0
    assert not any("unsigned" in line for line in lines)


def test_an_images_line_names_its_music_and_its_still_video(library):
    out, _ = library
    jobs, say, lines = _todo_of(library)
    [job] = [job for job in jobs if job.key == IMAGE]
    assert job.out_still and job.out_still.endswith(".mp4") and job.out_video.endswith(".m4a")
    say.outcome(Outcome(IMAGE, "ok", output=out.uri(job.out_video), sidecar=out.uri(job.out_sidecar)))
    assert lines[-1] == f"ok       {IMAGE} -> {out.uri(job.out_video)}, {out.uri(job.out_still)}"
    say.outcome(Outcome(NEW, "ok", output=out.uri("new.mp4.x.mp4")))
    assert lines[-1] == f"ok       {NEW} -> {out.uri('new.mp4.x.mp4')}"
