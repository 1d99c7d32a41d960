"""`ray job submit` to a 2-node Ray cluster on this machine, exactly as cluster/README.md says.

Runs the README's "Try it on one machine" blocks as written (only PORT and WORK are chosen by
the test): a head and a worker node on 127.0.0.1 (cluster/local_cluster.py), sample inputs, a
short distillation and the soundtrack job with the prior it trained. Then checks that tasks of
both jobs ran on both nodes, that every output is complete, and that the uploaded working
directory was small.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ffprobe

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "cluster" / "README.md"
MAX_UPLOAD_BYTES = 5 << 20


def readme_block(name: str) -> str:
    """The bash block right after the `<!-- test: NAME ... -->` marker."""
    m = re.search(rf"<!-- test: {re.escape(name)}\b[^>]*-->\s*```bash\n(.*?)```", README.read_text(), re.S)
    assert m, f"cluster/README.md has no block marked {name}"
    return m.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_cluster(proc: subprocess.Popen, log: Path, timeout_s: float = 180) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = re.search(r"Ray nodes up on 127\.0\.0\.1 \(session (\S+)\)", log.read_text(errors="replace"))
        if m:
            return m.group(1)
        if proc.poll() is not None:
            pytest.fail(f"the local cluster exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        time.sleep(0.5)
    pytest.fail(f"the local cluster did not come up in {timeout_s} s:\n{log.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM stops every node (local_cluster.py); the process group is the fallback."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group this test started (start_new_session)
    except ProcessLookupError:
        pass


def _value(enum_or_str) -> str:
    return str(getattr(enum_or_str, "value", enum_or_str))


def _state(address: str) -> dict:
    """The cluster's alive nodes, and per submitted job its status and the nodes each of its
    tasks (by name) ran on, from Ray's state API."""
    from ray.util.state import list_jobs, list_nodes, list_tasks

    nodes = sorted(n.node_id for n in list_nodes(address=address) if _value(n.state) == "ALIVE")
    jobs = {}
    for job in list_jobs(address=address):
        module = re.search(r"-m (jobs\.\w+)", job.entrypoint or "")
        if _value(job.type) != "SUBMISSION" or not module:
            continue
        tasks = []
        if job.job_id:
            tasks = list_tasks(address=address, filters=[("job_id", "=", job.job_id)], limit=10000,
                               raise_on_missing_output=False)
        by_name: dict[str, set] = {}
        for task in tasks:
            if task.node_id:
                by_name.setdefault(task.name, set()).add(task.node_id)
        jobs[module.group(1)] = {"status": _value(job.status), "job_id": job.job_id,
                                 "task_nodes": {name: sorted(ids) for name, ids in by_name.items()}}
    return {"nodes": nodes, "jobs": jobs}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("deploy")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(PORT=str(free_port()), WORK=str(work / "try"),
               PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""))
    address = f"http://127.0.0.1:{env['PORT']}"
    log = work / "cluster.log"
    started = time.monotonic()
    with open(log, "w") as out:
        cluster = subprocess.Popen(["bash", "-c", readme_block("local-cluster")], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        session = _wait_for_cluster(cluster, log)
        up = time.monotonic() - started
        jobs = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_block("local-jobs")], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
        output = jobs.stdout
        (work / "jobs.log").write_text(output)
        assert jobs.returncode == 0, output[-8000:]
        state = _state(address)
    finally:
        _stop(cluster)
    print(f"cluster up in {up:.0f} s, whole run {time.monotonic() - started:.0f} s")
    return {"work": Path(env["WORK"]), "output": output, "session": Path(session), "state": state}


def test_cluster_has_two_nodes_and_both_jobs_succeeded(run):
    assert len(run["state"]["nodes"]) == 2
    assert {m: j["status"] for m, j in run["state"]["jobs"].items()} == {
        "jobs.distill": "SUCCEEDED", "jobs.soundtrack": "SUCCEEDED"}, run["state"]["jobs"]


def test_distillation_workers_ran_on_both_nodes(run):
    record = json.loads((run["work"] / "distilled" / "prior" / "training.json").read_text())
    assert sorted(record["final_metrics"]["nodes"]) == run["state"]["nodes"]
    tasks = run["state"]["jobs"]["jobs.distill"]["task_nodes"]
    train_nodes = {n for name, nodes in tasks.items() if name.startswith("RayTrainWorker.") for n in nodes}
    assert sorted(train_nodes) == run["state"]["nodes"]


def test_soundtrack_tasks_ran_on_both_nodes(run):
    tasks = run["state"]["jobs"]["jobs.soundtrack"]["task_nodes"]
    stage_nodes = {n for name, nodes in tasks.items() if name.startswith("MapWorker(MapBatches(") for n in nodes}
    assert sorted(stage_nodes) == run["state"]["nodes"], tasks


def test_soundtrack_outputs_are_complete(run):
    videos = sorted((run["work"] / "videos").glob("*.mp4"))
    rows = [json.loads(line) for line in (run["work"] / "soundtracked" / "manifest.jsonl").read_text().splitlines()]
    assert len(videos) == 2 and sorted(r["status"] for r in rows) == ["ok", "ok"], rows
    for row in rows:
        source = ffprobe(run["work"] / "videos" / row["key"])
        result = ffprobe(Path(row["output"]))
        (src_video,) = [s for s in source["streams"] if s["codec_type"] == "video"]
        (video,) = [s for s in result["streams"] if s["codec_type"] == "video"]
        (audio,) = [s for s in result["streams"] if s["codec_type"] == "audio"]
        # The video stream is copied (same codec, same frames) and the music lasts as long.
        assert (video["codec_name"], video["nb_read_packets"]) == (src_video["codec_name"], src_video["nb_read_packets"])
        assert abs(float(audio["duration"]) - float(source["format"]["duration"])) < 0.1
        sidecar = json.loads(Path(row["sidecar"]).read_text())
        assert sidecar["prior_trained"] is True
        assert Path(sidecar["models"]["prior"]).resolve() == (run["work"] / "distilled" / "prior").resolve()


def test_working_dir_upload_is_small_and_leaves_local_state_behind(run):
    packages = set(re.findall(r"Uploading package gcs://(_ray_pkg_\w+)\.zip", run["output"]))
    assert packages, "no working-dir upload was logged"
    for package in packages:
        # The head's copy (each node of the local cluster unpacks into its own folder).
        unpacked = run["session"] / "runtime_resources" / "working_dir_files" / package
        assert unpacked.is_dir(), unpacked
        files = [p for p in unpacked.rglob("*") if p.is_file()]
        names = {p.relative_to(unpacked).parts[0] for p in files}
        assert {"cotvtm", "jobs", "pyproject.toml"} <= names
        assert not names & {".venv", ".git", "tests", "bench", "docs", "demo_out", "cotvtm.egg-info"}, names
        assert sum(p.stat().st_size for p in files) < MAX_UPLOAD_BYTES
