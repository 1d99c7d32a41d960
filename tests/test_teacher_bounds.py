"""The teacher's requests are bounded in time and size, and its URL's credentials are never shown.

Against the project's OpenAI-compatible server on 127.0.0.1, misbehaving on request: an answer
trickled a byte at a time (every read quick, the whole slow), answers far over the size limit
(streamed without a length, declared, compressed), a field over its limit, and a URL holding a
user:token and a ?key=.
"""

import asyncio
import base64
import logging
import re
import time
import tracemalloc

import pytest

from cotvtm.errors import CotvtmError
from cotvtm.teacher.client import MAX_RESPONSE_BYTES, LLMTeacher
from cotvtm.teacher.inference import TeacherConditioner
from cotvtm.teacher.ingest import CaptionItem
from cotvtm.teacher.schema import MAX_FIELD_CHARS
from cotvtm.teacher.settings import EndpointConfig, redact_urls, shown_url
from openai_server import FakeOpenAI

LIMIT = f"over the {MAX_RESPONSE_BYTES:,}-byte limit of an answer"
TOKEN, KEY = "TOKEN-7f3a9c", "QKEY-51be02"


def endpoint(url: str, **overrides) -> EndpointConfig:
    settings = dict(teacher_model="fake-model", teacher_url=url, teacher_key_env="COTVTM_TEST_KEY", teacher_timeout=1.0,
                    teacher_backoff=0.01, max_backoff_s=0.05, teacher_retries=1, teacher_repair_attempts=1,
                    teacher_concurrency=4)
    return EndpointConfig(**{**settings, **overrides})


def label_all(cfg: EndpointConfig, captions: list[str]):
    async def go():
        teacher = LLMTeacher(cfg)
        try:
            return await asyncio.gather(*(teacher.label(CaptionItem(f"c{i}", c)) for i, c in enumerate(captions)))
        finally:
            await teacher.close()
    return [done.record for done in asyncio.run(go())]


def test_a_trickled_answer_ends_at_the_whole_request_limit():
    with FakeOpenAI(trickle_s=0.05) as server:  # ~1.3 KB at 20 bytes/s: a minute to send in full
        started = time.monotonic()
        [slow, calm] = label_all(endpoint(server.base_url), ["#trickle A fox.", "A calm lake."])
        took = time.monotonic() - started
        assert slow.status == "failed" and calm.status == "ok"
        assert slow.reason == "timed out after 1 s (the limit of one whole request); gave up after 2 attempts"
        assert len(server.requests_for("#trickle")) == 2 and took < 2 * 1.0 + 1.0
        ended = time.monotonic() + 5.0  # the server's handler notes the end once it sees the client go
        while not all(entry.done_at for entry in server.requests_for("#trickle")) and time.monotonic() < ended:
            time.sleep(0.05)
        for entry in server.requests_for("#trickle"):  # the server saw each request end at the limit
            assert 0.9 <= entry.done_at - entry.at < 1.5


def test_a_trickled_answer_within_the_limit_is_used():
    """The control: the same trickle, fast enough to end in time, gives a good label."""
    with FakeOpenAI(trickle_s=0.001) as server:
        [record] = label_all(endpoint(server.base_url, teacher_timeout=30.0), ["#trickle A fox."])
        assert record.status == "ok" and record.x_mt.endswith("A fox.")


@pytest.mark.parametrize("tag, reason", [
    ("#huge", f"answer too large: {LIMIT}$"),
    ("#huge-declared", f"answer too large: 268,4[0-9,]+ bytes declared, {LIMIT}$"),  # 256 MiB and the envelope
    ("#gzip", "answer compressed \\(gzip\\) although asked for uncompressed: its size cannot be held to the "),
])
def test_an_oversized_answer_is_refused_unread_and_not_retried(tag, reason):
    with FakeOpenAI(huge_bytes=256 * 1024 * 1024) as server:
        tracemalloc.start()
        try:
            [record] = label_all(endpoint(server.base_url, teacher_retries=3), [f"{tag} A storm."])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert record.status == "failed" and re.match(reason, record.reason), record.reason
        assert f"{MAX_RESPONSE_BYTES:,}-byte limit of an answer" in record.reason
        assert len(server.requests_for(tag)) == 1  # a retry cannot help
        assert peak < 4 * MAX_RESPONSE_BYTES, f"{peak / 2**20:.0f} MiB held for a 256 MiB answer"


