"""Compare two demo folders (``cotvtm demo --workdir A`` and ``--workdir B``): what a change did
to the demo's results.

    .venv/bin/python bench/compare_demo.py A B

Prints, for each output (matched by input name, whatever the config digest in its name):
whether its decoded audio is identical sample for sample, whether its video packets are, and
which sidecar fields differ (run ids, timings and absolute paths aside); then the manifest rows,
the labels, the embedding shards row by row, and the distilled prior's tensors. It asserts
nothing: a digest that differs between two runs is expected (it covers the prior folder's
training record, with its run paths and times).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

VOLATILE = {"run_id", "seconds", "time", "config_digest", "output"}
DIGEST = re.compile(r"\.[0-9a-f]{10}(?=\.)")  # the config digest in an output's name


def scrub(value, root: Path):
    """``value`` without volatile fields, with the demo folder and the folder holding it (a
    checkout, say) written as placeholders, and the config digest in output names too (keys
    included)."""
    if isinstance(value, dict):
        return {scrub(k, root): scrub(v, root) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [scrub(v, root) for v in value]
    if isinstance(value, str):
        return DIGEST.sub(".<digest>", value.replace(str(root), "<demo>").replace(str(root.parent), "<root>"))
    return value


def differences(x, y, path: str = "") -> list[str]:
    """Where two scrubbed sidecars differ, field by field (a setting one has and the other not, say)."""
    if isinstance(x, dict) and isinstance(y, dict):
        return [line for k in sorted(set(x) | set(y)) for line in
                ([f"{path}{k} only in B ({y[k]!r})"] if k not in x else [f"{path}{k} only in A ({x[k]!r})"]
                 if k not in y else differences(x[k], y[k], f"{path}{k}."))]
    return [] if x == y else [f"{path.rstrip('.')}: {x!r} -> {y!r}"[:200]]


def pcm(path: Path) -> bytes:
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-"],
                          capture_output=True, check=True).stdout


def packets(path: Path) -> str:
    return subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=size,pts",
                           "-of", "csv", str(path)], capture_output=True, text=True, check=True).stdout


def outputs(root: Path) -> dict[str, Path]:
    return {p.name.split(".")[0]: p for p in (root / "outputs").glob("*.mp4")}


def sidecar_diff(a: Path, b: Path, roots: tuple[Path, Path]) -> list[str]:
    x = scrub(json.loads(a.with_suffix(".json").read_text()), roots[0])
    y = scrub(json.loads(b.with_suffix(".json").read_text()), roots[1])
    return differences(x, y)


def shards(root: Path) -> list[tuple]:
    import pyarrow.parquet as pq

    rows = pq.read_table(str(root / "shards" / "data")).to_pylist()
    return [(r["id"], np.asarray(r["e_v"]).tobytes(), np.asarray(r["e_r"]).tobytes(), np.asarray(r["e_m"]).tobytes())
            for r in rows]


def prior_difference(a: Path, b: Path) -> float:
    from safetensors.numpy import load_file

    x, y = (load_file(str(p / "distill" / "prior" / "model.safetensors")) for p in (a, b))
    if x.keys() != y.keys():
        return float("inf")
    return max(float(np.abs(x[k].astype(np.float64) - y[k].astype(np.float64)).max()) for k in x)


def main(a: Path, b: Path) -> None:
    roots = (a.resolve(), b.resolve())
    ours, theirs = outputs(a), outputs(b)
    print(f"outputs: {sorted(ours)}{'' if ours.keys() == theirs.keys() else f' vs {sorted(theirs)}'}")
    for name in sorted(ours.keys() & theirs.keys()):
        x, y = ours[name], theirs[name]
        audio = "identical" if pcm(x) == pcm(y) else "DIFFERENT"
        video = "identical" if packets(x) == packets(y) else "DIFFERENT"
        fields = sidecar_diff(x, y, roots)
        print(f"  {name}: audio {audio}, video packets {video}, sidecar fields differing: {fields or 'none'}")
    manifests = [(d / "outputs" / "manifest.jsonl").read_text().splitlines() for d in (a, b)]
    rows = [sorted((r["key"], r["status"], r["windows"], r["duration"]) for r in map(json.loads, lines))
            for lines in manifests]
    print(f"manifest rows: {'identical' if rows[0] == rows[1] else 'DIFFERENT'}")
    labels = [sorted((d / "labels").rglob("*.jsonl")) for d in (a, b)]
    same = [p.read_text() for p in labels[0]] == [p.read_text() for p in labels[1]] and labels[0]
    print(f"labels: {'identical' if same else 'DIFFERENT or missing'}")
    if all((d / "shards" / "data").is_dir() for d in (a, b)):
        print(f"embedding shards: {'identical, row by row' if shards(a) == shards(b) else 'DIFFERENT'}")
        print(f"prior tensors: largest difference {prior_difference(a, b):.3g}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
