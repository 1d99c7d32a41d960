"""End to end: the dataset job on Ray, offline and against the local server; resume; CLI errors."""

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from cotvtm.teacher import read_labels
from cotvtm.teacher.build import build_labels
from cotvtm.teacher.offline import MODEL
from cotvtm.commands import label
from cotvtm.commands.label import LabelEndpoint
from cotvtm.errors import guarded
from cotvtm.options import given, parser
from cotvtm.teacher.settings import BuildConfig, EndpointConfig, build_config
from cotvtm.teacher.records import shards
from cotvtm.video.samples import make_video
from openai_server import FakeOpenAI
from helpers import write_jsonl

pytestmark = pytest.mark.slow

FLAKY = {  # caption -> the failure reason it must end with, or None for a label
    "A calm lake at dawn.": None,
    "#429 A crowded night market.": None,
    "#500 A skyline at sunset.": None,
    "#slow A forest in fog.": None,
    "#badjson-once A dog running on a beach.": None,
    "#fenced A candle in a dark room.": None,
    "#500-always A storm at sea.": "server error (HTTP 500)",
    "#slow-always A desert road.": "timed out after 0.5 s",
    "#badjson A cat on a sofa.": "invalid JSON",
    "#missing A wedding dance.": "JSON missing fields: music elements.rhythm",
    "#length A snowy mountain.": "finish_reason=length",
}


def job(args: list[str], ray_address: str) -> subprocess.CompletedProcess:
    """The job as `ray job submit` runs it: a subprocess that joins the running Ray."""
    env = dict(os.environ, RAY_ADDRESS=ray_address, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "jobs.build_dataset", *args], capture_output=True, text=True,
                          env=env, timeout=300, cwd=Path(__file__).parents[1])


@pytest.fixture(scope="module")
def server():
    with FakeOpenAI(slow_s=1.5) as srv:
        yield srv


def test_offline_job(ray_session, tmp_path):
    manifest = write_jsonl(tmp_path / "captions.jsonl", [
        {"id": "b", "caption": "A colorful hot air balloon floats over green hills at sunrise.", "image": "b.jpg"},
        {"id": "c", "caption": "Two police cars chase a motorbike through a dark street."},
    ])
    (tmp_path / "more.csv").write_text("id,caption,video\nv1,A crowd dancing at a concert.,clips/v1.mp4\n")
    proc = job([str(manifest), str(tmp_path / "more.csv"), "--scenes", "12", "--seed", "3",
                "--out", str(tmp_path / "out"), "--shard-size", "5"], ray_session)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "cotvtm label: 15 labelled, 0 failed, 0 already labelled; offline rules, no LLM requests" in proc.stdout
    out = tmp_path / "out" / f"labels-cot-paper-v1-{MODEL}"
    assert [p.name for p in shards(out)] == ["part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl"]
    records = {r.id: r for r in read_labels(out)}
    assert len(records) == 15 and all(r.teacher == "offline-rules" and r.x_mt and r.x_rt for r in records.values())
    assert records["b"].media == str(tmp_path / "b.jpg") and records["v1"].media == str(tmp_path / "clips/v1.mp4")
    assert records["v1"].source == "more.csv"
    scenes = [r for r in records.values() if r.id.startswith("scene-b2-3-")]
    assert len(scenes) == 12 and all(r.source == "scenes(seed=3, writer=template)" for r in scenes)


