"""The LLM teacher: an OpenAI-compatible chat endpoint through the ``openai`` package.

Why its own retry loop: the client's built-in retries (``max_retries``) honour Retry-After
but have fixed backoff constants (0.5 s doubling to 8 s) and no hook to count attempts;
here the backoff is configurable (tests run with milliseconds), every attempt is counted,
and the in-flight limit covers exactly the time a request is on the wire, not the time
it sleeps before a retry. So the client is built with ``max_retries=0``.

Each request is bounded: in time, ``teacher_timeout`` from connecting to the answer's last byte (a
server trickling its answer a byte at a time times out like a silent one); in size, an answer
over ``MAX_RESPONSE_BYTES`` is refused by its Content-Length or as soon as that much has been
read, never held whole, and a field of it over ``schema.MAX_FIELD_CHARS`` is an invalid answer.

Per caption: rate limiter -> concurrency slot -> request; 429, 5xx, 408/409, timeouts and
connection errors are retried with exponential backoff (or the server's Retry-After);
other 4xx fail the caption at once. An answer that is not the required JSON (invalid,
incomplete, missing fields, truncated by the token limit) is sent back with the error for
at most ``teacher_repair_attempts`` more turns. Whatever happens, ``label`` returns a record:
``ok``, or ``failed`` with a one-line reason.
"""

import asyncio
import email.utils
import logging
import random
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import httpx2
import openai

from cotvtm.teacher.settings import EndpointConfig, redact_urls, shown_url
from cotvtm.teacher.ingest import CaptionItem
from cotvtm.teacher.limiter import RateLimiter, estimate_tokens
from cotvtm.teacher.prompt import (DIRECT_PROMPT_VERSION, PAPER_PROMPT_VERSION, PROMPT_VERSION, cot_prompt,
                                   direct_prompt, repair_message, scene_prompt)
from cotvtm.teacher.records import LabelRecord
from cotvtm.teacher.schema import AnswerError, bounded_field, parse_answer_format, x_mt, x_rt

TEACHER = "openai"
RETRYABLE_STATUS = {408, 409, 429}
# The largest HTTP body a teacher's answer may have. A completion at the largest max_tokens
# models offer (~128k tokens, ~4 bytes each) is ~0.5 MB; this leaves room for JSON escapes and
# the envelope, while a hostile or broken server cannot make a worker hold hundreds of MB.
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
_LIMIT = f"the {MAX_RESPONSE_BYTES:,}-byte limit of an answer"  # as reasons name it


class TooLarge(openai.OpenAIError):
    """An answer refused for its size (an ``OpenAIError``: the client passes it on unwrapped)."""


class _CappedBody(httpx2.AsyncByteStream):
    """A response body read chunk by chunk, refused once it passes ``MAX_RESPONSE_BYTES``."""

    def __init__(self, inner: httpx2.AsyncByteStream):
        self.inner = inner

    async def __aiter__(self):
        read = 0
        async for chunk in self.inner:
            read += len(chunk)
            if read > MAX_RESPONSE_BYTES:
                raise TooLarge(f"answer too large: over {_LIMIT}")
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _cap_body(response: httpx2.Response) -> None:
    """A response hook, before the body is read: a declared size over ``MAX_RESPONSE_BYTES``
    is refused at once, any other body is read through ``_CappedBody``. Answers are asked for
    uncompressed (``Accept-Encoding: identity``): a compressed one is refused, since a capped
    compressed body can still inflate a thousandfold."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise TooLarge(f"answer too large: {int(declared):,} bytes declared, over {_LIMIT}")
    encoding = response.headers.get("content-encoding", "identity").lower()
    if encoding != "identity":
        raise TooLarge(f"answer compressed ({encoding}) although asked for uncompressed: its size cannot be "
                       f"held to {_LIMIT}")
    response.stream = _CappedBody(response.stream)


class _ShownUrls(logging.Filter):
    """httpx2 logs each request's URL (at INFO): logged as ``shown_url`` shows it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(shown_url(str(a)) if isinstance(a, httpx2.URL) else a for a in record.args)
        return True


logging.getLogger("httpx2").addFilter(_ShownUrls())


class RequestFailed(Exception):
    """A request that cannot succeed (retries exhausted, or a non-retryable error)."""

    def __init__(self, reason: str, raw: str = ""):
        super().__init__(reason)
        self.reason, self.raw = reason, raw


