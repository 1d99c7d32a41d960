"""The results table (Markdown, CSV, JSON) and its plots, written side by side.

Column headers carry the better direction (↓ lower is better, ↑ higher is better); the best
method per column is in bold in the Markdown. Plots use matplotlib's object API (no pyplot,
no display needed): ``metrics.png`` has one bar chart per metric, ``tradeoff.png`` the time
split between mapping and MusicGen and the mapping's time/memory trade-off.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cotvtm.eval.score import GROUND_TRUTH

ARROWS = {"lower": "↓", "higher": "↑", None: ""}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    better: str | None
    digits: int | None = None  # None: four significant digits
    quality: bool = True  # a quality metric (plotted in metrics.png) rather than a cost

    def header(self) -> str:
        return f"{self.label} {ARROWS[self.better]}".strip()


def columns(k: int = 10) -> list[Column]:
    return [
        Column("fd", "FD", "lower"), Column("fad", "FAD", "lower"),
        Column("kl_softmax", "KL softmax", "lower"), Column("kl_sigmoid", "KL sigmoid", "lower"),
        Column("ib", "IB", "higher"), Column("ems", "EMS", "lower"), Column("p_at_k", f"P@{k}", "higher"),
        Column("map_s", "mapping s/item", "lower", 4, False), Column("map_mb", "mapping peak MB", "lower", 1, False),
        Column("map_params_m", "mapping params (M)", None, 2, False),
        Column("decode_s", "MusicGen s/item", "lower", 4, False),
        Column("decode_mb", "MusicGen peak MB", "lower", 1, False),
    ]


@dataclass
class Results:
    rows: list[dict]  # one per method (and the ground truth), keyed by column key, plus method and notes
    k: int = 10
    setting: dict = field(default_factory=dict)  # preset, models, test set, sizes: printed above the table
    notes: list[str] = field(default_factory=list)


def _fmt(value, digits: int | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.4g}" if digits is None else f"{value:.{digits}f}"


def _best(rows: list[dict], col: Column):
    values = [r.get(col.key) for r in rows if r["method"] != GROUND_TRUTH and r.get(col.key) is not None]
    if col.better is None or len(values) < 2:
        return None
    return min(values) if col.better == "lower" else max(values)


def _name(row: dict) -> str:
    mark = " †" if "untrained prior" in row.get("notes", []) else " (external)" if row.get("external") else ""
    return row["method"] + mark


def markdown(results: Results) -> str:
    cols = columns(results.k)
    lines = ["# Evaluation results", ""]
    lines += [f"- **{key}**: {value}" for key, value in results.setting.items()]
    lines += ["", "| method | " + " | ".join(c.header() for c in cols) + " |",
              "|---|" + "---:|" * len(cols)]
    for row in results.rows:
        cells = []
        for col in cols:
            text = _fmt(row.get(col.key), col.digits)
            best = _best(results.rows, col)
            cells.append(f"**{text}**" if best is not None and row.get(col.key) == best
                         and row["method"] != GROUND_TRUTH else text)
        lines.append(f"| {_name(row)} | " + " | ".join(cells) + " |")
    lines += ["", "↓ lower is better, ↑ higher is better; best method per column in bold; — not applicable."]
    if any("untrained prior" in r.get("notes", []) for r in results.rows):
        lines.append("† untrained prior (random weights): its music does not depend on the visuals.")
    for row in results.rows:
        other = [n for n in row.get("notes", []) if n != "untrained prior"]
        if other:
            lines.append(f"- {row['method']}: " + "; ".join(dict.fromkeys(other)))
    lines += [f"- {note}" for note in results.notes]
    return "\n".join(lines) + "\n"


def write_csv(results: Results, path: Path) -> None:
    cols = columns(results.k)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", *(c.key for c in cols), "notes"])
        for row in results.rows:
            writer.writerow([row["method"], *("" if row.get(c.key) is None else row[c.key] for c in cols),
                             "; ".join(dict.fromkeys(row.get("notes", [])))])


def plot_metrics(results: Results, path: Path) -> None:
    from matplotlib.figure import Figure

    cols = [c for c in columns(results.k) if c.quality]
    rows = [r for r in results.rows if r["method"] != GROUND_TRUTH]
    truth = next((r for r in results.rows if r["method"] == GROUND_TRUTH), {})
    fig = Figure(figsize=(3.2 * 4, 3.2 * math.ceil(len(cols) / 4)), constrained_layout=True)
    for index, col in enumerate(cols):
        ax = fig.add_subplot(math.ceil(len(cols) / 4), 4, index + 1)
        names = [_name(r) for r in rows]
        values = [r.get(col.key) if r.get(col.key) is not None else 0.0 for r in rows]
        ax.bar(range(len(rows)), values, color=[f"C{i}" for i in range(len(rows))])
        if truth.get(col.key) is not None:
            ax.axhline(truth[col.key], color="black", linestyle="--", linewidth=1, label=GROUND_TRUTH)
            ax.legend(fontsize=7)
        ax.set_title(col.header())
        ax.set_xticks(range(len(rows)), names, rotation=40, ha="right", fontsize=8)
    fig.savefig(path, dpi=110)


def plot_tradeoff(results: Results, path: Path) -> None:
    from matplotlib.figure import Figure

    rows = [r for r in results.rows if r["method"] != GROUND_TRUTH and not r.get("external")]  # timed rows only
    names = [_name(r) for r in rows]
    fig = Figure(figsize=(11, 4), constrained_layout=True)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    mapping = [r.get("map_s") or 0.0 for r in rows]
    decoding = [r.get("decode_s") or 0.0 for r in rows]
    left.barh(names, mapping, label="mapping (visual → conditioning)")
    left.barh(names, decoding, left=mapping, label="MusicGen decoding")
    left.set_xlabel("seconds per item ↓")
    left.legend(fontsize=8)
    left.invert_yaxis()
    for i, row in enumerate(rows):
        right.scatter(row.get("map_s") or 0.0, row.get("map_mb") or 0.0, color=f"C{i}")
        right.annotate(names[i], (row.get("map_s") or 0.0, row.get("map_mb") or 0.0), fontsize=8,
                       xytext=(4, 4 + 9 * (i % 3)), textcoords="offset points")  # staggered: close points
    right.set_xlabel("mapping seconds per item ↓")
    right.set_ylabel("mapping peak memory (MB) ↓")
    right.set_title("visual-to-music mapping cost")
    fig.savefig(path, dpi=110)


def write_eval_report(results: Results, out: Path) -> dict[str, Path]:
    """Write results.md/.csv/.json, metrics.png and tradeoff.png into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("results.md", "results.csv", "results.json", "metrics.png",
                                           "tradeoff.png")}
    paths["results.md"].write_text(markdown(results), encoding="utf-8")
    write_csv(results, paths["results.csv"])
    paths["results.json"].write_text(json.dumps(asdict(results), indent=2, default=str) + "\n", encoding="utf-8")
    plot_metrics(results, paths["metrics.png"])
    plot_tradeoff(results, paths["tradeoff.png"])
    return paths
