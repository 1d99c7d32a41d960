"""Storage: a local folder and a real S3 server (SeaweedFS on 127.0.0.1) behave the same."""

import base64
import os
import pickle
import subprocess
import sys
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig
from s3server import s3_env, s3_server  # noqa: F401  (pytest fixtures)

from cotvtm.storage import ObjectNotFound, ObjectTooLarge, StorageError, open_store, resolve_model_dir
from cotvtm.storage.local import LocalStore
from cotvtm.storage.s3 import S3Store

MiB = 1 << 20
HOSTILE = "sub dir/ünï cødé $(touch x); 'q' \"d\" -x.mp4"


@pytest.fixture(scope="session")
def bucket(s3_server):  # noqa: F811
    return s3_server.make_bucket()


@pytest.fixture
def s3_uri(s3_env, bucket):  # noqa: F811
    """A fresh prefix per test in the session's bucket."""
    return f"s3://{bucket}/t-{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return open_store(tmp_path / "root")
    return open_store(request.getfixturevalue("s3_uri"))


def keys(store, *args, **kwargs) -> list[str]:
    """Listed keys, sorted: AWS S3 and local folders list in key order, SeaweedFS folder by folder."""
    return sorted(info.key for info in store.list(*args, **kwargs))


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


# -- the same behaviour on both backends ---------------------------------------------------


def test_put_get_exists_info(store):
    assert not store.exists("a/b.json")
    store.put_bytes("a/b.json", b"first")
    store.put_bytes("a/b.json", b"second version")
    assert store.exists("a/b.json") and not store.exists("a/b")
    assert store.get_bytes("a/b.json") == b"second version"
    assert store.info("a/b.json").size == len(b"second version")
    with pytest.raises(ObjectNotFound, match="no such object|file not found") as err:
        store.get_bytes("a/missing.json")
    assert store.uri("a/missing.json") in str(err.value)


def test_list_order_prefix_extensions_hidden(store):
    names = ["b/c.mp4", "a-c.MP4", "a/b.mp4", "a/z/deep.mov", "notes.txt", HOSTILE,
             ".hidden/x.mp4", "a/.partial.mp4"]
    for name in names:
        store.put_bytes(name, name.encode())
    visible = sorted(n for n in names if "/." not in f"/{n}")
    assert keys(store) == visible
    assert keys(store, extensions=(".mp4", ".mov")) == [n for n in visible if not n.endswith(".txt")]
    assert keys(store, "a/") == ["a/b.mp4", "a/z/deep.mov"]
    assert keys(store, "a") == ["a-c.MP4", "a/b.mp4", "a/z/deep.mov"]
    assert keys(store, "nothing/") == []
    assert [i.size for i in store.list("b/")] == [len(b"b/c.mp4")]
    if isinstance(store, LocalStore):
        assert [i.key for i in store.list()] == visible


def test_hidden_child_store_and_prefix_delete(store):
    """Saved progress lives in a hidden child store: invisible to the parent's listing, listed
    by the child, and removed a folder at a time."""
    child = store.child(".work")
    for name in ("v1/a.json", "v1/b.npz", "v2/a.json"):
        child.put_bytes(name, name.encode())
    store.put_bytes("out.mp4", b"output")
    assert keys(store) == ["out.mp4"]
    assert keys(child) == ["v1/a.json", "v1/b.npz", "v2/a.json"]
    assert store.get_bytes(".work/v1/b.npz") == b"v1/b.npz"
    child.delete_prefix("v1/")
    assert keys(child) == ["v2/a.json"] and keys(store) == ["out.mp4"]
    child.delete_prefix("never-written/")  # nothing there is not an error


def test_upload_download_round_trip(store, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(300_000))
    store.upload(src, HOSTILE)
    out = store.download(HOSTILE, tmp_path / "scratch" / "deep" / "copy.bin")
    assert out.read_bytes() == src.read_bytes()
    assert store.info(HOSTILE).size == 300_000
    with pytest.raises(ObjectNotFound):
        store.download("absent.mp4", tmp_path / "scratch" / "absent.mp4")
    assert not (tmp_path / "scratch" / "absent.mp4").exists()


