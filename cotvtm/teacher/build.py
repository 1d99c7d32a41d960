"""Drive one dataset build: collect captions, skip labelled ones, label the rest on Ray, report.

The driver is the only writer: it appends each record the actors return to the labels
directory as soon as it arrives, so an interrupted build keeps everything finished and a
rerun sends nothing for captions that already have a label for this prompt version and
model (failed ones are skipped too, unless ``retry_failed``).
"""

import json
import time
from collections import Counter
from dataclasses import dataclass, field

from cotvtm.errors import CotvtmError
from cotvtm.teacher import offline
from cotvtm.teacher.client import TEACHER as LLM_TEACHER
from cotvtm.teacher.settings import BuildConfig
from cotvtm.teacher.ingest import CaptionItem, read_caption_manifests
from cotvtm.teacher.prompt import DIRECT_PROMPT_VERSION
from cotvtm.stage import records
from cotvtm.teacher.records import ShardWriter, labels_dir, skip_ids, statuses
from cotvtm.teacher.scenes import sample_scenes, write_description

SHOWN_FAILURES = 20  # failures printed one by one; the rest are only counted

# CoT-VTM Section 4.1: the parts of the training set and their sizes.
PAPER_MIX = (("text-image pairs", 10_000), ("text-video pairs", 10_000), ("emotion-annotated images", 11_000),
             ("generated scenes", 10_000))
OTHER = "captions without media"  # not a part of the paper's mix


@dataclass
class BuildSummary:
    labels_dir: str
    teacher: str
    model: str
    prompt_version: str
    total: int = 0
    skipped_ok: int = 0
    skipped_failed: int = 0
    ok: int = 0
    failed: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    seconds: float = 0.0
    reasons: Counter = field(default_factory=Counter)

    @property
    def labelled(self) -> int:
        return self.ok + self.failed

    @property
    def exit_code(self) -> int:
        """0: every caption has a label (now or before); 1: some failed (see their reasons)."""
        return 1 if self.failed or self.skipped_failed else 0

    def usage(self) -> str:
        if self.teacher == offline.TEACHER:
            return "offline rules, no LLM requests"
        cost = "" if self.cost is None else f", est. cost ${self.cost:.4f}"
        return (f"{self.requests} requests, {self.prompt_tokens:,} prompt + {self.completion_tokens:,} "
                f"completion tokens{cost}")

    def progress(self, todo: int) -> str:
        rate = self.labelled / self.seconds if self.seconds > 0 else 0.0
        return (f"progress {self.labelled}/{todo} ({self.ok} ok, {self.failed} failed); {self.usage()}; "
                f"{rate:.1f} captions/s")

    def line(self) -> str:
        skipped = f"{self.skipped_ok} already labelled"
        if self.skipped_failed:
            skipped += f", {self.skipped_failed} failed before (rerun with --retry-failed)"
        return (f"cotvtm label: {self.ok} labelled, {self.failed} failed, {skipped}; {self.usage()}; "
                f"labels in {self.labels_dir}")


def identity(cfg: BuildConfig) -> tuple[str, str, str]:
    """(teacher, model, prompt version): what names the labels directory."""
    version = cfg.prompt if cfg.cot else DIRECT_PROMPT_VERSION
    if cfg.endpoint is None:
        return offline.TEACHER, offline.MODEL, version
    return LLM_TEACHER, cfg.endpoint.teacher_model, version


def collect_items(cfg: BuildConfig) -> list[CaptionItem]:
    """Manifest captions, then generated scenes (written now by the template filler, or later by the LLM)."""
    items = read_caption_manifests(list(cfg.manifests))
    writer = cfg.writer()
    source = f"scenes(seed={cfg.seed}, writer={writer})"
    for scene in sample_scenes(cfg.scenes, cfg.seed):
        ident = f"{scene.id}-{writer}"
        if writer == "template":
            items.append(CaptionItem(ident, write_description(scene), source=source, caption_source="scene:template"))
        else:
            items.append(CaptionItem(ident, "", source=source, scene=scene.text, caption_source="scene:llm"))
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise CotvtmError(f"duplicate caption id {item.id!r}")
        seen.add(item.id)
    return items