def test_job_against_the_server_then_resume(ray_session, server, tmp_path):
    rows = [{"id": f"f{i}", "caption": caption} for i, caption in enumerate(FLAKY)]
    rows += [{"id": f"p{i}", "caption": f"{'#v1 ' if i % 2 else ''}A quiet street number {i}."} for i in range(20)]
    manifest = write_jsonl(tmp_path / "captions.jsonl", rows)
    out = tmp_path / "out"
    args = [str(manifest), "--out", str(out), "--teacher-url", server.base_url, "--teacher-model", "fake-model",
            "--teacher-timeout", "0.5", "--teacher-retries", "2", "--teacher-backoff", "0.01",
            "--teacher-repair-attempts", "1", "--teacher-concurrency", "6", "--teacher-price-in", "2.5",
            "--teacher-price-out", "10"]
    proc = job(args, ray_session)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # finished; some captions failed
    assert "Traceback" not in proc.stdout + proc.stderr
    assert server.max_in_flight <= 6
    labels = out / "labels-cot-paper-v1-fake-model"
    records = {r.id: r for r in read_labels(labels, status=None)}
    assert set(records) == {row["id"] for row in rows}
    formats = {records[f"p{i}"].answer_format for i in range(0, 20, 2)}, {records[f"p{i}"].answer_format
                                                                          for i in range(1, 20, 2)}
    assert formats == ({"paper"}, {"cot-v1"})  # both answer formats in one run, every one labelled
    for i in range(20):
        record = records[f"p{i}"]
        assert record.x_mt.startswith("Gentle ambient piano and strings for: ") and "Visual elements: " in record.x_rt
    for row in rows:
        record, expected = records[row["id"]], FLAKY.get(row["caption"])
        if expected is None:
            assert record.status == "ok" and record.teacher == "openai" and record.model == "fake-model"
        else:
            assert record.status == "failed" and expected in record.reason, record.reason
    sent = len(server.log)
    assert f"cotvtm label: 26 labelled, 5 failed, 0 already labelled; {sent} requests" in proc.stdout
    assert "est. cost $" in proc.stdout

    # a rerun sends nothing: every caption has a record (ok, or failed and not asked to retry)
    server.reset()
    cfg = config(args)
    summary = build_labels(cfg, echo=lambda line: None)
    assert len(server.log) == 0
    assert (summary.skipped_ok, summary.skipped_failed, summary.exit_code) == (26, 5, 1)

    # a new caption in the manifest: only it is sent
    write_jsonl(manifest, rows + [{"id": "new", "caption": "A new caption."}])
    summary = build_labels(cfg, echo=lambda line: None)
    assert [e.caption for e in server.log] == ["A new caption."] and summary.ok == 1

    # --retry-failed sends exactly the failed ones again
    server.reset()
    summary = build_labels(replace(cfg, retry_failed=True), echo=lambda line: None)
    assert {e.caption for e in server.log} == {c for c, reason in FLAKY.items() if reason}
    assert summary.failed == 5 and summary.skipped_ok == 27
    assert len(list(read_labels(labels, status=None))) == 32  # still one (latest) record per id


def test_no_cot_labels_go_to_their_own_directory(ray_session, server, tmp_path):
    manifest = write_jsonl(tmp_path / "m.jsonl", [{"id": "a", "caption": "A kite over a field."}])
    endpoint = EndpointConfig(teacher_model="fake-model", teacher_url=server.base_url, teacher_timeout=2,
                              teacher_backoff=0.01)
    summary = build_labels(BuildConfig(out=str(tmp_path), manifests=(str(manifest),), endpoint=endpoint, cot=False),
                           echo=lambda line: None)
    assert summary.ok == 1 and summary.labels_dir.endswith("labels-direct-v1-fake-model")
    [record] = read_labels(summary.labels_dir)
    assert record.x_mt == "Gentle ambient music for: A kite over a field." and record.x_rt == ""


def _parse(argv: list[str]):
    top = parser("cotvtm", "test")
    label.register(top.add_subparsers(dest="command"))
    return top.parse_args(["label", *argv])


def config(argv: list[str]) -> BuildConfig:
    """The build ``cotvtm label ARGV`` asks for, as its command makes it."""
    return build_config(**given(_parse(argv), BuildConfig, LabelEndpoint))


