"""One evaluation run: test set -> every method's music -> every metric -> table and plots.

It runs in one process, methods one after another, so that each method has the device to
itself while it is timed (Ray's scheduling would blur Table 5's time and memory columns).
Under ``ray job submit`` it runs as the job's driver.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cotvtm import models
from cotvtm.eval import embedders
from cotvtm.eval.settings import PRIOR_METHODS, EvalConfig
from cotvtm.eval.methods import Generated, Toolkit, run_method
from cotvtm.eval.priors import prepare_priors
from cotvtm.eval.report import Results, write_eval_report
from cotvtm.eval.score import GROUND_TRUTH, score
from cotvtm.eval.external import load_external
from cotvtm.eval.testset import REFERENCE_RATE, load_testset


@dataclass
class Evaluation:
    results: Results
    paths: dict[str, Path]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._#-]+", "_", name)


def _save(out: Path, generated: Generated, ids: list[str]) -> None:
    import soundfile as sf

    folder = out / "audio" / generated.method
    folder.mkdir(parents=True, exist_ok=True)
    for ident, clip in zip(ids, generated.audio):
        sf.write(folder / f"{_safe(ident)}.wav", clip, generated.sample_rate, subtype="FLOAT")


def _row(generated: Generated, values: dict, count: int) -> dict:
    return {"method": generated.method, **values,
            "map_s": generated.mapping.seconds / count, "map_mb": generated.mapping.peak_mb,
            "map_params_m": generated.mapping_params / 1e6,
            "decode_s": generated.decoding.seconds / count, "decode_mb": generated.decoding.peak_mb,
            "notes": list(dict.fromkeys(generated.notes))}


def run_evaluation(cfg: EvalConfig, echo: Callable[[str], None] = print) -> Evaluation:
    out = Path(cfg.out)
    cache = cfg.cache_dir or models.DEFAULT_CACHE
    testset = load_testset(cfg.testset, cfg)
    items = testset.items
    echo(f"evaluate: {len(items)} items from {testset.entries} entries in {cfg.testset}")
    external = {}
    for name, folder in cfg.external_folders.items():  # another system's music for the same items, read
        echo(f"evaluate: reading {name}'s audio from {folder}")  # first: a missing file fails before any generating
        external[name] = (load_external(name, folder, items), REFERENCE_RATE)
    refs = models.resolve(cfg.preset, cache_dir=cache, seed=cfg.tiny_seed, **cfg.model_overrides)
    eval_models = embedders.resolve_eval_models(cfg.preset, cache, cfg.tiny_seed, clip_ref=refs.clip,
                                                **cfg.eval_overrides)
    variants = [PRIOR_METHODS[m] for m in cfg.methods if m in PRIOR_METHODS]
    prior_dirs = prepare_priors(cfg, refs, variants, echo)

    kit = Toolkit(cfg, refs)
    outputs: list[Generated] = []
    texts = []
    for method in cfg.methods:
        echo(f"evaluate: generating with {method}")
        generated = run_method(kit, items, method, prior_dirs)
        outputs.append(generated)
        texts += [{"method": method, "item": i.id, "text": t} for i, t in zip(items, generated.texts) if t]
        if cfg.save_audio:
            _save(out, generated, [i.id for i in items])
    del kit
    gc.collect()

    made = {g.method: (g.audio, g.sample_rate) for g in outputs}
    table = score(eval_models, items, {**made, **external}, k=cfg.k, distractors=cfg.distractors, seed=cfg.seed,
                  device=cfg.device, echo=echo)
    rows = [_row(g, table[g.method], len(items)) for g in outputs]
    rows += [{"method": name, **table[name], "external": True,
              "notes": [f"made outside the project (audio from {cfg.external_folders[name]}); no timing or memory"]}
             for name in external]
    rows.append({"method": GROUND_TRUTH, **table[GROUND_TRUTH], "notes": []})
    candidates = int(next((r.get("p_candidates") for r in rows if r.get("p_candidates")), 0))
    setting = {
        "test set": f"{cfg.testset} ({testset.entries} entries, {len(items)} items, "
                    f"{sum(i.seconds for i in items):.1f} s of reference music)",
        "generation models": f"preset {cfg.preset}: CLIP {refs.clip}, MusicGen {refs.musicgen}",
        "priors": ", ".join(f"{v}: {d or 'untrained'}" for v, d in prior_dirs.items()) or "none",
        "evaluation models": "; ".join(f"{k} {v}" for k, v in vars(eval_models).items()),
        "device": cfg.device,
    }
    notes = list(testset.notes)
    if candidates and candidates < cfg.distractors + 1:
        notes.append(f"P@{cfg.k}: only {candidates} candidates per query (ground truth + {candidates - 1} "
                     f"distractors; the paper uses {cfg.distractors + 1})"
                     + ("; with no more candidates than k every hit is free" if candidates <= cfg.k else ""))
    if cfg.preset == "tiny":
        notes.append("tiny preset: every model, the evaluation models included, is a toy-size network with random "
                     "weights; these numbers test the plumbing and say nothing about music quality")
    results = Results(rows, cfg.k, setting, notes)
    paths = write_eval_report(results, out)
    (out / "texts.jsonl").write_text("".join(json.dumps(t) + "\n" for t in texts), encoding="utf-8")
    return Evaluation(results, paths)


def summary_lines(outcome: Evaluation) -> list[str]:
    return [f"evaluate: wrote {path}" for path in outcome.paths.values()]

