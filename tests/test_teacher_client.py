"""The LLM teacher against a local OpenAI-compatible server that misbehaves on request."""

import asyncio
import email.utils
import time

import pytest

from cotvtm.teacher.client import LLMTeacher, retry_after_s
from cotvtm.teacher.settings import EndpointConfig
from cotvtm.teacher.ingest import CaptionItem
from cotvtm.teacher.limiter import RateLimiter
from openai_server import FakeOpenAI


@pytest.fixture
def server():
    with FakeOpenAI(slow_s=1.0) as srv:
        yield srv


def endpoint(srv: FakeOpenAI, **overrides) -> EndpointConfig:
    settings = dict(teacher_model="fake-model", teacher_url=srv.base_url, teacher_key_env="COTVTM_TEST_KEY",
                    teacher_timeout=0.3, teacher_backoff=0.01, max_backoff_s=0.05, teacher_retries=3,
                    teacher_repair_attempts=1, teacher_concurrency=4)
    return EndpointConfig(**{**settings, **overrides})


def label_all(cfg: EndpointConfig, items: list[CaptionItem], cot: bool = True):
    async def go():
        teacher = LLMTeacher(cfg, cot)
        try:
            return await asyncio.gather(*(teacher.label(item) for item in items))
        finally:
            await teacher.close()
    return asyncio.run(go())


# caption -> (status, words the reason must contain, HTTP requests it must take)
CASES = {
    "A calm lake.": ("ok", "", 1),
    "#429 A busy street.": ("ok", "", 2),
    "#500 A red car.": ("ok", "", 3),
    "#500-always A storm.": ("failed", "server error (HTTP 500): The server had an error; gave up after 4 attempts", 4),
    "#slow A forest.": ("ok", "", 2),
    "#slow-always A desert.": ("failed", "timed out after 0.3 s (the limit of one whole request); gave up after 4 "
                                         "attempts", 4),
    "#badjson A cat.": ("failed", "invalid JSON: Expecting property name enclosed in double quotes", 2),
    "#badjson-once A dog.": ("ok", "", 2),
    "#fenced A candle.": ("ok", "", 1),
    "#lists A choir.": ("ok", "", 1),
    "#missing A beach.": ("failed", "JSON missing fields: music elements.rhythm (after 1 repair attempt)", 2),
    "#v1 #missing A bay.": ("failed", "JSON missing fields: step2.music_elements.rhythm (after 1 repair attempt)", 2),
    "#v1 A meadow.": ("ok", "", 1),
    "#length A lake.": ("failed", "truncated output: the answer hit the token limit (max_tokens=1024) "
                                  "(finish_reason=length) (after 1 repair attempt)", 2),
    "#400 A field.": ("failed", "HTTP 400: Invalid value for 'messages'", 1),
}


def test_every_caption_ends_labelled_or_failed_with_its_reason(server):
    items = [CaptionItem(f"c{i}", caption, source="t") for i, caption in enumerate(CASES)]
    done = label_all(endpoint(server), items)
    for item, result in zip(items, done):
        status, reason, requests = CASES[item.caption]
        record = result.record
        assert (record.id, record.caption, record.status) == (item.id, item.caption, status), record.reason
        assert result.usage.requests == requests == len(server.requests_for(item.caption)), item.caption
        if status == "ok":
            assert record.reason == "" and record.x_mt == f"Gentle ambient piano and strings for: {item.caption}"
            assert record.x_rt.startswith("Step 1: The caption shows: ") and record.parsed["step3"]
            assert record.answer_format == ("cot-v1" if "#v1" in item.caption else "paper")
        else:
            assert reason in record.reason.replace(" while processing your request", ""), record.reason
            assert record.parsed is None and record.x_mt == "" and record.x_rt == ""
    by_caption = {r.record.caption: r.record for r in done}
    assert by_caption["#badjson A cat."].raw.startswith("Sure! Here is the music")  # kept for debugging
    assert by_caption["#lists A choir."].parsed["step2"]["music_elements"]["instruments"] == "piano, strings"


def test_retry_after_is_honoured_and_plain_backoff_is_short(server):
    label_all(endpoint(server), [CaptionItem("a", "#429 wait"), CaptionItem("b", "#500 quick")])
    first, second = server.requests_for("#429 wait")
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 0.95  # the server said Retry-After: 1; the backoff alone is 0.01 s
    a, b, c = server.requests_for("#500 quick")
    assert b.at - a.at < 0.5 and c.at - b.at < 0.5


def test_concurrency_limit_is_respected_and_reached():
    with FakeOpenAI(latency=0.1) as srv:
        label_all(endpoint(srv, teacher_concurrency=4), [CaptionItem(str(i), f"caption {i}") for i in range(24)])
        assert len(srv.log) == 24 and srv.max_in_flight == 4
    with FakeOpenAI(latency=0.05) as srv:
        label_all(endpoint(srv, teacher_concurrency=1), [CaptionItem(str(i), f"caption {i}") for i in range(5)])
        assert srv.max_in_flight == 1


