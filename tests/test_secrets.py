"""No secret leaves the machine's own environment: not into Ray's logs, its state API, job
info, or any output.

Marker values stand in for the AWS secret key, the AWS session token and the teacher's API key.
Two runs, each as a user makes it:

- local: ``python -m jobs.soundtrack`` and ``python -m jobs.build_dataset`` with their own
  local Ray (its folder under a temporary RAY_TMPDIR), the markers in the driver's environment;
- cluster: a Ray cluster (cluster/local_cluster.py) whose nodes hold the markers in their
  environment, as a Kubernetes Secret would put them there; the soundtrack job bucket to
  bucket on the S3 server and the labelling job, both through ``ray job submit``. Then the
  state API (``ray list actors --detail``) and job info are read while the cluster still runs.

The S3 server accepts the marker secret (a second identity), so the S3 work is real. It cannot
accept a session token (SeaweedFS then expects one of its own STS tokens), so the session token
marker is in the local run only, where S3 is not used.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from helpers import certbot_layout, signing_credentials
from openai_server import FakeOpenAI
from s3server import MARKER_ACCESS_KEY, MARKER_SECRET, s3_env, s3_server  # noqa: F401  (pytest fixtures)

from cotvtm.storage import open_store
from cotvtm.video.samples import make_video

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
TOKEN = "TOKEN-MARKER-" + uuid.uuid4().hex
API_KEY = "APIKEY-MARKER-" + uuid.uuid4().hex
KEY_ENV = "COTVTM_TEACHER_KEY"


def _clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RAY_ADDRESS"))}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return {**env, **extra}


def _leaks(root: Path, markers: list[str]) -> list[str]:
    """Every file under ``root`` that holds a marker (sockets and the like are skipped)."""
    found = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                found += [f"{path}: {m[:12]}..." for m in markers if m.encode() in data]
        except OSError:
            continue
    return found


def _in_text(text: str, markers: list[str]) -> list[str]:
    return [m[:12] for m in markers if m in text]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("secrets")
    (root / "videos").mkdir()
    make_video(root / "videos" / "clip.mp4", duration=3, size="64x48", fps=4)
    captions = root / "captions.jsonl"
    captions.write_text("".join(json.dumps({"id": f"c{i}", "caption": text}) + "\n"
                                for i, text in enumerate(["A red balloon over a park.", "Rain on a window."])))
    return root


@pytest.fixture(scope="module")
def teacher():
    with FakeOpenAI() as server:
        yield server


def _run(args: list[str], env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_a_local_run_leaves_no_secret_anywhere(inputs, teacher, tmp_path, model_cache):
    """The outputs are signed too: the signing key's lines are secrets like the others, and the
    signed output's sidecar says who signed it."""
    signing = signing_credentials(tmp_path)
    cert, key = certbot_layout(signing, tmp_path / "letsencrypt")  # links out of their folder: followed
    key_lines = [line for line in signing["key_pem"].decode().splitlines() if not line.startswith("-----")]
    markers = [MARKER_SECRET, TOKEN, API_KEY, *key_lines]
    ray_tmp = Path(tempfile.mkdtemp(prefix="cr-", dir="/tmp"))  # short: Ray's socket paths have a limit
    env = _clean_env(AWS_ACCESS_KEY_ID=MARKER_ACCESS_KEY, AWS_SECRET_ACCESS_KEY=MARKER_SECRET,
                     AWS_SESSION_TOKEN=TOKEN, **{KEY_ENV: API_KEY}, RAY_TMPDIR=str(ray_tmp),
                     PYTHONUNBUFFERED="1")
    try:
        out, labels = tmp_path / "out", tmp_path / "labels"
        sound = _run([sys.executable, "-m", "jobs.soundtrack", str(inputs / "videos"), str(out),
                      "--cache-dir", str(model_cache), "--sign-cert", cert, "--sign-key", key],
                     env)
        label = _run([sys.executable, "-m", "jobs.build_dataset", str(inputs / "captions.jsonl"), "--out",
                      str(labels), "--teacher-url", teacher.base_url, "--teacher-model", "fake-model",
                      "--teacher-key-env", KEY_ENV], env)
        assert any(e.headers.get("Authorization") == f"Bearer {API_KEY}" for e in teacher.log)  # it was used
        assert list(out.glob("clip.*.mp4")) and list(labels.rglob("*.jsonl"))
        [sidecar] = [json.loads(p.read_text()) for p in out.glob("clip.*.json")]
        assert "cotvtm test signer" in sidecar["provenance"]["c2pa"]["signer"], sidecar["provenance"]
        assert list(ray_tmp.glob("ray/session_*/logs/*")), "Ray's session folder is not where expected"
        assert _leaks(ray_tmp, markers) == []
        assert _leaks(out, markers) == [] and _leaks(labels, markers) == []
        assert _in_text(sound.stdout + sound.stderr + label.stdout + label.stderr, markers) == []
    finally:
        subprocess.run(["rm", "-rf", str(ray_tmp)], check=False)


