"""An output folder someone has tampered with: the report and the rerun's scan still work.

Bad numbers in sidecars, lines of the manifest that are not rows, stray files under the
progress folder and a plan that does not parse are each passed over with a message, or made
again: never an exception. The folders are made by hand, so these tests need no models and no Ray.
"""

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser

import numpy as np
import pytest
from s3server import s3_env, s3_server  # noqa: F401  (pytest fixtures)

from cotvtm.music.compose import TrackState
from cotvtm.pipelines.progress import PROGRESS_DIR, DamagedProgress, Plan, VideoProgress, scan, video_id
from cotvtm.report.__main__ import main as report_main
from cotvtm.report.collect import collect, latest_rows
from cotvtm.storage import open_store
from cotvtm.video.samples import make_video
from cotvtm.video.types import VideoInfo
from cotvtm.video.windows import plan_windows

DIGEST = "feedc0de01"
INF, NAN = float("inf"), float("nan")


def _row(out, key: str, status: str = "ok", **fields) -> str:
    stem = key.rsplit(".", 1)[0]
    outputs = {"output": out.uri(f"{stem}.{DIGEST}.mp4"), "sidecar": out.uri(f"{stem}.{DIGEST}.json")}
    return json.dumps({"run_id": "run", "time": "2025-01-02T00:00:00Z", "key": key, "status": status,
                       "reason": "", "windows": 1, "duration": 1.0, **(outputs if status == "ok" else {}), **fields})


def _output(out, clip, key: str, sidecar: bytes) -> None:
    stem = key.rsplit(".", 1)[0]
    out.upload(clip, f"{stem}.{DIGEST}.mp4")
    out.put_bytes(f"{stem}.{DIGEST}.json", sidecar)


NUMBERS = {  # a sidecar whose numbers are text, 1e309 (read as infinity), NaN, negative or missing
    "output": "numbers.feedc0de01.mp4", "config_digest": DIGEST,
    "video": {"duration": "2", "width": INF, "height": 36},
    "windows": [{"index": 0, "start": "1e309", "end": INF, "explanations": [{"description": "soft piano",
                                                                               "score": NAN}]},
                {"index": 1, "start": NAN, "end": -3.0}, {"index": 2}, "not a window"],
    "seconds": {"decode": "fast", "embed": 0.5, "prior": -1, "music": NAN, "mux": INF},
    "cuts": ["x", INF, 0.5],
}


@pytest.fixture
def tampered(tmp_path):
    """An output folder: good and damaged sidecars, a manifest with lines that are not rows."""
    out = open_store(tmp_path / "out")
    clip = make_video(tmp_path / "clip.mp4", duration=1, size="64x36", fps=5)
    _output(out, clip, "numbers.mp4", json.dumps(NUMBERS).encode())  # json writes NaN and Infinity
    _output(out, clip, "shapes.mp4", json.dumps({"video": [1, 2], "seconds": [1], "windows": "no", "cuts": 3,
                                                 "models": "x"}).encode())
    _output(out, clip, "garbage.mp4", b"\xff\xfe not json")
    _output(out, clip, "deep.mp4", b"[" * 100_000)  # more nesting than a parser's recursion allows
    lines = [_row(out, "numbers.mp4", duration="1e309"), _row(out, "shapes.mp4", duration=-5),
             _row(out, "garbage.mp4"), _row(out, "deep.mp4"),
             '{"key": "cut off', "[1, 2]", '{"key": 5}', "[" * 100_000, "",
             _row(out, "\udcff.mp4", status="error", reason="decode: bad"),  # JSON-escaped lone surrogate
             _row(out, "huge.mp4", status="error", duration=1e309)]  # json writes Infinity
    for line in lines:
        out.append_line("manifest.jsonl", line)
    with open(out.local_path("manifest.jsonl"), "ab") as handle:
        handle.write(b'{"key": "latin-1 \xe9.mp4", "status": "ok"}\n')  # bytes that are not UTF-8
    progress = out.local_path(PROGRESS_DIR)
    (progress / DIGEST / "not-a-video").mkdir(parents=True)
    (progress / "stray.txt").write_text("x")
    (progress / DIGEST / "stray.bin").write_bytes(b"\0")
    return out


class _Text(HTMLParser):
    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.parts = []
        self.feed(page)

    def handle_data(self, data):
        self.parts.append(data)


def test_report_of_a_tampered_folder_is_made_and_says_what_it_passed_over(tampered, capsys):
    assert report_main([tampered.uri()]) == 0, capsys.readouterr().err
    text = "".join(_Text(tampered.local_path("report.html").read_text(encoding="utf-8")).parts)
    assert "5 unreadable manifest lines ignored (the first is line 5)" in text
    assert "Inputs (6)" in text and "\\udcff.mp4" in text  # a lone surrogate shows as its escape
    assert "0: ?–?" in text and "1: ?–?" in text and "2: ?–?" in text  # no number, no time
    assert "soft piano" in text and not re.search(r"\b(nan|inf|infinity)\b", text, re.IGNORECASE)
    assert "3 shot cuts at ?, ?, 0:00.5" in text
    assert "embed" in text and "0.50 s" in text and "fast" not in text  # only usable stage times
    assert "the sidecar is not JSON" in text and text.count("the sidecar is not JSON") == 2
    assert "no windows recorded" in text  # shapes.mp4: fields of the wrong kind are passed over