def test_label_subcommand_hook():
    args = _parse(["a.jsonl", "--out", "out", "--scenes", "4", "--teacher-concurrency", "8", "--teacher-rpm", "100"])
    assert args.command == "label" and args.func.__name__ == "_label"
    cfg = config(["a.jsonl", "--out", "out", "--teacher-model", "gpt-4o", "--teacher-rpm", "100", "--no-cot"])
    assert cfg.endpoint.teacher_model == "gpt-4o" and cfg.endpoint.teacher_rpm == 100 and cfg.cot is False
    assert cfg.endpoint.url == "https://api.openai.com/v1" and cfg.writer() == "llm"
    assert config(["a.jsonl", "--out", "out"]).endpoint is None
    default, older = (config(["a.jsonl", "--out", "out", *extra]) for extra in ([], ["--prompt", "cot-v1"]))
    assert (default.prompt, older.prompt) == ("cot-paper-v1", "cot-v1")
    vision = config(["a.jsonl", "--out", "out", "--teacher-model", "gpt-4o", "--captioner-model", "gpt-4o-mini"])
    endpoint = vision.captioner_endpoint()
    assert (endpoint.teacher_model, endpoint.url, endpoint.teacher_json_mode) == ("gpt-4o-mini",
                                                                                  "https://api.openai.com/v1", False)
    assert vision.captioner.source == "vision:gpt-4o-mini" and default.captioner_endpoint() is None


def test_earlier_flags_still_work_and_say_they_were_renamed():
    old = ["a.jsonl", "-o", "out", "--base-url", "http://h/v1", "--model", "m", "--api-key-env", "K", "--temperature",
           "0.2", "--no-json-mode", "--max-retries", "1", "--timeout", "5", "--concurrency", "3", "--rpm", "60",
           "--captioner-base-url", "http://v/v1", "--captioner-model", "v"]
    with pytest.warns(FutureWarning) as said:
        cfg = config(old)
    assert {str(w.message).split(" is renamed")[0] for w in said} == {a for a in old if a.startswith("-")} - {
        "--captioner-model", "-o"}  # -o is --out's short spelling, not an earlier name
    assert "--base-url is renamed --teacher-url; the old name will be removed in the next release" in map(str, [
        w.message for w in said])
    assert cfg.out == "out" and cfg.captioner_endpoint().teacher_url == "http://v/v1"
    assert cfg.endpoint == EndpointConfig(teacher_url="http://h/v1", teacher_model="m", teacher_key_env="K",
                                          teacher_temperature=0.2, teacher_json_mode=False, teacher_retries=1,
                                          teacher_timeout=5.0, teacher_concurrency=3, teacher_rpm=60.0)
    with pytest.warns(FutureWarning, match="model is renamed teacher_model"):
        assert build_config("out", scenes=1, model="m").endpoint.teacher_model == "m"


def test_cot_v1_labels_stay_in_their_own_folder_in_their_own_format(ray_session, tmp_path):
    manifest = write_jsonl(tmp_path / "m.jsonl", [{"id": "a", "caption": "A kite over a field."}])
    summary = build_labels(BuildConfig(out=str(tmp_path), manifests=(str(manifest),), prompt="cot-v1"),
                           echo=lambda _: None)
    assert summary.ok == 1 and summary.labels_dir.endswith(f"labels-cot-v1-{MODEL}")
    [record] = read_labels(summary.labels_dir)
    assert record.answer_format == "cot-v1" and "step1" in record.raw and record.prompt_version == "cot-v1"


@pytest.mark.parametrize("argv, message", [
    (["missing.jsonl", "--out", "OUT"], "missing.jsonl: manifest not found"),
    (["--out", "OUT"], "nothing to label: give caption manifests and/or --scenes N"),
    (["--scenes", "3"], "--out is required"),
    (["--scenes", "3", "--out", "OUT", "--teacher-url", "http://127.0.0.1:9/v1"],
     "--teacher-url needs --teacher-model"),
    (["--scenes", "3", "--out", "OUT", "--teacher-model", "m", "--teacher-url", "ftp://u:SECRET@x"],
     "--teacher-url must be an http(s) URL, not 'ftp://x'"),
    (["--scenes", "3", "--out", "OUT", "--scene-writer", "llm"], "--scene-writer llm needs an endpoint"),
    (["--scenes", "3", "--out", "OUT", "--teacher-model", "m", "--teacher-url", "http://h/v1",
      "--teacher-concurrency", "0"], "--teacher-concurrency must be at least 1"),
])
def test_usage_errors_are_one_line(tmp_path, capsys, argv, message):
    args = _parse([a.replace("OUT", str(tmp_path / "out")) for a in argv])
    assert guarded(lambda: args.func(args)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err and "SECRET" not in err


def _media(folder: Path) -> None:
    folder.mkdir()
    for name, source in (("kite.png", "testsrc2"), ("rain.jpg", "mandelbrot")):
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"{source}=size=96x64", "-frames:v", "1",
                        str(folder / name)], check=True)
    make_video(folder / "street.mp4", duration=25, size="64x48", fps=4)  # three windows: three frames


