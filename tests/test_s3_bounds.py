"""Every S3 call is bounded in time, and a read is of exactly the content it was listed with.

Through a proxy that closes a connection right after a 100 Continue (on which an unguarded
botocore spins forever at 100% CPU), one that trickles answers a byte at a time (which no
per-read timeout ever trips), and one that stalls, on the real S3 server on loopback.
"""

import json
import os
import subprocess
import sys
import threading
import time
from urllib.parse import urlparse

import numpy as np
import pytest
from boto3.s3.transfer import TransferConfig
from faulty_proxy import FaultyProxy, continue_then_close, trickling
from s3server import s3_env, s3_server  # noqa: F401  (pytest fixtures)

from cotvtm.storage import ObjectChanged, open_store
from cotvtm.storage import s3 as s3_module
from cotvtm.storage.errors import DeadlineExceeded, TooSlow

MiB = 1 << 20


@pytest.fixture
def bucket(s3_env):  # noqa: F811
    """A new bucket, its first write done (SeaweedFS takes seconds to grow a new bucket's volumes)."""
    name = s3_env.make_bucket()
    s3_env.client().put_object(Bucket=name, Key="t/there.bin", Body=b"z" * 1000)
    return name


def _proxy(s3_server, fault, **options) -> FaultyProxy:  # noqa: F811
    return FaultyProxy(urlparse(s3_server.endpoint).port, fault=fault, **options).start()


@pytest.fixture
def short_deadlines(monkeypatch):
    """Calls get 3 s, an idle attempt 1 s; moving data must keep 16 KiB/s over every 1.5 s."""
    monkeypatch.setattr(s3_module, "REQUEST_S", 3.0)
    monkeypatch.setattr(s3_module, "IDLE_S", 1.0)
    monkeypatch.setattr(s3_module, "WINDOW_S", 1.5)
    monkeypatch.setattr(s3_module, "MIN_BYTES_PER_S", 16 * 1024)


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name != "s3-deadlines"}


def _cpu_s(pid: int) -> float:
    ticks = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(ticks[11]) + int(ticks[12])) / os.sysconf("SC_CLK_TCK")


def test_an_unguarded_botocore_spins_on_a_connection_closed_after_100_continue(s3_server, s3_env, bucket):
    """The fault is real: once the proxy cut its 100 Continue, a plain boto3 PUT burns a core
    and never returns."""
    proxy = _proxy(s3_server, continue_then_close)
    code = ("import boto3, sys\n"
            "from botocore.config import Config\n"
            "c = boto3.client('s3', endpoint_url=sys.argv[1], config=Config(s3={'addressing_style': 'path'}))\n"
            "c.put_object(Bucket=sys.argv[2], Key='k', Body=b'x' * 1000)\n")
    child = subprocess.Popen([sys.executable, "-c", code, proxy.url, bucket])
    try:
        deadline = time.monotonic() + 20
        while proxy.continues == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        before = _cpu_s(child.pid)
        time.sleep(2)
        spent = _cpu_s(child.pid) - before
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()
        proxy.stop()
    assert proxy.continues == 1 and spent > 0.25, (proxy.continues, spent)  # blocked would be ~0


def test_puts_and_uploads_through_a_connection_closed_after_100_continue_succeed(s3_server, s3_env, bucket,
                                                                                 tmp_path, short_deadlines):
    """No request asks for a 100 Continue, so the proxy never cuts one: a small PUT and a
    two-part upload succeed at once, well within their deadlines."""
    proxy = _proxy(s3_server, continue_then_close)
    big = np.random.default_rng(0).integers(0, 256, 6 * MiB, dtype=np.uint8).tobytes()
    (tmp_path / "big.bin").write_bytes(big)
    store = open_store(f"s3://{bucket}/p", endpoint_url=proxy.url,
                       transfer=TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB))
    start = time.monotonic()
    try:
        store.put_bytes("small.bin", b"x" * 100_000)
        store.upload(tmp_path / "big.bin", "big.bin")
    finally:
        proxy.stop()
    assert time.monotonic() - start < 9.0  # no attempt waited to be cut
    assert (proxy.expects, proxy.continues) == (0, 0)
    direct = open_store(f"s3://{bucket}/p")
    assert direct.get_bytes("small.bin") == b"x" * 100_000 and direct.get_bytes("big.bin") == big
    assert direct.info("big.bin").etag.endswith("-2")  # it really was a multipart upload


