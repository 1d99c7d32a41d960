"""Drive one soundtrack run: list inputs, skip finished ones, stream the pipeline, report."""

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from cotvtm import __version__, models
from cotvtm.config import VIDEO_EXTENSIONS, Resources, SoundtrackConfig
from cotvtm.pipelines.job import Outcome, VideoJob
from cotvtm.storage.local import append_line, list_files

# Audio-only and odd files are listed too, so that they get an error row, not silence.
LISTED_EXTENSIONS = VIDEO_EXTENSIONS + (".m4a", ".mp3", ".wav", ".aac", ".flac", ".ogg", ".opus")
KEEP_CONTAINER = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".ts", ".avi"}
MANIFEST = "manifest.jsonl"


@dataclass
class Summary:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    ignored: int = 0
    output: str = ""
    manifest: str = ""
    outcomes: list[Outcome] = field(default_factory=list)

    def line(self) -> str:
        return (f"cotvtm: {self.ok} succeeded, {self.failed} failed, {self.skipped} skipped"
                f" ({self.ignored} non-media files ignored); outputs in {self.output}; manifest {self.manifest}")

    @property
    def exit_code(self) -> int:
        """0: every input done or already done; 1: the batch finished but some inputs failed."""
        return 1 if self.failed else 0


def output_paths(out_root: Path, key: str, digest: str) -> tuple[Path, Path]:
    """Output names are a pure function of the input key and the config digest."""
    rel = PurePosixPath(key)
    suffix = rel.suffix.lower() if rel.suffix.lower() in KEEP_CONTAINER else ".mkv"
    stem = out_root.joinpath(*rel.parent.parts, rel.stem)
    return Path(f"{stem}.{digest}{suffix}"), Path(f"{stem}.{digest}.json")


def _model_facts(refs: models.ModelRefs) -> tuple[dict, int, bool]:
    """Embedding sizes the prior must match, CLIP's input size, and whether the prior is trained."""
    from transformers import AutoConfig

    clip = AutoConfig.from_pretrained(refs.clip)
    dims = dict(clip_dim=clip.projection_dim,
                music_dim=AutoConfig.from_pretrained(refs.t5).d_model,
                rationale_dim=AutoConfig.from_pretrained(refs.rationale).hidden_size)
    trained = False
    if refs.prior and (Path(refs.prior) / "config.json").exists():
        trained = bool(json.loads((Path(refs.prior) / "config.json").read_text()).get("trained", False))
    return dims, int(clip.vision_config.image_size), trained


def run(source: str, dest: str, cfg: SoundtrackConfig, res: Resources | None = None,
        cache_dir: Path | None = None, echo=print) -> Summary:
    """Soundtrack every video under ``source`` into ``dest``; never raises for a bad input."""
    cfg.validate()
    res = res or Resources.detect()
    choice = asdict(cfg.models)
    refs = models.resolve(choice.pop("preset"), cache_dir=cache_dir, seed=cfg.seed, **choice)
    dims, short_side, trained = _model_facts(refs)
    digest = cfg.digest(refs.fingerprint())
    out_root = Path(dest)
    out_root.mkdir(parents=True, exist_ok=True)
    summary = Summary(output=str(out_root), manifest=str(out_root / MANIFEST))
    files, summary.ignored = list_files(source, LISTED_EXTENSIONS)
    run_id = uuid.uuid4().hex[:12]
    items = []
    for key, path in files:
        video, sidecar = output_paths(out_root, key, digest)
        if video.exists() and sidecar.exists():
            _record(summary, Outcome(key, "skipped", reason="output exists for this config",
                                     output=str(video), sidecar=str(sidecar)), run_id, echo)
        else:
            items.append(VideoJob(key, str(path), str(video), str(sidecar)))
    if items:
        base = {"cotvtm": __version__, "run_id": run_id, "config_digest": digest, "config": asdict(cfg),
                "models": asdict(refs), "prior_trained": trained,
                "note": None if trained else "the prior is untrained (random weights): the music does not yet "
                                             "reflect the video; train one with the distillation job"}
        _stream(items, refs, cfg, res, dims, short_side, base, summary, run_id, echo)
    echo(summary.line())
    return summary


def _stream(items, refs, cfg, res, dims, short_side, base, summary, run_id, echo) -> None:
    from cotvtm.pipelines import soundtrack
    from cotvtm.raycluster import init_ray

    init_ray()
    ds = soundtrack.build(items, refs, cfg, res, dims, short_side, base)
    for row in ds.iter_rows():
        _record(summary, Outcome(**{k: _plain(v) for k, v in row.items()}), run_id, echo)


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _record(summary: Summary, outcome: Outcome, run_id: str, echo) -> None:
    """Append the manifest row as soon as an input is finished, and say so."""
    summary.outcomes.append(outcome)
    if outcome.status == "ok":
        summary.ok += 1
        echo(f"ok       {outcome.key} -> {outcome.output}")
    elif outcome.status == "skipped":
        summary.skipped += 1
        echo(f"skipped  {outcome.key} ({outcome.reason})")
    else:
        summary.failed += 1
        echo(f"error    {outcome.key}: {outcome.reason}")
    row = {"run_id": run_id, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **asdict(outcome)}
    append_line(summary.manifest, json.dumps(row))
