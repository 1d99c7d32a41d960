"""Wall time and peak memory of one block of work (the paper's Table 5 columns).

On CUDA the peak is ``torch.cuda.max_memory_allocated`` above what was allocated when the
block started. On the CPU it is the growth of the process's resident set, sampled every
``interval`` seconds from /proc (where there is one): memory the allocator already holds
from earlier work is not counted again, so CPU figures are lower bounds.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass
class ResourceUsage:
    seconds: float = 0.0
    peak_mb: float = 0.0

    def add(self, other: ResourceUsage) -> None:
        self.seconds += other.seconds
        self.peak_mb = max(self.peak_mb, other.peak_mb)


def _rss() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * PAGE
    except OSError:
        return 0


class _Sampler(threading.Thread):
    def __init__(self, interval: float):
        super().__init__(daemon=True)
        self.interval, self.peak, self.done = interval, _rss(), threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.peak = max(self.peak, _rss())


@contextmanager
def measure(device: str = "cpu", interval: float = 0.002):
    """``with measure(dev) as usage: ...``; ``usage`` is filled in when the block ends."""
    usage = ResourceUsage()
    cuda = str(device).startswith("cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base, sampler = _rss(), _Sampler(interval)
        sampler.start()
    start = time.perf_counter()
    try:
        yield usage
    finally:
        if cuda:
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() - base
        else:
            sampler.done.set()
            sampler.join()
            peak = max(sampler.peak, _rss()) - base
        usage.seconds = time.perf_counter() - start
        usage.peak_mb = max(peak, 0) / 2**20
