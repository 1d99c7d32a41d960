"""Settings of a labelling run: the endpoint (when there is one) and the build."""

import os
import re
from dataclasses import dataclass, replace
from urllib.parse import urlparse, urlsplit, urlunsplit

from cotvtm.errors import CotvtmError
from cotvtm.teacher.captioner import CaptionerConfig
from cotvtm.teacher.prompt import COT_PROMPT_VERSIONS, PROMPT_VERSION

OPENAI_URL = "https://api.openai.com/v1"
SCENE_WRITERS = ("template", "llm")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def shown_url(url: str) -> str:
    """``url`` as it may be shown or recorded: without userinfo (``user:token@``), query or
    fragment, where credentials ride. Requests still use the full URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unparsable URL)"
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def redact_urls(text: str) -> str:
    """``text`` (an error message, say) with every URL in it as ``shown_url`` shows it."""
    return _URL.sub(lambda match: shown_url(match.group()), text)


@dataclass(frozen=True)
class EndpointConfig:
    """An OpenAI-compatible chat endpoint and how hard to push it."""

    model: str
    base_url: str = OPENAI_URL
    api_key_env: str = "OPENAI_API_KEY"
    api_version: str | None = None  # set: Azure OpenAI (deployment-style URL); model = deployment name
    temperature: float | None = 0.7
    json_mode: bool = True  # response_format={"type": "json_object"}; dropped if the server rejects it
    max_tokens: int = 1024  # 0: no limit sent
    timeout_s: float = 60.0  # one whole request, connect to last byte (not each socket read)
    max_retries: int = 6  # per request, for 429, 5xx, timeouts and connection errors
    backoff_s: float = 0.5  # first retry delay; doubles each retry (when there is no Retry-After)
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 120.0  # a longer Retry-After is capped to this
    repair_attempts: int = 2  # extra turns when the answer is not the required JSON
    concurrency: int = 16  # requests in flight, all actors together
    rpm: float | None = None  # requests per minute, all actors together
    tpm: float | None = None  # tokens per minute (prompt + max_tokens estimate), all actors together
    price_in: float | None = None  # USD per 1M prompt tokens
    price_out: float | None = None  # USD per 1M completion tokens

    def validate(self) -> "EndpointConfig":
        if not self.model:
            raise CotvtmError("--model is required with an endpoint (the model or deployment name it serves)")
        url = urlparse(self.base_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise CotvtmError(f"--base-url must be an http(s) URL, not {shown_url(self.base_url)!r}")
        for name, value, low in (("--concurrency", self.concurrency, 1), ("--max-retries", self.max_retries, 0),
                                 ("--repair-attempts", self.repair_attempts, 0), ("--max-tokens", self.max_tokens, 0)):
            if value < low:
                raise CotvtmError(f"{name} must be at least {low}")
        for name, value in (("--timeout", self.timeout_s), ("--rpm", self.rpm), ("--tpm", self.tpm)):
            if value is not None and value <= 0:
                raise CotvtmError(f"{name} must be positive")
        for name, value in (("--price-in", self.price_in), ("--price-out", self.price_out),
                            ("--backoff", self.backoff_s)):
            if value is not None and value < 0:
                raise CotvtmError(f"{name} must not be negative")
        return self

    def api_key(self) -> str:
        """The key from the named environment variable; hosted services need one, local servers may not."""
        key = os.environ.get(self.api_key_env, "")
        host = urlparse(self.base_url).hostname or ""
        if not key and (host.endswith("openai.com") or host.endswith("azure.com") or self.api_version):
            raise CotvtmError(f"{self.api_key_env} is not set: export the API key for {host} "
                              f"(or name another variable with --api-key-env)")
        return key or "not-needed"

    def request_bound_s(self) -> float:
        """The longest one request can take, retries included: every attempt at ``timeout_s``,
        every pause between two at its cap (the backoff's or a Retry-After's)."""
        pause = max(self.max_backoff_s, self.max_retry_after_s)
        return (self.max_retries + 1) * self.timeout_s + self.max_retries * pause

    def caption_bound_s(self) -> float:
        """The longest one caption's answer can take: every turn, repairs included, at its bound."""
        return (self.repair_attempts + 1) * self.request_bound_s()

    def share(self, actors: int) -> "EndpointConfig":
        """This actor's part of the global concurrency and rate limits."""
        if actors <= 1:
            return self
        part = lambda value: None if value is None else value / actors  # noqa: E731
        return replace(self, concurrency=max(1, self.concurrency // actors), rpm=part(self.rpm), tpm=part(self.tpm))

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Estimated USD, or None when no prices are configured."""
        if self.price_in is None and self.price_out is None:
            return None
        return (prompt_tokens * (self.price_in or 0) + completion_tokens * (self.price_out or 0)) / 1e6


@dataclass(frozen=True)
class BuildConfig:
    """One dataset build: inputs, teacher, output."""

    out: str
    manifests: tuple[str, ...] = ()
    scenes: int = 0
    seed: int = 0
    endpoint: EndpointConfig | None = None  # None: the offline teacher
    cot: bool = True
    prompt: str = PROMPT_VERSION  # the chain-of-thought prompt: cot-paper-v1 (the paper's) or cot-v1
    retry_failed: bool = False
    scene_writer: str | None = None  # template | llm; default: llm with an endpoint, template without
    captioner: CaptionerConfig = CaptionerConfig()  # who writes captions for media without one
    captioner_base_url: str | None = None  # the vision endpoint; default: the teacher's
    cache_dir: str | None = None  # where a tiny captioner is built
    shard_size: int = 1000
    actors: int = 1
    batch_size: int | None = None
    progress_s: float = 5.0

    def validate(self) -> "BuildConfig":
        if not self.manifests and self.scenes <= 0:
            raise CotvtmError("nothing to label: give caption manifests and/or --scenes N")
        if self.prompt not in COT_PROMPT_VERSIONS:
            raise CotvtmError(f"--prompt must be one of {', '.join(COT_PROMPT_VERSIONS)}, not {self.prompt!r}")
        if self.scenes < 0:
            raise CotvtmError("--scenes must not be negative")
        if self.writer() not in SCENE_WRITERS:
            raise CotvtmError(f"--scene-writer must be one of {', '.join(SCENE_WRITERS)}")
        if self.writer() == "llm" and self.endpoint is None:
            raise CotvtmError("--scene-writer llm needs an endpoint (--base-url/--model)")
        if self.shard_size < 1 or self.actors < 1 or (self.batch_size is not None and self.batch_size < 1):
            raise CotvtmError("--shard-size, --actors and --batch-size must be at least 1")
        if self.endpoint is not None:
            self.endpoint.validate()
        return self

    def captioner_endpoint(self) -> EndpointConfig | None:
        """The vision captioner's endpoint: the teacher's settings, its own model (and URL)."""
        if not self.captioner.model:
            return None
        base = self.endpoint or EndpointConfig(model=self.captioner.model)
        url = self.captioner_base_url or (self.endpoint.base_url if self.endpoint else OPENAI_URL)
        return replace(base, model=self.captioner.model, base_url=url, json_mode=False).validate()

    def writer(self) -> str:
        return self.scene_writer or ("llm" if self.endpoint is not None else "template")
