"""The ``evaluate`` command (``cotvtm evaluate``, ``python -m jobs.evaluate``): options -> config -> one call.

Exit status: 0 the table and plots were written, 2 a usage or set-up error (bad manifest,
missing file, unknown model), reported in one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cotvtm.settings import READERS, default_device
from cotvtm.errors import CotvtmError
from cotvtm.eval.external import parse as parse_external
from cotvtm.eval.settings import METHODS, ROLES, EvalConfig
from cotvtm.models import PRESET_NAMES

HELP = ("score CoT-VTM, its ablations, retrieval, the caption/LLM baselines and other systems' audio on a paired test "
        "set (FD, FAD, KL, IB, EMS, P@10)")


def add_options(p: argparse.ArgumentParser) -> None:
    d = EvalConfig(testset="", out="")
    p.add_argument("testset", help="manifest (.jsonl or .csv): id, visual (video or image), audio, [caption]")
    p.add_argument("out", help="output folder: results.md/.csv/.json, metrics.png, tradeoff.png, audio/")
    p.add_argument("--method", action="append", choices=METHODS, help="method to run (repeat; default: all)")
    m = p.add_argument_group("generation models")
    m.add_argument("--preset", default=d.preset, choices=PRESET_NAMES)
    for name in ("clip", "t5", "musicgen", "rationale"):
        m.add_argument(f"--{name}", default=None, metavar="REF")
    m.add_argument("--prior-full", metavar="DIR", help="prior checkpoint for cot-vtm")
    m.add_argument("--prior-mlp-mlp", metavar="DIR", help="prior checkpoint for the mlp_mlp ablation")
    m.add_argument("--prior-no-rationale", metavar="DIR", help="prior checkpoint for the no_rationale ablation")
    m.add_argument("--untrained-priors", action="store_true",
                   help="tiny preset: use random priors instead of distilling small ones first")
    m.add_argument("--bank", metavar="FILE", help="the retrieval method's bank (default: the shipped scene bank)")
    m.add_argument("--retrieval-k", type=int, default=d.retrieval_k,
                   help="the retrieval method draws among this many nearest captions")
    m.add_argument("--external", action="append", metavar="NAME=DIR",
                   help="score audio another system made for the test set: exactly one file per item, DIR/<id>.<ext> "
                        "in DIR itself (id as audio/<method>/ names them; subfolders are not searched), any common "
                        "audio format, local or s3://; only the item's length is decoded (repeat)")
    m.add_argument("--captioner", default=None, help="'retrieval' or blip:REF (default: retrieval for tiny, "
                                                      "BLIP-large otherwise)")
    m.add_argument("--captions", default=d.captions, choices=["model", "manifest"],
                   help="caption source for the caption baselines (manifest: its captions where given)")
    m.add_argument("--cache-dir", type=Path, default=None, help="where tiny models are built")
    t = p.add_argument_group("teacher for cot2music / llm2music (none: the offline teacher)")
    t.add_argument("--base-url", default=None, help="OpenAI-compatible base URL")
    t.add_argument("--model", default=None, help="model name at the endpoint")
    t.add_argument("--api-key-env", default="OPENAI_API_KEY")
    e = p.add_argument_group("evaluation models (KIND:LOCATION; see cotvtm/eval/embedders.py)")
    for role in ROLES:
        e.add_argument(f"--{role.replace('_', '-')}", dest=f"eval_{role}", default=None, metavar="REF")
    s = p.add_argument_group("test items and sampling")
    s.add_argument("--window-seconds", type=float, default=d.window_s)
    s.add_argument("--frames-per-window", type=int, default=d.frames_per_window)
    s.add_argument("--frame-reader", default=d.frame_reader, choices=READERS)
    s.add_argument("--guidance-scale", type=float, default=d.guidance_scale)
    s.add_argument("--top-k", type=int, default=d.top_k)
    s.add_argument("--prior-steps", type=int, default=None)
    s.add_argument("--batch-size", type=int, default=d.batch_size, help="items per model batch")
    s.add_argument("--k", type=int, default=d.k, help="P@k cut-off")
    s.add_argument("--distractors", type=int, default=d.distractors, help="random distractors per P@k query")
    s.add_argument("--seed", type=int, default=d.seed)
    s.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    s.add_argument("--no-audio", action="store_true", help="do not write the generated audio")


def config_from_args(a: argparse.Namespace) -> EvalConfig:
    from cotvtm.teacher.settings import EndpointConfig

    endpoint = None
    if a.base_url or a.model:
        if not a.model:
            raise CotvtmError("--base-url needs --model")
        endpoint = EndpointConfig(model=a.model, base_url=a.base_url or "https://api.openai.com/v1",
                                  api_key_env=a.api_key_env)
    priors = {"full": a.prior_full, "mlp_mlp": a.prior_mlp_mlp, "no_rationale": a.prior_no_rationale}
    return EvalConfig(
        testset=a.testset, out=a.out, preset=a.preset, methods=tuple(dict.fromkeys(a.method or METHODS)),
        priors={k: v for k, v in priors.items() if v}, train_tiny_priors=not a.untrained_priors,
        model_overrides={k: getattr(a, k) for k in ("clip", "t5", "musicgen", "rationale") if getattr(a, k)},
        eval_overrides={r: getattr(a, f"eval_{r}") for r in ROLES if getattr(a, f"eval_{r}")},
        bank=a.bank, retrieval_k=a.retrieval_k, external=parse_external(a.external or []),
        captioner=a.captioner, captions=a.captions, endpoint=endpoint, window_s=a.window_seconds,
        frames_per_window=a.frames_per_window, frame_reader=a.frame_reader, guidance_scale=a.guidance_scale,
        top_k=a.top_k, prior_steps=a.prior_steps, batch_size=a.batch_size, k=a.k, distractors=a.distractors,
        seed=a.seed, device=a.device or default_device(), cache_dir=a.cache_dir, save_audio=not a.no_audio,
    ).validate()




def run_evaluate(a: argparse.Namespace) -> int:
    from cotvtm.eval.run import run_evaluation, summary_lines

    outcome = run_evaluation(config_from_args(a))
    print(outcome.paths["results.md"].read_text(encoding="utf-8"))
    for line in summary_lines(outcome):
        print(line)
    return 0


def add_subcommand(subparsers) -> argparse.ArgumentParser:
    """Register ``evaluate`` on a parent parser's subparsers (``cotvtm evaluate ...``)."""
    p = subparsers.add_parser("evaluate", help=HELP, description=HELP)
    add_options(p)
    p.set_defaults(func=run_evaluate)
    return p


def main(argv: list[str] | None = None, prog: str = "python -m jobs.evaluate") -> int:
    p = argparse.ArgumentParser(prog=prog, description=HELP)
    add_options(p)
    args = p.parse_args(argv)
    from cotvtm.errors import guarded

    return guarded(lambda: run_evaluate(args), "evaluate")