MIXED = [
    {"id": "cap", "caption": "A kite over a field.", "image": "media/kite.png"},
    {"id": "img", "image": "media/kite.png"},
    {"id": "emo", "image": "media/rain.jpg", "emotion": "sad"},
    {"id": "vid", "video": "media/street.mp4"},
    {"id": "gone", "image": "media/missing.png"},
]


def test_media_without_captions_are_captioned_then_labelled(ray_session, server, tmp_path, model_cache):
    """A manifest mixing a captioned row, uncaptioned images (with and without an emotion) and an
    uncaptioned video: the vision endpoint captions them (image_url parts: one per image, one
    per window of the video), the teacher labels them; the tiny BLIP does the same offline; a
    rerun sends nothing. ``--recipe`` counts the paper's parts of that manifest."""
    _media(tmp_path / "media")
    manifest = write_jsonl(tmp_path / "m.jsonl", MIXED)
    server.reset()
    out = tmp_path / "out"
    args = [str(manifest), "--out", str(out), "--teacher-url", server.base_url, "--teacher-model", "fake-model",
            "--captioner-model", "fake-vision", "--teacher-timeout", "5", "--teacher-backoff", "0.01"]
    proc = job(args, ray_session)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # "gone" failed; the rest labelled
    assert "4 of them have media and no caption: captioned first by vision:fake-vision" in proc.stdout
    captions = [e for e in server.log if e.kind == "caption"]
    assert sorted(e.images for e in captions) == [1, 1, 3]
    assert all(e.body["model"] == "fake-vision" for e in captions)
    records = {r.id: r for r in read_labels(out / "labels-cot-paper-v1-fake-model", status=None)}
    assert {k: r.caption_source for k, r in records.items()} == {
        "cap": "manifest", "img": "vision:fake-vision", "emo": "vision:fake-vision", "vid": "vision:fake-vision",
        "gone": "vision:fake-vision"}
    assert records["emo"].caption.startswith("A sad scene") and "3 picture(s)" in records["vid"].caption
    assert records["img"].caption.startswith("A scene seen in 1 picture(s)")
    for key in ("cap", "img", "emo", "vid"):
        assert records[key].status == "ok" and records[key].x_mt.endswith(records[key].caption)
    assert records["gone"].status == "failed" and "missing.png: cannot be captioned" in records["gone"].reason
    labelled = [e.caption for e in server.log if e.kind == "cot"]
    assert sorted(labelled) == sorted(records[k].caption for k in ("cap", "img", "emo", "vid"))

    server.reset()
    again = job(args, ray_session)
    assert again.returncode == 1 and len(server.log) == 0  # no caption and no label request again

    offline = tmp_path / "offline"
    local = [str(manifest), "--out", str(offline), "--captioner-local", "tiny", "--cache-dir", str(model_cache)]
    proc = job(local, ray_session)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    records = {r.id: r for r in read_labels(offline / f"labels-cot-paper-v1-{MODEL}", status=None)}
    for key in ("img", "emo", "vid"):
        assert records[key].status == "ok" and records[key].caption_source == "local:tiny" and records[key].caption
    assert records["emo"].caption.startswith("a sad")  # the emotion, as BLIP's text prefix
    assert "0 to label" in job(local, ray_session).stdout

    recipe = job(local + ["--recipe", "--scenes", "2"], ray_session)
    assert recipe.returncode == 0, recipe.stdout + recipe.stderr
    rows = {line[:26].strip(): line[26:].split() for line in recipe.stdout.splitlines()[2:]}
    assert rows["text-image pairs"] == ["3", "2", "1", "10,000"]  # one file is missing: still uncaptioned
    assert rows["text-video pairs"] == ["1", "1", "0", "10,000"]
    assert rows["emotion-annotated images"] == ["1", "1", "0", "11,000"]
    assert rows["generated scenes"] == ["2", "0", "0", "10,000"]