@dataclass
class Reply:
    content: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Usage:
    """What one caption (or one actor, summed) cost."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, reply: Reply) -> None:
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens

    def tokens(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


@dataclass
class Labelled:
    record: LabelRecord
    usage: Usage = field(default_factory=Usage)


def retry_after_s(headers) -> float | None:
    """The server's requested delay: retry-after-ms, retry-after in seconds, or an HTTP date."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            pass
    value = headers.get("retry-after")
    parsed = email.utils.parsedate_tz(value) if value else None
    return max(0.0, email.utils.mktime_tz(parsed) - time.time()) if parsed else None


def make_client(cfg: EndpointConfig) -> openai.AsyncOpenAI:
    """The async client, with its own retries off (this module retries), every answer's size
    capped, the key from this process's environment. A query in the URL (``?key=...``) is sent
    with every request: the client would append the request's path after it."""
    url = urlsplit(cfg.url)
    http = openai.DefaultAsyncHttpxClient(event_hooks={"response": [_cap_body]},
                                          headers={"Accept-Encoding": "identity"})
    common = dict(api_key=cfg.api_key(), timeout=cfg.teacher_timeout, max_retries=0, http_client=http,
                  default_query=dict(parse_qsl(url.query)))
    base = url._replace(query="", fragment="").geturl()
    if cfg.teacher_api_version:
        return openai.AsyncAzureOpenAI(azure_endpoint=base, api_version=cfg.teacher_api_version, **common)
    return openai.AsyncOpenAI(base_url=base, **common)