def test_the_manifest_is_read_one_line_at_a_time(tampered):
    lines = tampered.read_lines("manifest.jsonl")
    assert isinstance(lines, Iterator)  # a stream, not a list
    first = next(lines)
    assert json.loads(first)["key"] == "numbers.mp4"
    rows, bad, first_bad = latest_rows(lines)  # the rest of the same stream
    assert bad == 5 and first_bad == 4  # counted from where this reader started
    assert "latin-1 \ufffd.mp4" not in rows and not any("latin-1" in key for key in rows)
    assert collect(tampered).bad_lines == 5


def test_a_tampered_manifest_on_s3_streams_and_is_counted(s3_env):  # noqa: F811
    out = open_store(f"s3://{s3_env.make_bucket()}/out")
    for i in range(40):  # more row objects than are fetched ahead
        out.append_line("manifest.jsonl", json.dumps({"key": f"v{i:02d}.mp4", "status": "error", "reason": str(i)}))
    out.put_bytes("manifest.jsonl.rows/99999999999999999999-zz.jsonl", b"\xff{not a row\n")
    lines = out.read_lines("manifest.jsonl")
    assert isinstance(lines, Iterator)
    rows, bad, first_bad = latest_rows(lines)
    assert list(rows) == [f"v{i:02d}.mp4" for i in range(40)] and (bad, first_bad) == (1, 41)


def _plan(key: str) -> Plan:
    return Plan(VideoInfo(key, 30.0, 64, 48, 0, 8.0, "h264", None, False, 1000), plan_windows(30.0), 1, "id")


def test_scan_passes_over_stray_files_and_folders(tmp_path):
    root = open_store(tmp_path / "out").child(PROGRESS_DIR)
    progress = VideoProgress(root, DIGEST, "a.mp4")
    progress.save_plan(_plan("a.mp4"))
    progress.save_conditioning(0, np.ones((1, 4, 8), np.float32), np.ones((1, 4), np.int64),
                               {"explanations": [], "seconds": {"decode": 1.0}})
    progress.save_audio(0, np.zeros(10, np.float32), TrackState(), ["d0"])
    for stray in ("stray.txt", f"{DIGEST}/stray.bin", f"{DIGEST}/not-a-video/plan.json",
                  f"{DIGEST}/{video_id('a.mp4')}/cond-1.json",  # not a name the job writes
                  f"{DIGEST}/{video_id('a.mp4')}/cond-00001.json/inside",  # a folder named like a marker
                  f"{DIGEST}/{video_id('a.mp4')}/state-00002.npz.bak",
                  f"{DIGEST}/{video_id('a.mp4')}/deeper/state-00003.npz"):
        root.put_bytes(stray, b"x")
    found = scan(root, DIGEST)
    assert list(found) == [video_id("a.mp4")]
    done = found[video_id("a.mp4")]
    assert done.plan and done.conditioned == {0} and done.composed == {0}


GOOD = '"duration": 30.0'
DAMAGED_PLANS = {  # what the plan holds instead of GOOD, or instead of the whole plan
    "not JSON": '{"info": ', "not an object": "[1, 2]", "nested too deep": "[" * 100_000,
    "duration 1e309": '"duration": 1e309', "duration NaN": '"duration": NaN', "duration negative": '"duration": -4.0',
    "duration as text": '"duration": "30"', "no duration": '"no_duration": 30.0',
}


@pytest.mark.parametrize("damage", DAMAGED_PLANS)
def test_a_damaged_plan_is_a_clear_error_naming_its_file(tmp_path, damage):
    progress = VideoProgress(open_store(tmp_path / "out").child(PROGRESS_DIR), DIGEST, "a.mp4")
    text = _plan("a.mp4").to_json().decode()
    assert GOOD in text
    instead = DAMAGED_PLANS[damage]
    damaged = text.replace(GOOD, instead) if instead.startswith('"') else instead
    progress.root.put_bytes(progress.prefix + "plan.json", damaged.encode())
    with pytest.raises(DamagedProgress) as caught:
        progress.load_plan()
    assert str(caught.value).startswith(progress.root.uri(progress.prefix + "plan.json") + ": the plan")


def test_plans_with_impossible_windows_and_damaged_segment_records_are_refused(tmp_path):
    progress = VideoProgress(open_store(tmp_path / "out").child(PROGRESS_DIR), DIGEST, "a.mp4")
    raw = json.loads(_plan("a.mp4").to_json())
    for damage in ({"segment_windows": 0}, {"windows": raw["windows"][::-1]}, {"cuts": [float("inf")]},
                   {"windows": [{**raw["windows"][0], "end": -1.0}]}):
        progress.root.put_bytes(progress.prefix + "plan.json", json.dumps({**raw, **damage}).encode())
        with pytest.raises(DamagedProgress):
            progress.load_plan()
    progress.root.put_bytes(progress.prefix + "cond-00000.json", b'{"explanations": [], "seconds": {"decode": NaN}}')
    progress.root.put_bytes(progress.prefix + "music-00000.json", b'{"tokens_digest": "not a list"}')
    with pytest.raises(DamagedProgress, match="cond-00000.json: the segment's record"):
        progress.load_meta(0)
    with pytest.raises(DamagedProgress, match="music-00000.json: the segment's music record"):
        progress.load_digests(0)
