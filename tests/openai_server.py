"""An OpenAI-compatible Chat Completions server on 127.0.0.1, for tests and benchmarks.

It speaks the real protocol (``POST /v1/chat/completions``, the ``chat.completion`` JSON
envelope, ``usage``, ``finish_reason``, OpenAI-style error bodies), so the real ``openai``
client talks to it unchanged. It answers like a well-behaved model unless the caption asks
for trouble with a tag; a caption's request count (repair turns included) is its attempt:

    #429          first attempt: 429 with Retry-After (``retry_after``), then good answers
    #500          first two attempts: 500, then good answers
    #500-always   always 500
    #slow         first attempt sleeps ``slow_s`` (past the client's timeout), then good
    #slow-always  always sleeps ``slow_s``
    #badjson      always text that is not JSON
    #badjson-once first attempt not JSON, then good
    #fenced       good JSON inside a code fence with prose around it
    #lists        good JSON with lists where strings are expected
    #missing      always JSON without step2.music_elements.rhythm
    #length       always the first half of a good answer, finish_reason "length"
    #400          always 400 (a request error that must not be retried)
    #nojsonmode   400 whenever the request asks for response_format (a server without JSON mode)
    #paper        answer in the paper's format (Appendix A.1) even when cot-v1's was asked for
    #v1           answer in cot-v1's format even when the paper's was asked for
    #trickle      a good answer, its bytes sent one at a time ``trickle_s`` apart (every read is
                  quick, the whole answer slow)
    #huge         an answer whose text is ``huge_bytes`` long, streamed in chunks with no
                  Content-Length, never held whole by the server
    #huge-declared the same with its Content-Length declared
    #gzip         a good answer, gzip-compressed whatever the request accepts
    #longfield    a well-formed answer whose music description is ``long_field`` characters

``forced`` (tag -> count) gives that many requests, the first to arrive, a tag whatever their
caption says: a fault for requests whose captions are not the test's (a soundtrack's windows).

A chain-of-thought answer otherwise comes in the format the prompt asked for (the paper's when
the prompt shows its "step1 reasoning" key). A message whose content is a list of parts with
images (a vision request: the captioner's) is answered with a caption that says how many images
it saw and the emotion hint it was given; its log entry has kind "caption" and ``images``.

Every request is logged (arrival time, caption, tags, attempt, status); ``max_in_flight`` is
the most requests it was handling at once.
"""

import asyncio
import gzip
import json
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

_CAPTION = re.compile(r"(?:Caption|Scene): (.+)$", re.MULTILINE)
_TAG = re.compile(r"#([a-z0-9-]+)")
CHUNK = 64 * 1024  # what a streamed answer is written in


@dataclass
class Logged:
    at: float
    caption: str
    kind: str  # cot | direct | scene | caption
    tags: set
    attempt: int
    images: int = 0  # image_url parts in a vision request
    query: str = ""  # the request's query string
    status: int = 200
    done_at: float = 0.0
    body: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)


_ENTRY = web.RequestKey("entry", Logged)


def good_answer(caption: str, lists: bool = False, paper: bool = False) -> dict:
    instruments = ["piano", "strings"] if lists else "piano, strings"
    if paper:
        return {"image_description": caption, "step1 reasoning": f"The caption shows: {caption}",
                "visual elements": {"object": "the scene", "emotion": "calm", "dynamic": "slow", "color": "warm"},
                "visual description": caption, "step2 reasoning": "Calm and slow visuals suit gentle music.",
                "music elements": {"genre": "ambient", "instruments": instruments, "emotion": "serene",
                                   "rhythm": "slow"},
                "step3 reasoning": "Together: a gentle ambient piece.",
                "music description": f"Gentle ambient piano and strings for: {caption}"}
    return {
        "step1": {"reasoning": f"The caption shows: {caption}",
                  "visual_elements": {"object": "the scene", "emotion": "calm", "dynamic": "slow",
                                      "color": "warm"},
                  "visual_description": caption},
        "step2": {"reasoning": "Calm and slow visuals suit gentle music.",
                  "music_elements": {"genre": "ambient", "instruments": instruments, "emotion": "serene",
                                     "rhythm": "slow"}},
        "step3": {"music_description": f"Gentle ambient piano and strings for: {caption}"},
    }


