"""Every entry of the input is accounted for: processed, failed, or ignored with its reason."""

import json
import shutil

from cotvtm.config import Resources, SoundtrackConfig
from cotvtm.pipelines.context import Where
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
    expected = {"good.mp4": "ok", "sub/nested.mov": "ok", "broken.mp4": "error",
                ".hidden.mp4": "hidden", ".DS_Store": "hidden", ".cache/": "hidden", ".cotvtm-progress/": "hidden",
                "clip": "no media extension", "notes.txt": "no media extension",
                "folder.mp4/": "directory", "escape.mp4": "refused symlink"}
    return src, expected


def test_every_entry_is_processed_failed_or_ignored_with_its_reason(tmp_path, model_cache, ray_session):
    src, expected = _folder(tmp_path)
    out = tmp_path / "out"
    lines = []
    summary = run(Where(str(src), str(out), cache_dir=model_cache), SoundtrackConfig(), Resources(), echo=lines.append)
    reasons = {"hidden": 4, "no media extension": 2, "directory": 1, "refused symlink": 1}
    assert (summary.ok, summary.failed, summary.ignored_reasons) == (2, 1, reasons)
    assert summary.ok + summary.failed + sum(summary.ignored_reasons.values()) == len(expected)
    assert ("0 skipped, 8 ignored (1 directory, 4 hidden, 2 no media extension, 1 refused symlink)"
            in lines[-1])
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    found = {row["key"]: row["reason"] if row["status"] == "ignored" else row["status"] for row in rows}
    assert found == expected  # one row for every entry, ignored ones with their reason
    assert "report" in lines[-2] and (out / "report.html").exists()  # the report is not thrown by them


def test_include_hidden_processes_dot_files_but_never_a_progress_folder(tmp_path):
    src, _ = _folder(tmp_path)
    inputs = survey(str(src), include_hidden=True)
    assert set(inputs.keys) == {".cache/old.mp4", ".hidden.mp4", "broken.mp4", "good.mp4", "sub/nested.mov"}
    assert dict(inputs.counts()) == {"hidden": 1, "no media extension": 3, "directory": 1, "refused symlink": 1}
    assert (".cotvtm-progress/", "hidden") in inputs.ignored and (".DS_Store", "no media extension") in inputs.ignored
    assert all(identity for identity in inputs.keys.values())  # known by content, hidden or not