def test_download_size_limit_names_the_uri(store, tmp_path):
    store.put_bytes("big.mp4", b"x" * 1000)
    with pytest.raises(ObjectTooLarge) as err:
        store.download("big.mp4", tmp_path / "big.mp4", max_bytes=999)
    message = str(err.value)
    assert store.uri("big.mp4") in message and "1000 bytes" in message and "\n" not in message
    assert not (tmp_path / "big.mp4").exists()
    assert store.download("big.mp4", tmp_path / "ok.mp4", max_bytes=1000).stat().st_size == 1000


def test_manifest_lines_read_back_in_order(store):
    assert list(store.read_lines("manifest.jsonl")) == []
    rows = [f'{{"row": {i}, "key": "v{i}.mp4"}}' for i in range(40)]
    for row in rows:
        store.append_line("manifest.jsonl", row)
    assert list(store.read_lines("manifest.jsonl")) == rows
    if isinstance(store, S3Store):  # one whole object per row, beside (not inside) the outputs
        assert all(k.startswith("manifest.jsonl.rows/") for k in keys(store))


def test_bad_keys_are_refused(store):
    for key in ["../escape.mp4", "/abs.mp4", "a//b.mp4", "", "a/./b.mp4", "a/"]:
        with pytest.raises(StorageError, match="bad key"):
            store.put_bytes(key, b"x")
    with pytest.raises(StorageError, match="bad key"):
        list(store.list("../"))


# -- S3 specifics --------------------------------------------------------------------------


def test_listing_paginates_past_1000_keys(s3_uri):
    store = open_store(s3_uri)
    names = [f"many/{i:05d}.mp4" for i in range(1100)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: store.put_bytes(n, b"."), names))
    calls = []
    store.client.meta.events.register("before-call.s3.ListObjectsV2", lambda **kw: calls.append(1))
    assert keys(store, "many/") == names
    assert len(calls) == 2  # the server's page is 1000 keys
    small = open_store(s3_uri)
    small.page_size = 7
    assert keys(small, "many/000") == names[:100]


def test_multipart_upload_round_trips_with_checksum(s3_uri, tmp_path):
    part = 5 * MiB  # S3's smallest part
    store = open_store(s3_uri, transfer=TransferConfig(multipart_threshold=part, multipart_chunksize=part,
                                                       preferred_transfer_client="classic"))
    data = os.urandom(11 * MiB)
    (tmp_path / "big.bin").write_bytes(data)
    store.upload(tmp_path / "big.bin", "out/big.mp4")
    info = store.info("out/big.mp4")
    assert info.size == len(data) and info.etag.endswith("-3")  # three parts
    part_crcs = b"".join(zlib.crc32(data[i:i + part]).to_bytes(4, "big") for i in range(0, len(data), part))
    assert info.checksum == f"crc32:{crc32_b64(part_crcs)}-3"  # S3's composite checksum of the parts
    assert store.download("out/big.mp4", tmp_path / "back.bin").read_bytes() == data
    store.put_bytes("small.json", b"hello")
    assert store.info("small.json").checksum == f"crc32:{crc32_b64(b'hello')}"