@pytest.fixture(scope="module")
def cluster(s3_server, teacher, tmp_path_factory):  # noqa: F811
    """A 1-node job-submission cluster whose node holds the marker credentials."""
    work = tmp_path_factory.mktemp("cluster")
    ready = work / "ready.json"
    env = _clean_env(AWS_ACCESS_KEY_ID=MARKER_ACCESS_KEY, AWS_SECRET_ACCESS_KEY=MARKER_SECRET,
                     AWS_DEFAULT_REGION=s3_server.region, **{KEY_ENV: API_KEY})
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "cluster/local_cluster.py", "--dashboard-port", str(port), "--workers",
                             "0", "--ready-file", str(ready)], cwd=ROOT, env=env, stdout=open(work / "log", "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, (work / "log").read_text()[-3000:]
            time.sleep(0.5)
        yield {**json.loads(ready.read_text()), "env": _clean_env(), "work": work}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _submit(cluster: dict, *entrypoint: str) -> str:
    done = _run(["ray", "job", "submit", "--address", cluster["address"], "--working-dir", ".", "--runtime-env",
                 "cluster/runtime_env.local.yaml", "--", *entrypoint], cluster["env"], timeout=900)
    return done.stdout + done.stderr


def test_a_cluster_job_leaves_no_secret_in_ray_state_logs_or_outputs(cluster, s3_server, s3_env, inputs,  # noqa: F811
                                                                    teacher, model_cache):
    markers = [MARKER_SECRET, API_KEY]
    source, target = s3_server.make_bucket(), s3_server.make_bucket()
    s3_server.client().upload_file(str(inputs / "videos" / "clip.mp4"), source, "in/clip.mp4")
    labels = cluster["work"] / "labels"
    logs = _submit(cluster, "python", "-m", "jobs.soundtrack", f"s3://{source}/in", f"s3://{target}/out",
                   "--endpoint-url", s3_server.endpoint, "--cache-dir", str(model_cache))
    logs += _submit(cluster, "python", "-m", "jobs.build_dataset", str(inputs / "captions.jsonl"), "--out",
                    str(labels), "--teacher-url", teacher.base_url, "--teacher-model", "fake-model",
                    "--teacher-key-env", KEY_ENV)
    assert any(e.headers.get("Authorization") == f"Bearer {API_KEY}" for e in teacher.log)
    state = _run(["ray", "list", "actors", "--detail", "--limit", "1000", "--address", cluster["address"]],
                 cluster["env"]).stdout
    jobs = _run(["ray", "job", "list", "--address", cluster["address"]], cluster["env"]).stdout
    assert "MapBatches(Music)" in state and "LLMLabel" in state  # the listing shows the jobs' actors
    assert re.search(r"jobs\.soundtrack", jobs) and "SUCCEEDED" in jobs

    out = open_store(f"s3://{target}/out", endpoint_url=s3_server.endpoint)
    bodies = {key: out.get_bytes(key) for key in (o.key for o in out.list())}
    assert any(k.endswith(".mp4") for k in bodies) and "report.html" in bodies
    leaked = [k for k, body in bodies.items() for m in markers if m.encode() in body]
    assert leaked == []
    assert _in_text(logs + state + jobs, markers) == []
    assert _leaks(Path(cluster["session_dir"]), markers) == []
    assert _leaks(labels, markers) == []
