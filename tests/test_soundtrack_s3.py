"""The soundtrack job from a bucket to a bucket on a real S3 server (SeaweedFS on loopback)."""

import json
import subprocess
from pathlib import Path

import pytest
from helpers import read_c2pa, signing_credentials
from s3server import s3_env, s3_server  # noqa: F401  (pytest fixtures)

from cotvtm.settings import Resources, SoundtrackConfig
from cotvtm.pipelines.runner import run
from cotvtm.settings import Access
from cotvtm.storage import open_store
from cotvtm.video.samples import make_video

pytestmark = pytest.mark.slow


def test_bucket_in_bucket_out_and_nothing_outside_the_prefix(s3_server, s3_env, tmp_path, model_cache,
                                                             ray_session):
    source, target = s3_server.make_bucket(), s3_server.make_bucket()
    src = open_store(f"s3://{source}/library")
    for name, seconds in (("a.mp4", 12), ("nested/b c.mov", 3)):
        local = make_video(tmp_path / name.replace("/", "_"), duration=seconds)
        src.upload(local, name)
    src.put_bytes("broken.mp4", b"not a video at all")
    src.put_bytes("notes.txt", b"ignored")
    before_source = sorted(o.key for o in open_store(f"s3://{source}").list())
    keys = open_store(f"s3://{s3_server.make_bucket()}/signing")  # the signing credentials are on S3 too
    signing = signing_credentials(tmp_path)
    keys.upload(Path(signing["cert"]), "chain.pem")
    keys.upload(Path(signing["key"]), "signer.key")
    where = Access(source=f"s3://{source}/library", dest=f"s3://{target}/results/run1", cache_dir=model_cache,
                  sign_cert=keys.uri("chain.pem"), sign_key=keys.uri("signer.key"))

    summary = run(where, SoundtrackConfig(), Resources(), echo=lambda _: None)
    assert (summary.ok, summary.failed, summary.ignored) == (2, 1, 1), [o.reason for o in summary.outcomes]
    assert sorted(o.key for o in open_store(f"s3://{source}").list()) == before_source  # input untouched

    everything = sorted(o.key for o in open_store(f"s3://{target}").list())
    assert everything and all(k.startswith("results/run1/") for k in everything)
    out = open_store(f"s3://{target}/results/run1")
    assert not list(out.child(".cotvtm-progress").list())  # saved progress goes once outputs exist
    rows = [json.loads(line) for line in out.read_lines("manifest.jsonl")]
    assert {r["key"]: r["status"] for r in rows} == {"a.mp4": "ok", "nested/b c.mov": "ok", "broken.mp4": "error",
                                                     "notes.txt": "ignored"}
    [video] = [k for k in (o.key for o in out.list()) if k.startswith("nested/b c.") and k.endswith(".mov")]
    local = out.download(video, tmp_path / "out.mov")
    streams = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(local)],
                                        capture_output=True, text=True, check=True).stdout)["streams"]
    assert sorted(s["codec_type"] for s in streams) == ["audio", "video"]
    sidecar = json.loads(out.get_bytes(video.rsplit(".", 1)[0] + ".json"))
    assert sidecar["input"] == "nested/b c.mov" and sidecar["video"]["path"] == "nested/b c.mov"
    state, manifest, _ = read_c2pa(local, "video/quicktime", signing["root"])  # signed before it was uploaded
    assert state == "Trusted" and "compositeWithTrainedAlgorithmicMedia" in json.dumps(manifest)

    signed = {o.key: o.etag for o in out.list() if o.key.endswith((".mp4", ".mov", ".json"))}  # outputs, sidecars
    again = run(where, SoundtrackConfig(), Resources(), echo=lambda _: None)
    assert (again.ok, again.skipped) == (0, 2)
    assert {o.key: o.etag for o in out.list() if o.key in signed} == signed  # nothing signed or written twice


def test_job_survives_slowdowns_resets_and_stalls(s3_server, s3_env, tmp_path, model_cache, ray_session):
    """Everything goes through a proxy that answers 503 SlowDown, resets and stalls; every output
    object still arrives whole (its stored CRC32 matches the bytes read back directly)."""
    import base64
    import zlib
    from urllib.parse import urlparse

    from faulty_proxy import FaultyProxy

    source, target = s3_server.make_bucket(), s3_server.make_bucket()
    src = open_store(f"s3://{source}/in")
    for i in range(3):
        src.upload(make_video(tmp_path / f"v{i}.mp4", duration=3 + i), f"v{i}.mp4")
    proxy = FaultyProxy(urlparse(s3_server.endpoint).port).start()
    try:
        summary = run(Access(source=f"s3://{source}/in", dest=f"s3://{target}/out", endpoint_url=proxy.url, cache_dir=model_cache),
                      SoundtrackConfig(), Resources(), echo=lambda _: None)
    finally:
        proxy.stop()
    assert summary.ok == 3 and summary.failed == 0, [o.reason for o in summary.outcomes]
    assert min(proxy.counts[f] for f in ("slowdown", "reset", "stall")) >= 1, proxy.counts
    direct = open_store(f"s3://{target}/out")
    outputs = [o.key for o in direct.list() if o.key.endswith(".mp4")]
    assert len(outputs) == 3
    for key in outputs:
        data = direct.get_bytes(key)
        stored = direct.info(key).checksum
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        assert stored == f"crc32:{crc}", (key, stored)
        local = tmp_path / "check.mp4"
        local.write_bytes(data)
        subprocess.run(["ffprobe", "-v", "error", str(local)], check=True)