class FakeOpenAI:
    """Start with ``start()``; ``base_url`` is then ready for ``openai.AsyncOpenAI(base_url=...)``."""

    def __init__(self, latency: float = 0.0, slow_s: float = 2.0, retry_after: str = "1", trickle_s: float = 0.05,
                 huge_bytes: int = 64 * 1024 * 1024, long_field: int = 100_000, forced: dict | None = None):
        self.latency, self.slow_s, self.retry_after = latency, slow_s, retry_after
        self.trickle_s, self.huge_bytes, self.long_field = trickle_s, huge_bytes, long_field
        self.forced = Counter(forced or {})
        self.log: list[Logged] = []
        self.attempts: Counter = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner = None

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> "FakeOpenAI":
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def _serve(self) -> int:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(self._runner, sock)
        await site.start()
        return sock.getsockname()[1]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def reset(self) -> None:
        """Forget the log and the peak (attempt counts are kept: they drive the tags)."""
        self.log.clear()
        self.max_in_flight = 0

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- queries -----------------------------------------------------------------------
    def requests_for(self, text: str) -> list[Logged]:
        return [entry for entry in self.log if text in entry.caption]

    def span(self) -> float:
        """Seconds from the first arrival to the last answer."""
        done = [e for e in self.log if e.done_at]
        return max(e.done_at for e in done) - min(e.at for e in done) if done else 0.0

    def mean_in_flight(self) -> float:
        """Average requests in flight between the first arrival and the last answer."""
        done = [e for e in self.log if e.done_at]
        if not done:
            return 0.0
        span = max(e.done_at for e in done) - min(e.at for e in done)
        return sum(e.done_at - e.at for e in done) / span if span > 0 else 0.0

    # --- the endpoint --------------------------------------------------------------------
    async def _chat(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._respond(request)
        finally:
            self.in_flight -= 1
            if _ENTRY in request:
                request[_ENTRY].done_at = time.monotonic()

    async def _respond(self, request: web.Request) -> web.Response:
        body = await request.json()
        first_user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        if isinstance(first_user, list):
            return self._caption(body, first_user, request)
        matches = _CAPTION.findall(first_user)
        caption = matches[-1].strip() if matches else ""
        kind = "scene" if "Scene: " in first_user else ("cot" if "Step 1" in first_user else "direct")
        tags = set(_TAG.findall(caption)) | self._forced()
        paper = "paper" in tags or ('"step1 reasoning"' in first_user and "v1" not in tags)
        attempt = self.attempts[caption]
        self.attempts[caption] += 1
        entry = Logged(time.monotonic(), caption, kind, tags, attempt, query=request.query_string, body=body,
                       headers=dict(request.headers))
        self.log.append(entry)
        request[_ENTRY] = entry

        if self.latency:
            await asyncio.sleep(self.latency)
        if "slow-always" in tags or ("slow" in tags and attempt == 0):
            await asyncio.sleep(self.slow_s)
        if "429" in tags and attempt == 0:
            return self._error(entry, 429, "Rate limit reached for requests", {"Retry-After": self.retry_after})
        if "500-always" in tags or ("500" in tags and attempt < 2):
            return self._error(entry, 500, "The server had an error while processing your request")
        if "400" in tags:
            return self._error(entry, 400, "Invalid value for 'messages'")
        if "nojsonmode" in tags and "response_format" in body:
            return self._error(entry, 400, "response_format is not supported by this model")

        if tags & {"trickle", "huge", "huge-declared", "gzip"}:
            return await self._faulty(request, body, caption, tags, paper)

        finish = "stop"
        if kind == "scene":
            content = f"A wide view of {caption.rstrip('.')}, in soft light."
        elif kind == "direct":
            content = json.dumps({"music_description": f"Gentle ambient music for: {caption}"})
        elif "badjson" in tags or ("badjson-once" in tags and attempt == 0):
            content = "Sure! Here is the music: calm piano, slow tempo. {step1: not json}"
        elif "missing" in tags:
            answer = good_answer(caption, paper=paper)
            del (answer["music elements"] if paper else answer["step2"]["music_elements"])["rhythm"]
            content = json.dumps(answer)
        elif "longfield" in tags:
            answer = good_answer(caption, paper=paper)
            description = "calm piano " * (self.long_field // 11 + 1)
            answer["music description" if paper else "step3"] = (description if paper else
                                                                 {"music_description": description})
            content = json.dumps(answer)
        elif "length" in tags:
            full = json.dumps(good_answer(caption, paper=paper), indent=2)
            content, finish = full[: len(full) // 2], "length"
        elif "fenced" in tags:
            fenced = json.dumps(good_answer(caption, paper=paper), indent=2)
            content = f"Here is my reasoning as JSON:\n```json\n{fenced}\n```\nEnjoy!"
        else:
            content = json.dumps(good_answer(caption, lists="lists" in tags, paper=paper))
        return self._completion(body, content, finish)

    def _forced(self) -> set:
        """The tags ``forced`` still gives, one request fewer for each."""
        tags = {tag for tag, left in self.forced.items() if left > 0}
        self.forced.subtract(tags)
        return tags

    async def _faulty(self, request: web.Request, body: dict, caption: str, tags: set,
                      paper: bool) -> web.StreamResponse:
        """An answer sent slowly, huge or compressed, over a streamed response."""
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if "trickle" in tags or "gzip" in tags:
            data = json.dumps(self._envelope(body, json.dumps(good_answer(caption, paper=paper)), "stop")).encode()
            if "gzip" in tags:
                data = gzip.compress(data)
                response.headers["Content-Encoding"] = "gzip"
            response.content_length = len(data)
            await response.prepare(request)
            step = 1 if "trickle" in tags else len(data)
            for at in range(0, len(data), step):
                await response.write(data[at:at + step])
                if "trickle" in tags:
                    await asyncio.sleep(self.trickle_s)
            return response
        head, tail = json.dumps(self._envelope(body, "\0", "stop")).encode().split(b"\\u0000")
        if "huge-declared" in tags:
            response.content_length = len(head) + self.huge_bytes + len(tail)
        await response.prepare(request)
        await response.write(head)
        chunk = b"x" * CHUNK
        for at in range(0, self.huge_bytes, CHUNK):
            await response.write(chunk[: self.huge_bytes - at])
        await response.write(tail)
        return response

    def _caption(self, body: dict, parts: list[dict], request: web.Request) -> web.Response:
        """A vision request: a caption naming what it was sent."""
        text = " ".join(part.get("text", "") for part in parts if part.get("type") == "text")
        urls = [part["image_url"]["url"] for part in parts if part.get("type") == "image_url"]
        entry = Logged(time.monotonic(), text, "caption", set(), 0, images=len(urls), body=body,
                       headers=dict(request.headers))
        self.log.append(entry)
        request[_ENTRY] = entry
        if not urls or not all(url.startswith("data:image/jpeg;base64,") for url in urls):
            return self._error(entry, 400, "expected image_url parts holding base64 JPEG data URLs")
        emotion = re.search(r'the emotion "([^"]+)"', text)
        mood = f"{emotion.group(1)} " if emotion else ""
        return self._completion(body, f"A {mood}scene seen in {len(urls)} picture(s), with bright moving shapes.",
                                "stop")

    def _completion(self, body: dict, content: str, finish: str) -> web.Response:
        return web.json_response(self._envelope(body, content, finish))

    def _envelope(self, body: dict, content: str, finish: str) -> dict:
        prompt_tokens = sum(len(m.get("content") or "") for m in body["messages"]) // 4
        completion_tokens = max(1, len(content) // 4)
        return {
            "id": f"chatcmpl-{len(self.log)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    def _error(self, entry: Logged, status: int, message: str, headers: dict | None = None) -> web.Response:
        entry.status = status
        kind = {429: "rate_limit_exceeded", 500: "server_error"}.get(status, "invalid_request_error")
        return web.json_response({"error": {"message": message, "type": kind, "param": None, "code": None}},
                                 status=status, headers=headers)
