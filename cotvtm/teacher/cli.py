"""The ``label`` command (``cotvtm label``, ``python -m jobs.build_dataset``): options -> config -> build.

Exit status: 0 every caption has a label, 1 the build finished but some captions failed
(their reasons are in the labels), 2 a usage or set-up error.
"""

import argparse

from cotvtm.errors import CotvtmError
from cotvtm.teacher.captioner import BLIP_DEFAULT, CaptionerConfig
from cotvtm.teacher.settings import OPENAI_URL, SCENE_WRITERS, BuildConfig, EndpointConfig
from cotvtm.teacher.prompt import COT_PROMPT_VERSIONS, PROMPT_VERSION

HELP = "label captions with the chain-of-thought teacher (an LLM endpoint, or offline rules)"


def add_options(p: argparse.ArgumentParser) -> None:
    d = EndpointConfig(model="")
    p.add_argument("manifests", nargs="*", metavar="MANIFEST",
                   help="caption manifests (.jsonl, .csv, .parquet) with id, caption and optional image/video/media")
    p.add_argument("-o", "--out", required=True, help="output folder; labels go to OUT/labels-<prompt>-<model>/")
    g = p.add_argument_group("generated scenes")
    g.add_argument("--scenes", type=int, default=0, metavar="N", help="also label N generated scene descriptions")
    g.add_argument("--seed", type=int, default=0, help="seed of the scene sampler")
    g.add_argument("--scene-writer", choices=SCENE_WRITERS, default=None,
                   help="who writes the scene descriptions (default: llm with an endpoint, template without)")
    c = p.add_argument_group("captions for media without one (rows with an image or video and no caption)")
    c.add_argument("--captioner-model", default=None,
                   help="a vision model on an OpenAI-compatible endpoint (images sent as data URLs)")
    c.add_argument("--captioner-base-url", default=None, help="its endpoint (default: the teacher's --base-url)")
    c.add_argument("--captioner-local", default=None, metavar="REF",
                   help=f"a local BLIP (hub id, folder, or 'tiny'); the default without --captioner-model: "
                        f"{BLIP_DEFAULT}")
    c.add_argument("--cache-dir", default=None, help="where the tiny captioner is built")
    e = p.add_argument_group("teacher endpoint (none given: the offline rule-based teacher)")
    e.add_argument("--base-url", "--endpoint", dest="base_url", default=None,
                   help=f"OpenAI-compatible base URL (default with --model: {OPENAI_URL})")
    e.add_argument("--model", default=None, help="model (or Azure deployment) name")
    e.add_argument("--api-key-env", default=d.api_key_env, help="environment variable holding the API key")
    e.add_argument("--api-version", default=None, help="Azure OpenAI API version (deployment-style Azure URLs)")
    e.add_argument("--temperature", type=float, default=d.temperature)
    e.add_argument("--max-tokens", type=int, default=d.max_tokens, help="completion token limit (0: none sent)")
    e.add_argument("--no-json-mode", action="store_true", help="do not send response_format=json_object")
    e.add_argument("--timeout", type=float, default=d.timeout_s,
                   help="seconds one request may take in all, connect to last byte")
    e.add_argument("--max-retries", type=int, default=d.max_retries, help="retries per request (429, 5xx, timeouts)")
    e.add_argument("--backoff", type=float, default=d.backoff_s, help="first retry delay in seconds (doubles)")
    e.add_argument("--repair-attempts", type=int, default=d.repair_attempts,
                   help="extra turns when the answer is not the required JSON")
    r = p.add_argument_group("limits and cost")
    r.add_argument("--concurrency", type=int, default=d.concurrency, help="requests in flight, in total")
    r.add_argument("--rpm", type=float, default=None, help="requests per minute, in total")
    r.add_argument("--tpm", type=float, default=None, help="tokens per minute, in total")
    r.add_argument("--price-in", type=float, default=None, help="USD per 1M prompt tokens (for the estimate)")
    r.add_argument("--price-out", type=float, default=None, help="USD per 1M completion tokens")
    b = p.add_argument_group("run")
    b.add_argument("--prompt", choices=COT_PROMPT_VERSIONS, default=PROMPT_VERSION,
                   help="the chain-of-thought prompt: the paper's (Appendix A) or the earlier cot-v1")
    b.add_argument("--no-cot", action="store_true", help="direct prompt, caption -> music description (baseline)")
    b.add_argument("--retry-failed", action="store_true", help="send captions whose last attempt failed again")
    b.add_argument("--recipe", action="store_true",
                   help="only report, per part of the paper's training mix, how many records the manifests give "
                        "and how many are labelled (against the paper's 10k/10k/11k/10k); labels nothing")
    b.add_argument("--shard-size", type=int, default=1000, help="records per part file")
    b.add_argument("--actors", type=int, default=1, help="labelling actors (limits are split between them)")
    b.add_argument("--batch-size", type=int, default=None, help="captions per actor batch")


def config_from_args(a: argparse.Namespace) -> BuildConfig:
    endpoint = None
    if a.base_url or a.model:
        if not a.model:
            raise CotvtmError("--base-url needs --model (the model or deployment name the endpoint serves)")
        endpoint = EndpointConfig(
            model=a.model, base_url=a.base_url or OPENAI_URL, api_key_env=a.api_key_env, api_version=a.api_version,
            temperature=a.temperature, json_mode=not a.no_json_mode, max_tokens=a.max_tokens, timeout_s=a.timeout,
            max_retries=a.max_retries, backoff_s=a.backoff, repair_attempts=a.repair_attempts,
            concurrency=a.concurrency, rpm=a.rpm, tpm=a.tpm, price_in=a.price_in, price_out=a.price_out)
    return BuildConfig(out=a.out, manifests=tuple(a.manifests), scenes=a.scenes, seed=a.seed, endpoint=endpoint,
                       cot=not a.no_cot, prompt=a.prompt, captioner_base_url=a.captioner_base_url,
                       captioner=CaptionerConfig(model=a.captioner_model, local=a.captioner_local),
                       cache_dir=a.cache_dir, retry_failed=a.retry_failed, scene_writer=a.scene_writer,
                       shard_size=a.shard_size, actors=a.actors, batch_size=a.batch_size).validate()


def run_label(a: argparse.Namespace) -> int:
    from cotvtm.api import label

    cfg = config_from_args(a)
    if a.recipe:
        from cotvtm.teacher.build import recipe

        recipe(cfg)
        return 0
    return label(cfg.out, config=cfg).exit_code


def add_subcommand(subparsers) -> argparse.ArgumentParser:
    """Register ``label`` on a parent parser's subparsers (``cotvtm label ...``)."""
    p = subparsers.add_parser("label", help=HELP, description=HELP)
    add_options(p)
    p.set_defaults(func=run_label)
    return p


def parser(prog: str = "python -m jobs.build_dataset") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=HELP, epilog=__doc__.split("\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(p)
    return p


def main(argv: list[str] | None = None, prog: str = "python -m jobs.build_dataset") -> int:
    from cotvtm.errors import guarded

    args = parser(prog).parse_args(argv)
    return guarded(lambda: run_label(args), prog.split()[-1])
