"""--conditioning teacher: each window's frames captioned, the caption described by the CoT teacher
at an OpenAI-compatible endpoint (the project's test server on 127.0.0.1), and that description's
T5 states condition the music; saved work means a rerun asks nothing, a failing endpoint gives
error rows with the reason, a trickling one ends its windows at the request limit, and the
endpoint URL's credentials are used but never recorded."""

import json
import re
import socket
import subprocess
import time
from pathlib import Path

import cotvtm
from cotvtm.video.samples import make_video
from openai_server import FakeOpenAI

WINDOWS = {"one.mp4": 1, "two.mp4": 2}  # 2 s and 3 s videos in windows of 2 s


def _inputs(folder):
    folder.mkdir()
    make_video(folder / "one.mp4", duration=2, size="64x48", fps=4, source="testsrc2")
    make_video(folder / "two.mp4", duration=3, size="64x48", fps=4, source="mandelbrot")
    return folder


def _run(inputs, out, model_cache, url, **more):
    lines = []
    summary = cotvtm.soundtrack(inputs, out, cache_dir=model_cache, echo=lines.append, window_s=2.0, prompt_s=1.0,
                                conditioning="teacher", teacher_model="fake-cot", teacher_url=url, **more)
    return summary, lines


def test_every_window_is_captioned_described_and_a_rerun_asks_nothing(tmp_path, model_cache, ray_session):
    inputs = _inputs(tmp_path / "in")
    with FakeOpenAI() as server:
        summary, lines = _run(inputs, tmp_path / "out", model_cache, server.base_url)
        assert (summary.ok, summary.failed) == (2, 0), lines
        asked = [entry for entry in server.log if entry.status == 200]
        assert len(asked) == sum(WINDOWS.values())  # one CoT answer per window
        assert f"conditioning: the teacher fake-cot at {server.base_url}" in lines[-1]
        for name, count in WINDOWS.items():
            [sidecar] = (tmp_path / "out").glob(f"{name}.*.json")
            said = json.loads(sidecar.read_text())
            assert said["conditioning"].startswith("the teacher fake-cot") and said["note"] is None
            assert len(said["windows"]) == count
            [tags] = said["provenance"]["metadata"].values()  # the output's AI tag names the teacher, no bank
            assert tags["format"]["comment"].endswith("; conditioning teacher fake-cot over captions by retrieval)")
            assert "prior" not in said["models"] and "bank" not in said["models"]  # resolved, never loaded
            assert said["licences"]["teacher"]["id"] == "unknown (not declared)"  # no --teacher-terms given
            for window in said["windows"]:
                [entry] = window["explanations"]
                assert entry["teacher"] == "fake-cot" and entry["caption"] and entry["description"]
                assert entry["caption"] in {e.caption for e in asked}  # what the teacher was asked about
                assert entry["usage"]["prompt_tokens"] > 0 and entry["usage"]["completion_tokens"] > 0

        again, _ = _run(inputs, tmp_path / "out", model_cache, server.base_url)
        assert (again.ok, again.skipped) == (0, 2) and len(server.log) == len(asked)  # no request sent


def test_a_failing_endpoint_gives_error_rows_with_the_reason(tmp_path, model_cache, ray_session):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    summary, lines = _run(_inputs(tmp_path / "in"), tmp_path / "out", model_cache, f"http://127.0.0.1:{port}/v1",
                          teacher_retries=0)
    assert (summary.ok, summary.failed) == (0, 2)
    rows = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    for row in rows:
        assert row["status"] == "error" and "the teacher could not describe window 0" in row["reason"], row
        assert "connection" in row["reason"].lower() and "Traceback" not in row["reason"]
    assert not any("Traceback" in line for line in lines)


TOKEN, KEY = "TOKEN-c41d7e", "QKEY-9a02f6"  # what the teacher URL's user:token@ and ?key= hold


def _ray_logs() -> Path:
    import ray

    return Path(ray._private.worker._global_node.get_logs_dir_path())


def _holding_secrets(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and any(m in p.read_bytes() for m in
                                                                    (TOKEN.encode(), KEY.encode()))]


def test_a_trickling_teacher_ends_its_window_and_the_url_credentials_stay_out(tmp_path, model_cache, ray_session):
    """The first request the server gets is answered a byte at a time (a minute in all): its
    window fails at the 2 s request limit with that reason, the other input is made; the URL's
    user:token and ?key= reach the server and appear in no output, tag, line or Ray log."""
    inputs, out = _inputs(tmp_path / "in"), tmp_path / "out"
    with FakeOpenAI(forced={"trickle": 1}) as server:
        url = server.base_url.replace("http://", f"http://user:{TOKEN}@") + f"?key={KEY}"
        started = time.monotonic()
        summary, lines = _run(inputs, out, model_cache, url, teacher_retries=0, teacher_timeout=2.0)
        took = time.monotonic() - started
        [trickled] = [entry for entry in server.log if "trickle" in entry.tags]
        assert trickled.done_at - trickled.at < 2.0 + 1.5 and took < 300
        assert all(entry.query == f"key={KEY}" for entry in server.log)  # the whole URL was used
    assert (summary.ok, summary.failed) == (1, 1), lines
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    [failed] = [row for row in rows if row["status"] == "error"]
    assert re.fullmatch(r".*the teacher could not describe window \d: timed out after 2 s \(the limit of one "
                        r"whole request\); gave up after 1 attempt", failed["reason"]), failed
    assert not any("Traceback" in line for line in lines)
    assert f"conditioning: the teacher fake-cot at {server.base_url}" in lines[-1]
    [made] = [Path(row["output"]) for row in rows if row["status"] == "ok"]
    tags = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags", "-of", "json",
                                      str(made)], capture_output=True, text=True, check=True).stdout)
    assert "generated by AI" in tags["format"]["tags"]["comment"]
    assert TOKEN not in json.dumps(tags) and KEY not in json.dumps(tags)
    assert not any(TOKEN in line or KEY in line for line in lines)
    assert _holding_secrets(out) == []  # sidecars, manifest, report, saved progress, the outputs themselves
    assert any(_ray_logs().glob("worker-*")) and _holding_secrets(_ray_logs()) == []