class LLMTeacher:
    """Labels caption items through one endpoint; many ``label`` calls may run at once."""

    teacher = TEACHER

    def __init__(self, cfg: EndpointConfig, cot: bool = True, client: openai.AsyncOpenAI | None = None,
                 prompt: str = PROMPT_VERSION):
        self.cfg = cfg
        self.cot = cot
        self.model = cfg.teacher_model
        self.prompt_version = prompt if cot else DIRECT_PROMPT_VERSION
        self.expected = "paper" if prompt == PAPER_PROMPT_VERSION else "cot-v1"
        self.client = client or make_client(cfg)
        self.limiter = RateLimiter(cfg.teacher_rpm, cfg.teacher_tpm)
        self.slots: asyncio.Semaphore | None = None
        self.json_mode = cfg.teacher_json_mode

    # --- one request, with retries -------------------------------------------------------
    async def complete(self, messages: list[dict], usage: Usage, json_mode: bool = True) -> Reply:
        """One chat completion; retried on transient errors. Raises ``RequestFailed``."""
        if self.slots is None:
            self.slots = asyncio.Semaphore(self.cfg.teacher_concurrency)
        estimate = estimate_tokens(messages, self.cfg.teacher_max_tokens)
        last = "no attempt made"
        for attempt in range(self.cfg.teacher_retries + 1):
            await self.limiter.acquire(estimate)
            try:
                async with self.slots:
                    usage.requests += 1
                    response = await asyncio.wait_for(self.client.chat.completions.create(
                        **self._request(messages, json_mode and self.json_mode)), self.cfg.teacher_timeout)
            except TooLarge as exc:  # a server that sends this once will again: not retried
                self.limiter.settle(estimate, 0)
                raise RequestFailed(str(exc)) from None
            except (openai.APIError, asyncio.TimeoutError) as exc:
                self.limiter.settle(estimate, 0)
                last, delay = self._transient(exc)
            else:
                self.limiter.settle(estimate, _tokens(response))
                return _reply(response)
            if attempt < self.cfg.teacher_retries:
                await asyncio.sleep(self._backoff(attempt) if delay is None else delay)
        attempts = self.cfg.teacher_retries + 1
        raise RequestFailed(f"{last}; gave up after {attempts} attempt{'s' if attempts != 1 else ''}")

    def _transient(self, exc: Exception) -> tuple[str, float | None]:
        """Why a request failed and the delay the server asked for; raises if a retry cannot help."""
        if isinstance(exc, (openai.APITimeoutError, asyncio.TimeoutError)):
            return f"timed out after {self.cfg.teacher_timeout:g} s (the limit of one whole request)", None
        if isinstance(exc, openai.APIConnectionError):
            return f"connection failed ({redact_urls(str(exc.__cause__ or exc))})", None
        if not isinstance(exc, openai.APIStatusError):
            raise RequestFailed(f"unusable response: {redact_urls(str(exc))}")
        status = exc.status_code
        if status == 400 and self.json_mode and "response_format" in str(exc.message):
            self.json_mode = False  # the server has no JSON mode; the prompt still asks for JSON
            return "the server rejected response_format", 0.0
        if status not in RETRYABLE_STATUS and status < 500:
            raise RequestFailed(f"HTTP {status}: {_message(exc)}")
        kind = "rate limited" if status == 429 else "server error"
        delay = retry_after_s(exc.response.headers)
        if delay is not None:
            delay = min(delay, self.cfg.max_retry_after_s)
        return f"{kind} (HTTP {status}): {_message(exc)}", delay

    def _backoff(self, attempt: int) -> float:
        """Exponential, capped, with jitter so that many failed calls do not retry in step."""
        return min(self.cfg.teacher_backoff * 2 ** attempt, self.cfg.max_backoff_s) * random.uniform(0.75, 1.0)

    def _request(self, messages: list[dict], json_mode: bool) -> dict:
        request = {"model": self.cfg.teacher_model, "messages": messages}
        if self.cfg.teacher_temperature is not None:
            request["temperature"] = self.cfg.teacher_temperature
        if self.cfg.teacher_max_tokens:
            request["max_tokens"] = self.cfg.teacher_max_tokens
        if json_mode:
            request["response_format"] = {"type": "json_object"}
        return request

    # --- one caption -----------------------------------------------------------------------
    async def describe_scene(self, scene: str, usage: Usage) -> str:
        """A visual description of a generated scene, written by the model."""
        reply = await self.complete(scene_prompt(scene).messages(), usage, json_mode=False)
        usage.add(reply)
        text = reply.content.strip().strip('"').strip()
        if reply.finish_reason == "length":
            raise RequestFailed("scene description truncated (finish_reason=length)")
        if not text:
            raise RequestFailed("scene description: empty answer")
        try:
            return bounded_field(text, "the scene description")
        except AnswerError as exc:
            raise RequestFailed(exc.reason) from None

    async def answer(self, caption: str, usage: Usage) -> tuple[str, object, str]:
        """The model's raw text, validated answer and its format, with repair turns. Raises
        ``RequestFailed``."""
        prompt = cot_prompt(caption, self.prompt_version) if self.cot else direct_prompt(caption)
        messages = prompt.messages()
        raw, problem = "", "no answer"
        for turn in range(self.cfg.teacher_repair_attempts + 1):
            reply = await self.complete(messages, usage)
            usage.add(reply)
            raw = reply.content
            try:
                if reply.finish_reason == "content_filter":
                    raise RequestFailed("answer blocked by the content filter (finish_reason=content_filter)", raw)
                if reply.finish_reason == "length":
                    limit = f" (max_tokens={self.cfg.teacher_max_tokens})" if self.cfg.teacher_max_tokens else ""
                    raise AnswerError(f"truncated output: the answer hit the token limit{limit} "
                                      f"(finish_reason=length)")
                return raw, *parse_answer_format(raw, self.cot, self.expected)
            except AnswerError as exc:
                problem = exc.reason
                messages = messages + [{"role": "assistant", "content": raw},
                                       {"role": "user", "content": repair_message(problem)}]
        turns = self.cfg.teacher_repair_attempts
        raise RequestFailed(f"{problem} (after {turns} repair attempt{'s' if turns != 1 else ''})", raw)

    async def label(self, item: CaptionItem) -> Labelled:
        """Never raises for a caption's own failure: the record says what went wrong."""
        usage = Usage(*item.usage)  # what writing its caption cost, if it was written here
        caption = item.caption
        record = LabelRecord(id=item.id, caption=caption, media=item.media, source=item.source,
                             teacher=TEACHER, model=self.model, prompt_version=self.prompt_version, status="failed",
                             caption_source=item.caption_source)
        try:
            if not caption and item.scene:
                caption = record.caption = await self.describe_scene(item.scene, usage)
            raw, answer, answer_format = await self.answer(caption, usage)
        except RequestFailed as exc:
            record.reason, record.raw = exc.reason, exc.raw
        except Exception as exc:  # a client bug must not lose the caption: it is recorded and retried on request
            record.reason = f"unexpected error: {type(exc).__name__}: {exc}"
        else:
            record.status, record.raw, record.answer_format = "ok", raw, answer_format
            record.parsed, record.x_rt, record.x_mt = answer.model_dump(), x_rt(answer), x_mt(answer)
        record.usage = usage.tokens()
        return Labelled(record, usage)

    async def close(self) -> None:
        await self.client.close()


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return redact_urls(str(error["message"])[:200])
    return redact_urls(str(exc.message)[:200])


def _tokens(response) -> int:
    usage = getattr(response, "usage", None)
    return (usage.prompt_tokens or 0) + (usage.completion_tokens or 0) if usage else 0


def _reply(response) -> Reply:
    if not response.choices:
        raise RequestFailed("the server returned no choices")
    choice = response.choices[0]
    usage = response.usage
    return Reply(content=choice.message.content or "", finish_reason=choice.finish_reason or "",
                 prompt_tokens=(usage.prompt_tokens or 0) if usage else 0,
                 completion_tokens=(usage.completion_tokens or 0) if usage else 0)
