"""--conditioning teacher: each window's frames captioned, the caption described by the CoT teacher
at an OpenAI-compatible endpoint (the project's test server on 127.0.0.1), and that description's
T5 states condition the music; saved work means a rerun asks nothing, and a failing endpoint
gives error rows with the reason."""

import json
import socket

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
