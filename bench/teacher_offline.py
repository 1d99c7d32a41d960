"""Offline teacher throughput: label 10,000 generated captions, print captions/s.

    .venv/bin/python bench/teacher_offline.py [--count 10000] [--no-ray]

Two numbers: the rules alone in this process (the teacher's own speed), and the whole
job on a local Ray (ingest of scenes, the actor stage, JSONL shards written by the driver).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cotvtm.teacher.build import build_labels  # noqa: E402
from cotvtm.teacher.settings import BuildConfig  # noqa: E402
from cotvtm.teacher.ingest import CaptionItem  # noqa: E402
from cotvtm.teacher.offline import OfflineTeacher  # noqa: E402
from cotvtm.teacher.records import read_labels  # noqa: E402
from cotvtm.teacher.scenes import sample_scenes, write_description  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=10_000)
    p.add_argument("--no-ray", action="store_true", help="only the in-process number")
    a = p.parse_args()

    started = time.perf_counter()
    items = [CaptionItem(s.id, write_description(s)) for s in sample_scenes(a.count, seed=0)]
    generated = time.perf_counter() - started
    teacher = OfflineTeacher()
    started = time.perf_counter()
    lines = [teacher.label(item).to_json() for item in items]
    labelled = time.perf_counter() - started
    print(f"cpus: {os.cpu_count()}")
    print(f"scene generation: {a.count} captions in {generated:.2f} s ({a.count / generated:,.0f} captions/s)")
    print(f"offline teacher, in process: {a.count} captions in {labelled:.2f} s "
          f"({a.count / labelled:,.0f} captions/s, {sum(map(len, lines)) / len(lines):,.0f} bytes/record)")
    if a.no_ray:
        return
    with tempfile.TemporaryDirectory() as out:
        from cotvtm.raycluster import init_ray

        init_ray()  # started outside the timing: ~5 s once per cluster, not per job
        started = time.perf_counter()
        summary = build_labels(BuildConfig(out=out, scenes=a.count, seed=0, progress_s=3600), echo=lambda line: None)
        elapsed = time.perf_counter() - started
        count = sum(1 for _ in read_labels(summary.labels_dir))
        print(f"offline teacher, Ray job (1 actor, shards written): {count} captions in {elapsed:.2f} s "
              f"({count / elapsed:,.0f} captions/s)")
        started = time.perf_counter()
        rerun = build_labels(BuildConfig(out=out, scenes=a.count, seed=0), echo=lambda line: None)
        elapsed = time.perf_counter() - started
        print(f"rerun (everything already labelled): {rerun.skipped_ok} skipped in {elapsed:.2f} s")


if __name__ == "__main__":
    main()