def test_an_oversized_answer_leaves_the_other_captions_labelled():
    with FakeOpenAI(huge_bytes=32 * 1024 * 1024) as server:
        records = label_all(endpoint(server.base_url), ["#huge A storm.", "A calm lake.", "#huge-declared A sea."])
        assert [r.status for r in records] == ["failed", "ok", "failed"]


def test_a_field_over_its_limit_is_repaired_then_refused_naming_the_limit():
    with FakeOpenAI(long_field=MAX_FIELD_CHARS + 1000) as server:
        [record] = label_all(endpoint(server.base_url), ["#longfield A choir."])
        first, second = server.requests_for("#longfield")
        assert record.status == "failed" and record.x_mt == "" and record.parsed is None
        assert record.reason.startswith("music description is too long: ") and record.reason.endswith(
            f"characters, over the limit of {MAX_FIELD_CHARS:,} (after 1 repair attempt)")
        assert "too long" in second.body["messages"][-1]["content"]  # the model was told why


def test_a_window_without_an_answer_within_its_bound_fails_and_the_others_do_not():
    """A window waits for its request's turn too (here one request a minute): the window's own
    bound ends that wait with a reason; the window already answered keeps its record."""
    with FakeOpenAI() as server:
        cfg = endpoint(server.base_url, teacher_timeout=0.2, teacher_retries=0, teacher_repair_attempts=0,
                       teacher_rpm=1)
        conditioner = TeacherConditioner(cfg, t5=None)
        assert conditioner.window_bound_s(2) == pytest.approx(0.2)
        started = time.monotonic()
        first, second = conditioner.describe(["v#0", "v#1"], ["A calm lake.", "A red car."])
        assert time.monotonic() - started < 2.0
        assert first.status == "ok" and second.status == "failed"
        assert second.reason == "no answer within 0.2 s (the bound of a window: every request and retry at its " \
                                "0.2 s limit)"
        assert len(server.log) == 1


def test_window_bound_grows_with_retries_turns_and_rounds():
    cfg = EndpointConfig(teacher_model="m", teacher_timeout=10, teacher_retries=2, max_backoff_s=5,
                         max_retry_after_s=20, teacher_repair_attempts=1, teacher_concurrency=4)
    assert cfg.request_bound_s() == 3 * 10 + 2 * 20 and cfg.caption_bound_s() == 2 * 70
    assert TeacherConditioner(cfg, t5=None).window_bound_s(9) == 3 * 140  # nine windows through four slots


@pytest.mark.parametrize("url, shown", [
    (f"http://user:{TOKEN}@127.0.0.1:8000/v1?key={KEY}", "http://127.0.0.1:8000/v1"),
    (f"https://{TOKEN}@api.example.com/v1/#frag", "https://api.example.com/v1/"),
    ("https://api.openai.com/v1", "https://api.openai.com/v1"),
    ("not a url", "not a url"),
])
def test_shown_url_drops_userinfo_query_and_fragment(url, shown):
    assert shown_url(url) == shown
    assert redact_urls(f"failed at {url} today") == f"failed at {shown} today"


def test_a_url_with_credentials_is_used_whole_and_never_shown(caplog):
    with FakeOpenAI() as server:
        url = server.base_url.replace("http://", f"http://user:{TOKEN}@") + f"?key={KEY}"
        with caplog.at_level(logging.DEBUG):
            [ok, failed] = label_all(endpoint(url), ["A calm lake.", "#500-always A storm."])
        assert ok.status == "ok" and failed.status == "failed"
        entry = server.requests_for("A calm lake.")[0]
        assert entry.query == f"key={KEY}"  # the query goes with every request
        assert entry.headers["Authorization"] == "Basic " + base64.b64encode(f"user:{TOKEN}".encode()).decode()
        assert "HTTP Request: POST http://127.0.0.1" in caplog.text  # the request was logged, its URL shown
    for text in (caplog.text, ok.to_json(), failed.to_json()):
        assert TOKEN not in text and KEY not in text


def test_connection_failures_and_set_up_errors_never_show_credentials():
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    [record] = label_all(endpoint(f"http://user:{TOKEN}@127.0.0.1:{port}/v1?key={KEY}"), ["A calm lake."])
    assert record.status == "failed" and record.reason.startswith("connection failed")
    assert TOKEN not in record.to_json() and KEY not in record.to_json()
    with pytest.raises(CotvtmError) as error:
        endpoint(f"ftp://user:{TOKEN}@host/v1?key={KEY}")
    assert str(error.value) == "--teacher-url must be an http(s) URL, not 'ftp://host/v1'"
