"""Every entry of the input is accounted for: processed, failed, or ignored with its reason."""

import json
import os
import shutil

import pytest

from cotvtm.settings import Resources, SoundtrackConfig
from cotvtm.errors import CotvtmError
from cotvtm.settings import Access
from cotvtm.pipelines.inputs import survey
from cotvtm.pipelines.runner import run
from cotvtm.video.samples import make_video


def _folder(tmp_path):
    """An input folder of every kind of entry; returns it and entry -> what must become of it."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    make_video(src / "good.mp4", duration=4, size="64x48", fps=4)
    shutil.copy(src / "good.mp4", src / "sub" / "nested.mov")
    shutil.copy(src / "good.mp4", src / ".hidden.mp4")
    shutil.copy(src / "good.mp4", src / "clip")  # media, but no extension says so
    (src / "notes.txt").write_text("not media\n")
    (src / ".DS_Store").write_bytes(b"\0\0")
    (src / ".cache").mkdir()
    shutil.copy(src / "good.mp4", src / ".cache" / "old.mp4")
    (src / ".cotvtm-progress" / "abc").mkdir(parents=True)  # a job's own progress folder
    (src / ".cotvtm-progress" / "abc" / "plan.mp4").write_bytes(b"x")
    (src / "folder.mp4").mkdir()  # a directory named like a video
    (src / "folder.mp4" / "inside.txt").write_text("x")
    (src / "broken.mp4").write_bytes(b"not a video at all")
    make_video(tmp_path / "outside.mp4", duration=4, size="64x48", fps=4)
    (src / "escape.mp4").symlink_to(tmp_path / "outside.mp4")  # leads out of the folder
    (src / "loop.mp4").symlink_to("loop.mp4")
    shutil.copy(src / "good.mp4", os.fsencode(src / "caf") + b"\xe9.mp4")  # Latin-1, not UTF-8
    expected = {"good.mp4": "ok", "sub/nested.mov": "ok", "broken.mp4": "error",
                ".hidden.mp4": "hidden", ".DS_Store": "hidden", ".cache/": "hidden", ".cotvtm-progress/": "hidden",
                "clip": "no media extension", "notes.txt": "no media extension",
                "folder.mp4/": "directory", "escape.mp4": "refused symlink", "loop.mp4": "symlink loop",
                "caf\\xe9.mp4": "undecodable name"}
    return src, expected


def test_every_entry_is_processed_failed_or_ignored_with_its_reason(tmp_path, model_cache, ray_session):
    src, expected = _folder(tmp_path)
    out = tmp_path / "out"
    lines = []
    summary = run(Access(source=str(src), dest=str(out), cache_dir=model_cache), SoundtrackConfig(), Resources(), echo=lines.append)
    reasons = {"hidden": 4, "no media extension": 2, "directory": 1, "refused symlink": 1, "symlink loop": 1,
               "undecodable name": 1}
    assert (summary.ok, summary.failed, summary.ignored_reasons) == (2, 1, reasons)
    assert summary.ok + summary.failed + sum(summary.ignored_reasons.values()) == len(expected)
    assert ("0 skipped, 10 ignored (1 directory, 4 hidden, 2 no media extension, 1 refused symlink, "
            "1 symlink loop, 1 undecodable name)" in lines[-1])
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    found = {row["key"]: row["reason"] if row["status"] == "ignored" else row["status"] for row in rows}
    assert found == expected  # one row for every entry, ignored ones with their reason
    assert "report" in lines[-2] and (out / "report.html").exists()  # the report is not thrown by them


def test_include_hidden_processes_dot_files_but_never_a_progress_folder(tmp_path):
    src, _ = _folder(tmp_path)
    inputs = survey(str(src), include_hidden=True)
    assert set(inputs.keys) == {".cache/old.mp4", ".hidden.mp4", "broken.mp4", "good.mp4", "sub/nested.mov"}
    assert dict(inputs.counts()) == {"hidden": 1, "no media extension": 3, "directory": 1, "refused symlink": 1,
                                     "symlink loop": 1, "undecodable name": 1}
    assert (".cotvtm-progress/", "hidden") in inputs.ignored and (".DS_Store", "no media extension") in inputs.ignored
    assert all(identity for identity in inputs.keys.values())  # known by content, hidden or not


def test_every_error_of_the_walk_is_a_row_never_a_traceback(tmp_path):
    """Loops, names that are not UTF-8, a path too long to open, a FIFO: rows with their reasons."""
    src = tmp_path / "in"
    src.mkdir()
    make_video(src / "good.mp4", duration=1, size="64x48", fps=4)
    (src / "a.mp4").symlink_to("b.mp4")
    (src / "b.mp4").symlink_to("a.mp4")
    (src / "self").symlink_to("self")  # a loop with no media name is still a loop
    raw = os.fsencode(src)
    os.mkdir(raw + b"/d\xff")  # a folder whose name is not UTF-8 counts once
    shutil.copy(src / "good.mp4", raw + b"/d\xff/in.mp4")
    shutil.copy(src / "good.mp4", raw + b"/v\xe9\x80.mp4")
    os.mkfifo(src / "pipe.mp4")  # reading it would wait forever
    deep = os.open(src, os.O_RDONLY)
    for _ in range(20):  # 20 x 250 bytes: past the 4096 bytes a path may have
        os.mkdir("d" * 250, dir_fd=deep)
        deep = os.open("d" * 250, os.O_RDONLY, dir_fd=deep)
    os.close(os.open("v.mp4", os.O_CREAT | os.O_WRONLY, dir_fd=deep))
    inputs = survey(str(src))
    assert list(inputs.keys) == ["good.mp4"]
    reasons = dict(inputs.ignored)
    too_long = [entry for entry, reason in inputs.ignored if reason == "name too long"]
    assert len(too_long) == 1 and too_long[0].startswith("d" * 250 + "/") and too_long[0].endswith("/")
    del reasons[too_long[0]]
    assert reasons == {"a.mp4": "symlink loop", "b.mp4": "symlink loop", "self": "symlink loop",
                       "d\\xff/": "undecodable name", "v\\xe9\\x80.mp4": "undecodable name",
                       "pipe.mp4": "special file"}
    json.dumps(inputs.ignored).encode("utf-8")  # every key is valid Unicode: a manifest row can hold it
    single = survey(raw.decode("utf-8", "surrogateescape") + "/v\udce9\udc80.mp4")
    assert (single.keys, single.ignored) == ({}, [("v\\xe9\\x80.mp4", "undecodable name")])


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can read any folder")
def test_an_unreadable_folder_is_one_row_and_an_unreadable_file_an_input(tmp_path):
    src = tmp_path / "in"
    (src / "locked").mkdir(parents=True)
    make_video(src / "locked" / "a.mp4", duration=1, size="64x48", fps=4)
    shutil.copy(src / "locked" / "a.mp4", src / "closed.mp4")
    (src / "closed.mp4").chmod(0)  # an input: reading it fails with "permission denied"
    (src / "locked").chmod(0)
    try:
        inputs = survey(str(src))
    finally:
        (src / "locked").chmod(0o755)
    assert list(inputs.keys) == ["closed.mp4"] and inputs.ignored == [("locked/", "unreadable folder")]


def test_an_input_that_is_not_there_is_a_clear_error(tmp_path):
    with pytest.raises(CotvtmError, match=f"^input {tmp_path / 'missing'}: no such file or folder$"):
        survey(str(tmp_path / "missing"))
    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(CotvtmError, match="cannot be read: symlink loop"):
        survey(str(tmp_path / "loop"))
