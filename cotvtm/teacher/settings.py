"""Settings of a labelling run: the teacher endpoint (when there is one) and the build.

``EndpointConfig`` is the one declaration of the teacher endpoint: every command that talks
to a teacher (``label``, ``evaluate``, ``soundtrack --conditioning teacher``) takes its
settings, under the same ``--teacher-*`` flags.
"""

import os
import re
from dataclasses import dataclass, replace
from urllib.parse import urlparse, urlsplit, urlunsplit

from cotvtm.errors import CotvtmError
from cotvtm.options import Checked, at_least, positive, setting, split
from cotvtm.teacher.captioner import BLIP_DEFAULT, CaptionerConfig
from cotvtm.teacher.prompt import COT_PROMPT_VERSIONS, PROMPT_VERSION

OPENAI_URL = "https://api.openai.com/v1"
SCENE_WRITERS = ("template", "llm")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_NOT_NEGATIVE = (lambda v: v >= 0, "{flag} must not be negative")


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


class _ShownMessage(str):
    """A check's message that names the value as ``shown_url`` shows it (no credentials)."""

    def format(self, *args, **kwargs):
        return super().format(*args, **{**kwargs, "value": shown_url(str(kwargs.get("value", "")))})


def _http_url(url: str) -> bool:
    parts = urlparse(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


_HTTP_URL = (_http_url, _ShownMessage("{flag} must be an http(s) URL, not {value!r}"))


@dataclass(frozen=True)
class EndpointConfig(Checked):
    """An OpenAI-compatible chat endpoint and how hard to push it. No ``teacher_model``: no
    endpoint (the offline rule-based teacher, where a command has one)."""

    teacher_url: str | None = setting(None, metavar="URL", check=_HTTP_URL,
                                      help="the teacher's OpenAI-compatible base URL",
                                      shown_default=f"{OPENAI_URL} with --teacher-model")
    teacher_model: str | None = setting(None, metavar="NAME",
                                        check=(bool, "{flag} must name the model (or deployment) the endpoint "
                                                     "serves"),
                                        help="the model (or Azure deployment) the teacher endpoint serves; none: "
                                             "no endpoint")
    teacher_key_env: str = setting("OPENAI_API_KEY", metavar="VAR",
                                   help="the environment variable holding the teacher endpoint's API key (each "
                                        "node's own environment: it is never passed to Ray)")
    teacher_api_version: str | None = setting(None, metavar="VERSION",
                                              help="Azure OpenAI API version (deployment-style Azure URLs; "
                                                   "--teacher-model is then the deployment name)")
    teacher_temperature: float | None = setting(0.7, metavar="T", help="the teacher's sampling temperature")
    teacher_json_mode: bool = setting(True, flag="--teacher-no-json-mode",
                                      help="do not send response_format=json_object (dropped anyway when the "
                                           "server rejects it)")
    teacher_max_tokens: int = setting(1024, metavar="N", check=at_least(0),
                                      help="completion token limit per teacher request (0: none sent)")
    teacher_timeout: float = setting(60.0, metavar="SECONDS", check=positive(),
                                     help="seconds one teacher request may take in all, connect to last byte")
    teacher_retries: int = setting(6, metavar="N", check=at_least(0),
                                   help="retries per teacher request (429, 5xx, timeouts, connection errors)")
    teacher_backoff: float = setting(0.5, metavar="SECONDS", check=_NOT_NEGATIVE,
                                     help="first retry delay in seconds (doubles each retry, when the server "
                                          "sends no Retry-After)")
    teacher_repair_attempts: int = setting(2, metavar="N", check=at_least(0),
                                           help="extra turns when the teacher's answer is not the required JSON")
    teacher_concurrency: int = setting(16, metavar="N", check=at_least(1),
                                       help="teacher requests in flight, all actors together")
    teacher_rpm: float | None = setting(None, metavar="N", check=positive(),
                                        help="teacher requests per minute, all actors together",
                                        shown_default="no limit")
    teacher_tpm: float | None = setting(None, metavar="N", check=positive(),
                                        help="teacher tokens per minute (prompt + token limit estimate), all actors "
                                             "together", shown_default="no limit")
    teacher_price_in: float | None = setting(None, check=_NOT_NEGATIVE, metavar="USD",
                                             help="USD per 1M prompt tokens, for the cost estimate")
    teacher_price_out: float | None = setting(None, check=_NOT_NEGATIVE, metavar="USD",
                                              help="USD per 1M completion tokens, for the cost estimate")
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 120.0  # a longer Retry-After is capped to this

    RELATIONS = ((lambda e: e.teacher_url is None or e.teacher_model is not None,
                  "--teacher-url needs --teacher-model (the model or deployment name the endpoint serves)"),)

    @property
    def url(self) -> str:
        """The base URL requests go to: ``teacher_url``, else OpenAI's."""
        return self.teacher_url or OPENAI_URL

    def api_key(self) -> str:
        """The key from the named environment variable; hosted services need one, local servers may not."""
        key = os.environ.get(self.teacher_key_env, "")
        host = urlparse(self.url).hostname or ""
        if not key and (host.endswith("openai.com") or host.endswith("azure.com") or self.teacher_api_version):
            raise CotvtmError(f"{self.teacher_key_env} is not set: export the API key for {host} "
                              f"(or name another variable with --teacher-key-env)")
        return key or "not-needed"

    def request_bound_s(self) -> float:
        """The longest one request can take, retries included: every attempt at ``teacher_timeout``,
        every pause between two at its cap (the backoff's or a Retry-After's)."""
        pause = max(self.max_backoff_s, self.max_retry_after_s)
        return (self.teacher_retries + 1) * self.teacher_timeout + self.teacher_retries * pause

    def caption_bound_s(self) -> float:
        """The longest one caption's answer can take: every turn, repairs included, at its bound."""
        return (self.teacher_repair_attempts + 1) * self.request_bound_s()

    def share(self, actors: int) -> "EndpointConfig":
        """This actor's part of the global concurrency and rate limits."""
        if actors <= 1:
            return self
        part = lambda value: None if value is None else value / actors  # noqa: E731
        return replace(self, teacher_concurrency=max(1, self.teacher_concurrency // actors),
                       teacher_rpm=part(self.teacher_rpm), teacher_tpm=part(self.teacher_tpm))

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Estimated USD, or None when no prices are configured."""
        if self.teacher_price_in is None and self.teacher_price_out is None:
            return None
        return (prompt_tokens * (self.teacher_price_in or 0) + completion_tokens * (self.teacher_price_out or 0)) / 1e6

    def named(self) -> "EndpointConfig | None":
        """This endpoint when it names a model, else None (no endpoint: the offline teacher)."""
        return self if self.teacher_model is not None else None



class LabelEndpoint(EndpointConfig):
    """The teacher endpoint as ``cotvtm label`` takes it: with the flags it had before the
    endpoint was declared once for every command, each kept one release (they warn). Only
    here: ``--temperature`` is MusicGen's in ``soundtrack``, ``--endpoint`` short for
    ``--endpoint-url`` there."""

    RENAMED = {"--base-url": ("teacher_url",), "--endpoint": ("teacher_url",), "--model": ("teacher_model",),
               "--api-key-env": ("teacher_key_env",), "--api-version": ("teacher_api_version",),
               "--temperature": ("teacher_temperature",), "--no-json-mode": ("teacher_json_mode",),
               **{f"--{name}": (f"teacher_{name.replace('-', '_')}",) for name in (
                   "max-tokens", "timeout", "backoff", "repair-attempts", "concurrency", "rpm", "tpm", "price-in",
                   "price-out")},
               "--max-retries": ("teacher_retries",)}

@dataclass(frozen=True)
class BuildConfig(Checked):
    """One dataset build: inputs, teacher, output."""

    out: str | None = setting(None, short="-o",
                              help="the output folder (required): labels go to OUT/labels-<prompt>-<model>/")
    manifests: tuple[str, ...] = setting(factory=tuple, positional=True, metavar="MANIFEST",
                                         help="caption manifests (.jsonl, .csv, .parquet) with id, caption and "
                                              "optional image/video/media")
    scenes: int = setting(0, metavar="N", check=_NOT_NEGATIVE, help="also label N generated scene descriptions")
    seed: int = setting(0, help="seed of the scene sampler")
    scene_writer: str | None = setting(None, choices=SCENE_WRITERS, help="who writes the scene descriptions",
                                       shown_default="llm with an endpoint, template without")
    cot: bool = setting(True, flag="--no-cot", help="direct prompt, caption -> music description (baseline)")
    prompt: str = setting(PROMPT_VERSION, choices=COT_PROMPT_VERSIONS,
                          help="the chain-of-thought prompt: the paper's (Appendix A) or the earlier cot-v1")
    retry_failed: bool = setting(False, help="send captions whose last attempt failed again")
    captioner_model: str | None = setting(None, metavar="NAME",
                                          help="who captions media without a caption: a vision model on an "
                                               "OpenAI-compatible endpoint (images sent as data URLs)")
    captioner_url: str | None = setting(None, metavar="URL", check=_HTTP_URL, renamed=("--captioner-base-url",),
                                        help="the vision model's endpoint", shown_default="the teacher's")
    captioner_local: str | None = setting(None, metavar="REF", shown_default=BLIP_DEFAULT,
                                          help="without --captioner-model: a local BLIP (hub id, folder, or 'tiny')")
    cache_dir: str | None = setting(None, metavar="DIR", help="where the tiny captioner is built")
    shard_size: int = setting(1000, metavar="N", check=at_least(1), help="records per part file")
    actors: int = setting(1, metavar="N", check=at_least(1),
                          help="labelling actors, among which the endpoint's limits are split")
    batch_size: int | None = setting(None, metavar="N", check=at_least(1), help="captions per actor batch",
                                     shown_default="512 offline; with an endpoint twice an actor's share of "
                                                   "--teacher-concurrency, at least 8")
    endpoint: EndpointConfig | None = None  # None: the offline teacher
    progress_s: float = 5.0

    RELATIONS = ((lambda c: c.out is not None, "--out is required: the folder the labels go to"),
                 (lambda c: c.manifests or c.scenes > 0, "nothing to label: give caption manifests and/or --scenes N"),
                 (lambda c: c.writer() != "llm" or c.endpoint is not None,
                  "--scene-writer llm needs an endpoint (--teacher-url/--teacher-model)"))

    @property
    def captioner(self) -> CaptionerConfig:
        """Who writes captions for media without one."""
        return CaptionerConfig(model=self.captioner_model, local=self.captioner_local)

    def captioner_endpoint(self) -> EndpointConfig | None:
        """The vision captioner's endpoint: the teacher's settings, its own model (and URL)."""
        if not self.captioner_model:
            return None
        base = self.endpoint or EndpointConfig()
        return replace(base, teacher_model=self.captioner_model, teacher_url=self.captioner_url or base.url,
                       teacher_json_mode=False)

    def writer(self) -> str:
        return self.scene_writer or ("llm" if self.endpoint is not None else "template")


def build_config(out, config: BuildConfig | None = None, **settings) -> BuildConfig:
    """The build that ``settings`` name by field (``BuildConfig``'s and ``EndpointConfig``'s, an
    ``endpoint`` whole too), over ``config`` when given, writing to ``out``. The endpoint: the
    teacher settings over ``config``'s (or ``endpoint``), None when they name no model."""
    build, teacher = split(settings, BuildConfig, LabelEndpoint)
    if "manifests" in build:
        build["manifests"] = tuple(str(m) for m in build["manifests"])
    base = build.pop("endpoint", config.endpoint if config is not None else None)
    endpoint = replace(base or EndpointConfig(), **teacher).named() if teacher else base
    given = {**build, "out": None if out is None else str(out), "endpoint": endpoint}
    return replace(config, **given) if config is not None else BuildConfig(**given)
