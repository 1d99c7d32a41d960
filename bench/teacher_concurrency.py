"""LLM teacher concurrency against the local OpenAI-compatible server at a fixed latency.

    .venv/bin/python bench/teacher_concurrency.py [--latency 0.2] [--requests 400] [--limits 8 32 64]

For each configured limit it prints the most and the mean requests the server saw in
flight, and requests/s against the ideal (limit / latency): once in process (the teacher
alone) and once through the Ray job (actor stage, async batches, shards written). Wall
time includes start-up (a Ray job's actor takes a few seconds to start); the request span
runs from the first request to the last answer.
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from openai_server import FakeOpenAI  # noqa: E402

from cotvtm.teacher.build import build_labels  # noqa: E402
from cotvtm.teacher.client import LLMTeacher  # noqa: E402
from cotvtm.teacher.settings import BuildConfig, EndpointConfig  # noqa: E402
from cotvtm.teacher.ingest import CaptionItem  # noqa: E402


def endpoint(srv: FakeOpenAI, limit: int) -> EndpointConfig:
    return EndpointConfig(teacher_model="bench", teacher_url=srv.base_url, teacher_concurrency=limit,
                          teacher_timeout=30, teacher_retries=0)


def in_process(latency: float, count: int, limit: int) -> tuple[FakeOpenAI, float]:
    async def go():
        teacher = LLMTeacher(endpoint(srv, limit))
        await asyncio.gather(*(teacher.label(CaptionItem(str(i), f"caption {i}")) for i in range(count)))
        await teacher.close()

    with FakeOpenAI(latency=latency) as srv:
        started = time.perf_counter()
        asyncio.run(go())
        return srv, time.perf_counter() - started


def ray_job(latency: float, count: int, limit: int) -> tuple[FakeOpenAI, float]:
    with FakeOpenAI(latency=latency) as srv, tempfile.TemporaryDirectory() as out:
        manifest = Path(out) / "captions.jsonl"
        manifest.write_text("".join(f'{{"id": "{i}", "caption": "caption {i}"}}\n' for i in range(count)))
        started = time.perf_counter()
        summary = build_labels(BuildConfig(out=out, manifests=(str(manifest),), endpoint=endpoint(srv, limit),
                                           progress_s=3600), echo=lambda line: None)
        assert summary.ok == count, summary.line()
        return srv, time.perf_counter() - started


def report(kind: str, limit: int, latency: float, srv: FakeOpenAI, elapsed: float) -> None:
    """Wall time includes start-up (actors, first connection); the span is first request to last answer."""
    count = len(srv.log)
    print(f"{kind:10s} limit {limit:3d}: max in flight {srv.max_in_flight:3d}, mean {srv.mean_in_flight():5.1f}; "
          f"{count} requests, {count / srv.span():6.1f} req/s over the request span, {count / elapsed:6.1f} req/s "
          f"wall ({elapsed:5.2f} s); ideal {limit / latency:6.1f} req/s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--latency", type=float, default=0.2, help="server seconds per request")
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--limits", type=int, nargs="+", default=[8, 32, 64])
    p.add_argument("--no-ray", action="store_true")
    a = p.parse_args()
    print(f"server latency {a.latency * 1000:.0f} ms, {a.requests} captions per run, cpus: {os.cpu_count()}")
    for limit in a.limits:
        report("in process", limit, a.latency, *in_process(a.latency, a.requests, limit))
    if a.no_ray:
        return
    from cotvtm.raycluster import init_ray

    init_ray()
    for limit in a.limits:
        report("Ray job", limit, a.latency, *ray_job(a.latency, a.requests, limit))


if __name__ == "__main__":
    main()
