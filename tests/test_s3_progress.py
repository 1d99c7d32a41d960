"""S3 reads are bounded by their progress, never by the size a server declares.

Through a proxy in front of the real S3 server on loopback that passes a GET's headers on at
once (declaring 1 GiB where asked) and then its body a few bytes at a time, or without any
Content-Length at all. The pace is shortened to 16 KiB/s over every 1.5 s.
"""

import time
from urllib.parse import urlparse

import pytest
from faulty_proxy import FaultyProxy, paced_bodies, unsized_bodies
from s3server import s3_env, s3_server  # noqa: F401  (pytest fixtures)

from cotvtm.storage import ObjectTooLarge, open_store, read_file
from cotvtm.storage import ranged
from cotvtm.storage import s3 as s3_module
from cotvtm.storage.errors import TooSlow

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
WINDOW_S = 1.5
PACE = "minimum rate of 16 KiB/s"


@pytest.fixture
def bucket(s3_env):  # noqa: F811
    """A new bucket holding a 1000-byte object (its first write also grows its volumes)."""
    name = s3_env.make_bucket()
    s3_env.client().put_object(Bucket=name, Key="k/small.jsonl", Body=b"s" * 1000)
    return name


@pytest.fixture
def short_pace(monkeypatch):
    """Moving data must keep 16 KiB/s over every 1.5 s; the other bounds keep their values."""
    monkeypatch.setattr(s3_module, "WINDOW_S", WINDOW_S)
    monkeypatch.setattr(s3_module, "MIN_BYTES_PER_S", 16 * KiB)


def _proxy(s3_server, fault, **options) -> FaultyProxy:  # noqa: F811
    return FaultyProxy(urlparse(s3_server.endpoint).port, fault=fault, **options).start()


def _timed(call):
    """(what ``call`` raised, seconds it took)."""
    start = time.monotonic()
    with pytest.raises(Exception) as caught:
        call()
    return caught.value, time.monotonic() - start


def test_a_declared_gib_that_trickles_ends_within_the_window_naming_the_rate(s3_server, s3_env, bucket,
                                                                             tmp_path, short_pace, monkeypatch):
    """The GET declares 1 GiB and sends a byte every 0.2 s. With the whole-object cap raised
    past 1 GiB, so that only the pace can end it, read_file ends within the window (not after
    the size at any rate), as does a download; the same client then reads at once."""
    monkeypatch.setattr(ranged, "READ_ALL_MAX_BYTES", 2 * GiB)
    proxy = _proxy(s3_server, paced_bodies, trickle_s=0.2, declare_bytes=GiB)
    uri = f"s3://{bucket}/k/small.jsonl"
    try:
        error, wall = _timed(lambda: read_file(uri, proxy.url))
        store = open_store(f"s3://{bucket}/k", endpoint_url=proxy.url)
        proxy.declare_bytes = None  # the download's HEAD gives the real size; its GET trickles
        failed, download_wall = _timed(lambda: store.download("small.jsonl", tmp_path / "small.jsonl"))
        proxy.trickle_s = 0.0
        assert store.get_bytes("small.jsonl") == b"s" * 1000
    finally:
        proxy.stop()
    print(f"read_file {wall:.2f} s, download {download_wall:.2f} s")
    for caught, seconds in ((error, wall), (failed, download_wall)):
        assert isinstance(caught, TooSlow), repr(caught)
        assert WINDOW_S <= seconds < WINDOW_S + 2.5, seconds  # a window, a tick or two, making a client
        message = str(caught)
        assert message.startswith(f"{uri}: S3 transfer abandoned") and PACE in message, message
        assert "\n" not in message
    assert list(tmp_path.iterdir()) == []  # no partial download left


def test_read_all_refuses_an_object_over_its_cap_by_name_before_reading_it(s3_server, s3_env, bucket,
                                                                            monkeypatch):
    """A GET declaring 1 GiB is refused on its headers, at once, not one body byte read; a real
    object over a lowered cap is refused the same way."""
    proxy = _proxy(s3_server, paced_bodies, trickle_s=0.2, declare_bytes=GiB)
    uri = f"s3://{bucket}/k/small.jsonl"
    try:
        error, wall = _timed(lambda: read_file(uri, proxy.url))
    finally:
        proxy.stop()
    assert isinstance(error, ObjectTooLarge) and wall < 3.0, (repr(error), wall)  # no trickle waited for
    assert str(error) == (f"{uri}: its answer declares {GiB} bytes, over the limit of {256 * MiB} bytes for an "
                          "object read whole into memory")
    assert proxy.bytes_down == 0
    monkeypatch.setattr(ranged, "READ_ALL_MAX_BYTES", 999)
    with pytest.raises(ObjectTooLarge, match=f"^{uri}: its answer declares 1000 bytes, over the limit of 999 bytes"):
        read_file(uri)


def test_a_body_past_the_cap_is_stopped_whatever_its_length_said(s3_server, s3_env, bucket, monkeypatch):
    """Answers without a Content-Length, ended only by the connection's close: one within the
    cap reads whole, one that runs past it is stopped there."""
    s3_env.client().put_object(Bucket=bucket, Key="k/big.bin", Body=b"b" * MiB)
    monkeypatch.setattr(ranged, "READ_ALL_MAX_BYTES", 64 * KiB)
    proxy = _proxy(s3_server, unsized_bodies)
    try:
        assert read_file(f"s3://{bucket}/k/small.jsonl", proxy.url) == b"s" * 1000
        with pytest.raises(ObjectTooLarge) as caught:
            read_file(f"s3://{bucket}/k/big.bin", proxy.url)
    finally:
        proxy.stop()
    assert str(caught.value) == (f"s3://{bucket}/k/big.bin: its body ran past {64 * KiB} bytes, over the limit of "
                                 f"{64 * KiB} bytes for an object read whole into memory")
    assert proxy.counts["unsized"] == 2


def test_a_slow_but_progressing_read_completes(s3_server, s3_env, bucket, short_pace):
    """8 KiB every 0.1 s (80 KiB/s, five times the least rate) for 200 KiB: longer than a
    window, every window well paced, so it completes whole."""
    data = bytes(range(256)) * 800
    s3_env.client().put_object(Bucket=bucket, Key="k/slow.npy", Body=data)
    proxy = _proxy(s3_server, paced_bodies, trickle_s=0.1, step_bytes=8 * KiB)
    start = time.monotonic()
    try:
        assert read_file(f"s3://{bucket}/k/slow.npy", proxy.url) == data
    finally:
        proxy.stop()
    assert time.monotonic() - start > WINDOW_S
    assert proxy.bytes_down == len(data)