def test_requests_per_minute_are_paced(server):
    started = time.monotonic()
    label_all(endpoint(server, teacher_concurrency=50, teacher_rpm=600),
              [CaptionItem(str(i), f"cap {i}") for i in range(25)])
    arrivals = sorted(entry.at for entry in server.log)
    # 600/min = 10/s with a one-second burst: request k cannot start before (k - 10) / 10 s
    for k, at in enumerate(arrivals):
        assert at - started >= (k - 10) / 10 - 0.05, (k, at - started)
    assert arrivals[-1] - arrivals[0] >= 1.3


def test_tokens_per_minute_limiter():
    async def go():
        limiter = RateLimiter(tpm=120_000)  # 2,000 tokens per second, bucket of 2,000
        started = time.monotonic()
        for _ in range(4):
            await limiter.acquire(1000)
        waited = time.monotonic() - started
        limiter.settle(estimated=1000, actual=0)  # an unused estimate is given back
        return waited, limiter.tokens.level
    waited, level = asyncio.run(go())
    assert 0.9 <= waited < 1.5
    assert level > 900


def test_request_has_model_temperature_limit_json_mode_and_key(server, monkeypatch):
    monkeypatch.setenv("COTVTM_TEST_KEY", "sk-test-123")
    label_all(endpoint(server, teacher_temperature=0.2, teacher_max_tokens=300), [CaptionItem("a", "A lamp.")])
    [entry] = server.log
    assert entry.body["model"] == "fake-model" and entry.body["temperature"] == 0.2
    assert entry.body["max_tokens"] == 300 and entry.body["response_format"] == {"type": "json_object"}
    assert entry.headers["Authorization"] == "Bearer sk-test-123"
    assert [m["role"] for m in entry.body["messages"]] == ["system", "user"]
    assert entry.body["messages"][1]["content"].endswith("Question: Caption: A lamp.")


def test_repair_turn_sends_the_error_back(server):
    label_all(endpoint(server), [CaptionItem("a", "#badjson-once A dog.")])
    first, second = server.requests_for("#badjson-once A dog.")
    assert len(second.body["messages"]) == len(first.body["messages"]) + 2
    assistant, user = second.body["messages"][-2:]
    assert assistant["role"] == "assistant" and assistant["content"].startswith("Sure!")
    assert user["content"].startswith("Your previous answer could not be used: invalid JSON")


def test_a_server_without_json_mode_is_used_without_it(server):
    [result] = label_all(endpoint(server), [CaptionItem("a", "#nojsonmode A boat.")])
    assert result.record.status == "ok"
    first, second = server.requests_for("#nojsonmode")
    assert first.status == 400 and "response_format" in first.body and "response_format" not in second.body


def test_direct_prompt_baseline(server):
    [result] = label_all(endpoint(server), [CaptionItem("a", "A kite.")], cot=False)
    record = result.record
    assert (record.status, record.prompt_version, record.x_rt) == ("ok", "direct-v1", "")
    assert record.x_mt == "Gentle ambient music for: A kite." and server.log[0].kind == "direct"


def test_scene_descriptions_are_written_by_the_model(server):
    [result] = label_all(endpoint(server), [CaptionItem("s", "", scene="a harbour at dusk")])
    assert [e.kind for e in server.log] == ["scene", "cot"]
    assert result.record.caption == "A wide view of a harbour at dusk, in soft light."
    assert result.record.status == "ok" and "response_format" not in server.log[0].body


def test_usage_is_counted_and_priced(server):
    cfg = endpoint(server, teacher_price_in=2.5, teacher_price_out=10.0)
    [ok, failed] = label_all(cfg, [CaptionItem("a", "A hill."), CaptionItem("b", "#missing A sea.")])
    assert ok.record.usage["prompt_tokens"] > 500 and ok.record.usage["completion_tokens"] > 20
    # a failed caption still cost both turns
    assert failed.record.usage["prompt_tokens"] > 2 * ok.record.usage["prompt_tokens"] - 50
    assert cfg.cost(1_000_000, 100_000) == pytest.approx(3.5)
    assert EndpointConfig(teacher_model="m").cost(10, 10) is None


def test_retry_after_header_forms():
    assert retry_after_s({"retry-after-ms": "250"}) == 0.25
    assert retry_after_s({"retry-after": "3"}) == 3.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= retry_after_s({"retry-after": later}) <= 31
    assert retry_after_s({"retry-after": "soon"}) is None and retry_after_s({}) is None


def test_hosted_endpoints_need_a_key(monkeypatch):
    from cotvtm.errors import CotvtmError

    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(CotvtmError, match="NO_SUCH_KEY is not set"):
        EndpointConfig(teacher_model="gpt-4o", teacher_key_env="NO_SUCH_KEY").api_key()
    assert EndpointConfig(teacher_model="m", teacher_url="http://127.0.0.1:8000/v1",
                          teacher_key_env="NO_SUCH_KEY").api_key()