def test_a_trickled_answer_fails_within_its_bound_naming_the_key(s3_server, s3_env, bucket, tmp_path,
                                                                 short_deadlines):
    """A byte every half second satisfies every per-read timeout and never leaves a connection
    idle. The PUT, the upload (transfer manager) and the GET move data, so each is abandoned
    once a 1.5 s window brought less than the least rate, naming it; the HEAD moves none, and
    fails at its 3 s deadline. No thread is left behind and none spun while waiting."""
    (tmp_path / "f.bin").write_bytes(b"y" * 1000)
    before = _threads()
    proxy = _proxy(s3_server, trickling, trickle_s=0.5)
    store = open_store(f"s3://{bucket}/t", endpoint_url=proxy.url)
    try:
        for name, call, bound, said in (
                ("row.json", lambda: store.put_bytes("row.json", b"{}"), 1.5, "minimum rate of 16 KiB/s"),
                ("up.bin", lambda: store.upload(tmp_path / "f.bin", "up.bin"), 1.5, "minimum rate of 16 KiB/s"),
                ("there.bin", lambda: store.get_bytes("there.bin"), 1.5, "minimum rate of 16 KiB/s"),
                ("there.bin", lambda: store.info("there.bin"), 3.0, "deadline of 3 s")):
            start, cpu = time.monotonic(), time.process_time()
            with pytest.raises(DeadlineExceeded) as caught:
                call()
            wall, cpu = time.monotonic() - start, time.process_time() - cpu
            assert bound <= wall < bound + 2.0, (name, wall)
            assert cpu < wall / 2, (name, cpu, wall)
            assert isinstance(caught.value, TooSlow) == (bound == 1.5), repr(caught.value)
            message = str(caught.value)
            assert f"s3://{bucket}/t/{name}:" in message and said in message, message
            assert "\n" not in message
    finally:
        proxy.stop()
    assert _threads() - before == set()  # no thread of the calls outlives them


def test_one_stuck_connection_is_cut_and_the_retry_succeeds(s3_server, s3_env, bucket, short_deadlines):
    """Only the first connection stalls (for 20 s): its attempt, idle for 1 s, is cut, botocore
    retries on a fresh connection, and the PUT succeeds within the call's 3 s."""
    proxy = _proxy(s3_server, lambda n: "stall" if n == 1 else "relay", stall_s=20.0)
    start = time.monotonic()
    try:
        open_store(f"s3://{bucket}/o", endpoint_url=proxy.url).put_bytes("row.json", b"{}")
    finally:
        proxy.stop()
    assert 1.0 <= time.monotonic() - start < 3.0
    assert proxy.counts == {"stall": 1, "relay": 1}
    assert open_store(f"s3://{bucket}/o").get_bytes("row.json") == b"{}"


def test_a_read_is_of_the_content_listed_or_fails_as_changed(s3_env, bucket, tmp_path):
    """An object replaced (same size) after it was listed: a download or GET pinned to the
    listed identity raises ObjectChanged and leaves no file; pinned to the new identity it
    reads the new bytes. In a versioned bucket the listed version is read, replaced or not."""
    store = open_store(f"s3://{bucket}/r")
    store.put_bytes("in.mp4", b"a" * 5000)
    old = store.info("in.mp4").identity
    store.put_bytes("in.mp4", b"b" * 5000)
    with pytest.raises(ObjectChanged, match="changed since it was listed"):
        store.download("in.mp4", tmp_path / "in.mp4", identity=old)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ObjectChanged, match="changed since it was listed"):
        store.get_bytes("in.mp4", identity=old)
    [listed] = store.list()
    assert store.download("in.mp4", tmp_path / "in.mp4", identity=listed.identity).read_bytes() == b"b" * 5000

    s3_env.client().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    store.put_bytes("v.mp4", b"1" * 5000)
    first = store.info("v.mp4").identity
    assert ";version:" in first
    store.put_bytes("v.mp4", b"2" * 5000)
    assert store.download("v.mp4", tmp_path / "v.mp4", identity=first).read_bytes() == b"1" * 5000
    assert store.get_bytes("v.mp4", identity=first) == b"1" * 5000


@pytest.mark.slow
def test_bucket_to_bucket_run_through_connections_closed_after_100_continue(s3_server, s3_env, tmp_path,
                                                                             model_cache, ray_session):
    """Every request of the job, its three saved conditioning segments and its outputs
    included, goes through the proxy; the run finishes on the first try with its input ok."""
    from cotvtm.settings import Resources, SoundtrackConfig
    from cotvtm.pipelines.runner import run
    from cotvtm.settings import Access
    from cotvtm.video.samples import make_video

    source, target = s3_server.make_bucket(), s3_server.make_bucket()
    src = open_store(f"s3://{source}/in")
    src.upload(make_video(tmp_path / "a.mp4", duration=21, size="64x48", fps=4), "a.mp4")
    proxy = _proxy(s3_server, continue_then_close)
    try:
        summary = run(Access(source=f"s3://{source}/in", dest=f"s3://{target}/out", endpoint_url=proxy.url,
                            cache_dir=model_cache),
                      SoundtrackConfig(), Resources(segment_windows=1), echo=lambda _: None)
    finally:
        proxy.stop()
    assert (summary.ok, summary.failed) == (1, 0), [o.reason for o in summary.outcomes]
    assert proxy.counts["continue-close"] >= 3 and (proxy.expects, proxy.continues) == (0, 0)
    out = open_store(f"s3://{target}/out")
    rows = [json.loads(line) for line in out.read_lines("manifest.jsonl")]
    assert [(r["key"], r["status"]) for r in rows] == [("a.mp4", "ok")]
    [sidecar] = [o.key for o in out.list() if o.key.startswith("a.") and o.key.endswith(".json")]
    assert json.loads(out.get_bytes(sidecar))["segments"] == 3