def build_labels(cfg: BuildConfig, echo=print) -> BuildSummary:
    """Label every caption of ``cfg`` that has no label yet; never raises for one bad caption."""
    if cfg.endpoint is not None:
        cfg.endpoint.api_key()  # a missing key is a set-up error here, not one per actor
    items = collect_items(cfg)
    teacher, model, version = identity(cfg)
    out = labels_dir(cfg.out, version, model)
    summary = BuildSummary(str(out), teacher, model, version, total=len(items))
    before = statuses(out)  # read once: it also says which skipped ids had failed
    skip = skip_ids(before, cfg.retry_failed)
    todo = [item for item in items if item.id not in skip]
    summary.skipped_ok = sum(1 for item in items if before.get(item.id) == "ok")
    summary.skipped_failed = sum(1 for item in items if item.id in skip and before[item.id] != "ok")
    echo(f"cotvtm label: {len(items)} captions, {len(items) - len(todo)} skipped, {len(todo)} to label "
         f"with {teacher} {model} (prompt {version}) into {out}")
    uncaptioned = sum(item.needs_caption for item in todo)
    if uncaptioned:
        echo(f"cotvtm label: {uncaptioned} of them have media and no caption: captioned first by "
             f"{cfg.captioner.source}")
    if todo:
        _stream(todo, cfg, summary, echo)
    echo(summary.line())
    return summary




def part_of(item: CaptionItem) -> str:
    """Which part of the paper's mix an item belongs to."""
    from cotvtm.video.media import is_image

    if item.scene or item.caption_source.startswith("scene:"):
        return "generated scenes"
    if item.media is None:
        return OTHER
    if item.emotion:
        return "emotion-annotated images"
    return "text-image pairs" if is_image(item.media) else "text-video pairs"


def recipe(cfg: BuildConfig, echo=print) -> dict[str, dict[str, int]]:
    """Per part of the paper's mix: the records the manifests (and ``--scenes``) give, how many
    of them are labelled (for this prompt and teacher), how many still need a caption."""
    items = collect_items(cfg)
    teacher, model, version = identity(cfg)
    out = labels_dir(cfg.out, version, model)
    known = statuses(out)
    table = {part: {"records": 0, "labelled": 0, "uncaptioned": 0, "paper": size} for part, size in PAPER_MIX}
    for item in items:
        row = table.setdefault(part_of(item), {"records": 0, "labelled": 0, "uncaptioned": 0, "paper": 0})
        row["records"] += 1
        row["labelled"] += known.get(item.id) == "ok"
        row["uncaptioned"] += item.needs_caption and known.get(item.id) != "ok"
    echo(f"cotvtm label --recipe: the paper's training mix (CoT-VTM Section 4.1); labelled = in {out}")
    echo(f"{'part':<26}{'records':>9}{'labelled':>10}{'uncaptioned':>13}{'paper':>8}")
    for part, row in table.items():
        paper = f"{row['paper']:,}" if row["paper"] else "-"
        echo(f"{part:<26}{row['records']:>9}{row['labelled']:>10}{row['uncaptioned']:>13}{paper:>8}")
    return table


def _stream(todo: list[CaptionItem], cfg: BuildConfig, summary: BuildSummary, echo) -> None:
    from cotvtm.raycluster import init_ray
    from cotvtm.teacher import stage

    init_ray()
    ds = stage.labelling(todo, cfg)
    who = identity(cfg)
    started = last = time.monotonic()
    shown = -1
    with ShardWriter(summary.labels_dir, cfg.shard_size) as writer:
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                tasks = records(batch)
                lines = [task.label_line(*who) for task in tasks]
                writer.write_many(lines)
                for line, task in zip(lines, tasks):
                    _count(summary, json.loads(line), task.requests, echo)
                summary.seconds = time.monotonic() - started
                if cfg.endpoint is not None:
                    summary.cost = cfg.endpoint.cost(summary.prompt_tokens, summary.completion_tokens)
                if time.monotonic() - last >= cfg.progress_s:
                    last, shown = time.monotonic(), summary.labelled
                    echo(summary.progress(len(todo)))
        except Exception as exc:  # an infrastructure failure (Ray, disk): finished labels are kept
            raise CotvtmError(f"labelling stopped after {summary.labelled} captions: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}; finished labels are kept, "
                              f"rerun to continue") from None
    summary.seconds = time.monotonic() - started
    if shown != summary.labelled:
        echo(summary.progress(len(todo)))


def _count(summary: BuildSummary, record: dict, requests: int, echo) -> None:
    summary.requests += requests
    summary.prompt_tokens += record["usage"].get("prompt_tokens", 0)
    summary.completion_tokens += record["usage"].get("completion_tokens", 0)
    if record["status"] == "ok":
        summary.ok += 1
        return
    summary.failed += 1
    summary.reasons[record["reason"]] += 1
    if summary.failed <= SHOWN_FAILURES:
        echo(f"failed   {record['id']}: {record['reason']}")
    elif summary.failed == SHOWN_FAILURES + 1:
        echo("failed   (further failures are counted, not shown; they are in the labels with their reasons)")
