"""Downloads over connections that die every ~1 MB: they resume, they finish on the first run,
byte for byte, fetching little more than the object and holding little memory."""

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from faulty_proxy import FaultyProxy, dying
from s3server import s3_env, s3_server  # noqa: F401  (pytest fixtures)

from cotvtm.storage import open_store, resolve_model_dir

pytestmark = pytest.mark.slow
MiB = 1 << 20
BIG = 40 * MiB
HERE = Path(__file__).parent


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture
def proxy(s3_env, request):  # noqa: F811
    """Connections die after ~1 MiB (or the life a test asks for with ``indirect``)."""
    life = getattr(request, "param", MiB)
    proxy = FaultyProxy(urlparse(s3_env.endpoint).port, fault=dying, life_bytes=life).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def prefix(s3_env):  # noqa: F811
    return f"s3://{s3_env.make_bucket()}/{uuid.uuid4().hex[:8]}"


def _peak_download(uri: str, key: str, dest: Path, endpoint: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(HERE / "peak_download.py"), uri, key, str(dest), endpoint],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_a_large_input_downloads_whole_on_the_first_run_with_bounded_memory(prefix, proxy, tmp_path):
    big = tmp_path / "master.mov"
    big.write_bytes(np.random.default_rng(0).integers(0, 256, BIG, dtype=np.uint8).tobytes())
    store = open_store(prefix)
    store.upload(big, "library/master.mov")
    store.put_bytes("library/tiny.bin", b"x")

    baseline = _peak_download(prefix, "library/tiny.bin", tmp_path / "tiny.bin", proxy.url)
    before, connections = proxy.bytes_down, proxy.counts["dies"]
    got = _peak_download(prefix, "library/master.mov", tmp_path / "back.mov", proxy.url)
    fetched, connections = proxy.bytes_down - before, proxy.counts["dies"] - connections
    growth = got["peak_rss_mib"] - baseline["peak_rss_mib"]
    print(f"40 MiB through connections dying every ~1 MiB: {connections} connections, "
          f"{fetched / BIG:.3f}x the file fetched, peak RSS {got['peak_rss_mib']} MiB "
          f"({growth:+.1f} MiB over a 1-byte download)")
    assert sha256(tmp_path / "back.mov") == sha256(big)
    assert connections >= 30  # the connections really did die along the way
    assert fetched < 1.5 * BIG
    assert growth < 32, got  # a 40 MiB file is never held in memory
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial file left


@pytest.mark.parametrize("proxy", [128 << 10], indirect=True)
def test_a_model_folder_downloads_whole_through_dying_connections(prefix, proxy, tmp_path, tiny_refs):
    """The tiny MusicGen folder is about 1 MiB, so here connections die every ~128 KiB: each of
    its larger files is cut several times on the way."""
    source = Path(tiny_refs.musicgen)
    files = sorted(p for p in source.rglob("*") if p.is_file())
    store = open_store(f"{prefix}/musicgen")
    for path in files:
        store.upload(path, path.relative_to(source).as_posix())
    total = sum(p.stat().st_size for p in files)

    before, connections = proxy.bytes_down, proxy.counts["dies"]
    local = Path(resolve_model_dir(f"{prefix}/musicgen", tmp_path / "cache", endpoint_url=proxy.url))
    fetched, connections = proxy.bytes_down - before, proxy.counts["dies"] - connections
    print(f"model folder of {len(files)} files, {total / MiB:.2f} MiB: {connections} connections, "
          f"{fetched / total:.3f}x fetched (listing included)")
    assert connections >= 5
    for path in files:
        assert sha256(local / path.relative_to(source)) == sha256(path), path.name
    assert fetched < 1.5 * total


def test_a_replaced_object_is_not_mixed_into_a_download(prefix, tmp_path):
    """Every ranged GET must answer with the version the download began with."""
    from cotvtm.storage.errors import StorageError
    from cotvtm.storage.ranged import ReadPolicy

    store = open_store(prefix)
    store.put_bytes("v.bin", b"a" * (3 * MiB))
    small_parts = ReadPolicy(part_bytes=MiB, parallel=1)
    store.reads = small_parts
    original = store.client.get_object
    calls = []

    def replace_after_first(**kwargs):
        answer = original(**kwargs)
        calls.append(kwargs.get("Range"))
        if len(calls) == 1:
            store.put_bytes("v.bin", b"b" * (3 * MiB))
        return answer

    store.client.get_object = replace_after_first
    with pytest.raises(StorageError, match="replaced while it was being read"):
        store.download("v.bin", tmp_path / "v.bin")
    assert not (tmp_path / "v.bin").exists()