def test_get_bytes_retries_a_reset_mid_body(s3_uri):
    """botocore raises ResponseStreamingError for a reset during .read(); get_bytes retries."""
    from urllib3.exceptions import ProtocolError

    store = open_store(s3_uri)
    store.put_bytes("row.json", b"payload" * 1000)
    calls = []

    class ResetOnce:
        def __init__(self, raw):
            self.raw = raw

        def read(self, *args, **kwargs):
            raise ProtocolError("Connection broken: ConnectionResetError(104, 'Connection reset by peer')")

        def __getattr__(self, name):
            return getattr(self.raw, name)

    def inject(parsed, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            parsed["Body"]._raw_stream = ResetOnce(parsed["Body"]._raw_stream)

    store.client.meta.events.register("after-call.s3.GetObject", inject)
    assert store.get_bytes("row.json") == b"payload" * 1000
    assert len(calls) == 2


def test_manifest_rows_from_two_writers_interleave_in_time_order(s3_uri):
    first, second = open_store(s3_uri), pickle.loads(pickle.dumps(open_store(s3_uri)))
    for i in range(6):
        (first if i % 2 else second).append_line("manifest.jsonl", f"row {i}")
    assert list(open_store(s3_uri).read_lines("manifest.jsonl")) == [f"row {i}" for i in range(6)]


def test_model_dir_is_fetched_once_and_cached(s3_uri, tmp_path, monkeypatch):
    import numpy as np
    from safetensors.numpy import load_file, save_file

    src = tmp_path / "ckpt"
    (src / "tokenizer").mkdir(parents=True)
    (src / "config.json").write_text('{"model_type": "toy", "hidden": 4}')
    (src / "tokenizer" / "tokenizer.json").write_text('{"vocab": ["a", "b"]}')
    weights = {"w": np.arange(12, dtype=np.float32).reshape(3, 4)}
    save_file(weights, src / "model.safetensors")
    store = open_store(s3_uri)
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        store.upload(path, f"prior/{path.relative_to(src).as_posix()}")

    downloads = []
    original = S3Store.download

    def counted(self, key, *args, **kwargs):  # the real download, counted
        downloads.append(key)
        return original(self, key, *args, **kwargs)

    monkeypatch.setattr(S3Store, "download", counted)
    cache = tmp_path / "cache"
    local = Path(resolve_model_dir(f"{s3_uri}/prior", cache))
    assert sorted(downloads) == ["config.json", "model.safetensors", "tokenizer/tokenizer.json"]
    assert (local / "config.json").read_text() == (src / "config.json").read_text()
    assert (local / "tokenizer" / "tokenizer.json").exists()
    np.testing.assert_array_equal(load_file(local / "model.safetensors")["w"], weights["w"])
    assert [p.name for p in cache.iterdir()] == [local.name]  # no temporary folder left

    downloads.clear()
    assert resolve_model_dir(f"{s3_uri}/prior/", cache) == str(local)
    assert downloads == []  # cached: nothing fetched again

    store.put_bytes("prior/config.json", b'{"model_type": "toy", "hidden": 8}')
    changed = Path(resolve_model_dir(f"{s3_uri}/prior", cache))
    assert changed != local and (changed / "config.json").read_text().endswith("8}")

    assert resolve_model_dir("facebook/musicgen-small", cache) == "facebook/musicgen-small"
    assert resolve_model_dir(str(src), cache) == str(src)
    with pytest.raises(StorageError, match="no model files"):
        resolve_model_dir(f"{s3_uri}/nothing-here", cache)


# -- clear one-line errors -----------------------------------------------------------------


def one_line_error(call) -> str:
    with pytest.raises(StorageError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_missing_bucket_is_named(s3_env):  # noqa: F811
    store = open_store("s3://no-such-bucket-cotvtm/in")
    for call in (lambda: list(store.list()), lambda: store.put_bytes("x.json", b"x"),
                 lambda: store.info("x.json"), lambda: store.download("x.mp4", "/nonexistent/x")):
        message = one_line_error(call)
        assert message.startswith("s3://no-such-bucket-cotvtm/in/")
        assert "bucket 'no-such-bucket-cotvtm' does not exist" in message


@pytest.mark.parametrize("uri, reason", [
    ("s3://", "not a valid bucket name"),
    ("s3://Bad_Bucket/x", "not a valid bucket name"),
    ("s3://ab/x", "not a valid bucket name"),
    ("s3://bucket/../x", "bad key"),
    ("gs://bucket/x", "unsupported location"),
    ("", "empty location"),
])
def test_bad_uri_is_refused(uri, reason):
    assert reason in one_line_error(lambda: open_store(uri))


def test_access_denied_and_missing_credentials(s3_env, bucket, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    message = one_line_error(lambda: list(open_store(f"s3://{bucket}/x").list()))
    assert message.startswith(f"s3://{bucket}/x/") and "access denied (SignatureDoesNotMatch)" in message

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata probe off loopback
    message = one_line_error(lambda: open_store(f"s3://{bucket}/x").put_bytes("a.json", b"{}"))
    assert message.startswith(f"s3://{bucket}/x/a.json: no AWS credentials found")


# -- local specifics -----------------------------------------------------------------------

FAIL_MID_WRITE = """
import resource, signal, sys
from cotvtm.storage import StorageError
from cotvtm.storage.local import LocalStore
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
store = LocalStore(sys.argv[1])
try:
    if sys.argv[2] == "put":
        store.put_bytes("out/video.mp4", b"n" * (4 << 20))
    else:
        store.upload(sys.argv[3], "out/video.mp4")
except StorageError as exc:
    print("failed:", exc.reason)
"""


@pytest.mark.parametrize("how", ["put", "upload"])
def test_failed_local_write_leaves_no_partial_or_temp_file(tmp_path, how):
    """A write cut off by the file-size limit (as by a full disk) leaves the old file intact."""
    root = tmp_path / "root"
    LocalStore(root).put_bytes("out/video.mp4", b"old complete output")
    big = tmp_path / "big.bin"
    big.write_bytes(b"u" * (4 << 20))
    result = subprocess.run([sys.executable, "-c", FAIL_MID_WRITE, str(root), how, str(big)],
                            capture_output=True, text=True, timeout=60)
    assert "failed: cannot be written (File too large)" in result.stdout, result.stderr
    assert os.listdir(root / "out") == ["video.mp4"]
    assert (root / "out" / "video.mp4").read_bytes() == b"old complete output"


def test_local_symlink_leaving_the_root_is_listed_but_refused(tmp_path):
    (tmp_path / "outside.mp4").write_bytes(b"secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "escape.mp4").symlink_to(tmp_path / "outside.mp4")
    (root / "broken.mp4").symlink_to(root / "gone.mp4")
    (root / "linked-dir").symlink_to(tmp_path, target_is_directory=True)
    store = LocalStore(root)
    assert keys(store) == ["broken.mp4", "escape.mp4"]  # directory symlinks are not followed
    assert "outside the store's root" in one_line_error(lambda: store.get_bytes("escape.mp4"))
    assert "outside the store's root" in one_line_error(lambda: store.download("escape.mp4", tmp_path / "c"))
    with pytest.raises(ObjectNotFound, match="file not found"):
        store.get_bytes("broken.mp4")


def test_local_helpers_write_whole_readable_files(tmp_path):
    from cotvtm.storage.local import append_line, atomic_write_bytes

    atomic_write_bytes(tmp_path / "in" / "a.mp4", b"v")
    append_line(tmp_path / "m.jsonl", "one\n")
    append_line(tmp_path / "m.jsonl", "two")
    assert (tmp_path / "in" / "a.mp4").read_bytes() == b"v"
    assert (tmp_path / "in" / "a.mp4").stat().st_mode & 0o044 == 0o044  # not mkstemp's 0600
    assert list(LocalStore(tmp_path).read_lines("m.jsonl")) == ["one", "two"]


# -- content identity, durability, scratch -------------------------------------------------


def test_a_replaced_object_of_the_same_size_has_another_identity(store):
    store.put_bytes("v.mp4", b"first version")
    before = store.info("v.mp4").identity
    assert [o.identity for o in store.list()] == [before]  # the listing knows it too
    time.sleep(0.05)  # file times tick with the kernel's coarse clock (a few ms)
    store.put_bytes("v.mp4", b"other version")  # same size, other bytes
    after = store.info("v.mp4")
    assert after.size == len(b"first version") and after.identity != before


def test_local_writes_are_synced_before_they_count(tmp_path, monkeypatch):
    """The file's bytes, then the rename, then its folder: a crash never leaves a named file
    whose contents are not on disk."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file")
        real_fsync(fd)

    def replace(src, dst):
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    store = open_store(tmp_path / "out")
    store.put_bytes("a/progress.npz", b"x")
    source = tmp_path / "v.mp4"
    source.write_bytes(b"video")
    store.upload(source, "a/v.mp4")
    assert events == ["file", "rename", "dir"] * 2
    events.clear()
    store.append_line("manifest.jsonl", "{}")
    store.append_line("manifest.jsonl", "{}")
    assert events == ["file", "dir", "file"]  # a new log's name is synced once


def test_scratch_folders_of_dead_workers_are_removed_at_the_next_start(tmp_path, monkeypatch):
    import tempfile

    from cotvtm.storage import scratch

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(scratch, "_swept", False)
    root = scratch.scratch_root()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead = int(gone.stdout)
    me = os.getpid()
    folders = {"dead": root / f"{dead}-{scratch._started(dead)}-abc", "live": root / f"{me}-{scratch._started(me)}-x",
               "reused pid": root / f"{me}-1-y", "foreign": root / "not-ours"}
    for folder in folders.values():
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "copy.mp4").write_bytes(b"left behind")
    made = scratch.Scratch().dir
    assert made.parent == root and made.name.startswith(f"{me}-")
    assert sorted(name for name, folder in folders.items() if folder.exists()) == ["foreign", "live"]
