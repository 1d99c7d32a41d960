"""The loudness of a signal over chosen time spans (the speech of the original, the gaps between
it in the music), in one ffmpeg pass whatever the number of spans.

ITU-R BS.1770 integrated loudness is the gated mean power of 400 ms blocks overlapping by 75 %.
ffmpeg's ``ebur128`` logs (``framelog=info``), every 100 ms, the momentary loudness: the loudness
of the 400 ms block ending there, which are exactly those blocks. ``block_loudness`` reads them
once; ``integrated`` then gates the blocks lying wholly inside any set of spans, as BS.1770
gates a whole programme.

Times count from the first sample of the measured graph's output, as spans found on decoded
samples do.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cotvtm.errors import MediaError
from cotvtm.video import ffmpeg
from cotvtm.video.ffmpeg import FFMPEG, ffmpeg_url

LEVELS_TIMEOUT_S = 600
BLOCK_S = 0.4  # BS.1770's gating block
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = 10.0
EDGE_S = 1e-3  # ebur128 stamps a block with its last sample's time, a sample before its end
_BLOCK = re.compile(r"Parsed_ebur128_\d+ @ \w+\] t:\s*(\S+)\s.*?\bM:\s*(\S+)")
_NO_AUDIO = re.compile(r":a:\d+.* matches no streams")
MEASURE = "asetpts=PTS-STARTPTS,ebur128=framelog=info"  # blocks timed from the first sample
INTEGRATED = re.compile(r"I:\s+(-?[\d.]+|-inf) LUFS")


@dataclass(frozen=True)
class Blocks:
    """The momentary loudness (LUFS) of the 400 ms blocks ending at ``end`` (seconds, every
    100 ms), and ffmpeg's own integrated loudness of the whole signal (``whole_lufs``)."""

    end: np.ndarray
    momentary: np.ndarray
    whole_lufs: float

    def within(self, spans: Sequence[tuple[float, float]]) -> np.ndarray:
        """Which blocks lie wholly inside one of ``spans`` (``(start, end)`` seconds)."""
        inside = np.zeros(len(self.end), bool)
        starts = self.end - BLOCK_S
        for a, b in spans:  # blocks are sorted by time: those inside a span are a run of them
            first = np.searchsorted(starts, a - EDGE_S, side="left")
            last = np.searchsorted(self.end, b + EDGE_S, side="right")
            inside[first:last] = True
        return inside


def first_audio(index: int, chain: str = "anull") -> str:
    """A graph for ``block_loudness``: input ``index``'s first audio track through ``chain``."""
    return f"[{index}:a:0]{chain}[out]"


def block_loudness(inputs: Sequence[str | os.PathLike], graph: str) -> Blocks:
    """The 400 ms blocks of ``graph``'s ``[out]`` over ``inputs`` (numbered in order, as
    ``graph`` names them), in one ffmpeg pass; a failure is a MediaError naming the first input."""
    subject = inputs[0]
    graph = graph.replace("[out]", f",{MEASURE}[out]")
    cmd = [FFMPEG, "-nostdin", "-hide_banner", "-nostats"]  # info: the block lines and errors only
    for path in inputs:
        cmd += ["-i", ffmpeg_url(path)]
    cmd += ["-filter_complex", graph, "-map", "[out]", "-f", "null", "-"]
    done = ffmpeg.run(cmd, subject, "loudness measurement", LEVELS_TIMEOUT_S, text=True)
    if done.returncode != 0 and _NO_AUDIO.search(done.stderr):
        raise MediaError(subject, "no audio track to measure")
    return parse(ffmpeg.check(done, subject, "loudness measurement failed").stderr)


def parse(stderr: str) -> Blocks:
    """The blocks an ``ebur128=framelog=info`` filter logged (times from its input's first
    sample when ``MEASURE`` precedes it)."""
    found = _BLOCK.findall(stderr)
    whole = INTEGRATED.search(stderr[stderr.rfind("Summary:"):])
    end, momentary = (np.array(column, np.float64) for column in zip(*found)) if found else (np.zeros(0),) * 2
    return Blocks(end, momentary, float(whole.group(1)) if whole else -math.inf)


def integrated(blocks: Blocks, spans: Sequence[tuple[float, float]]) -> float:
    """BS.1770 integrated loudness (LUFS) of the blocks lying wholly inside ``spans``: those
    above the absolute gate, then those above the relative gate (10 LU under their mean);
    ``-inf`` when no block is left."""
    lufs = blocks.momentary[blocks.within(spans)]
    lufs = lufs[lufs > ABSOLUTE_GATE_LUFS]
    if not len(lufs):
        return -math.inf
    lufs = lufs[lufs > _loudness(_power(lufs).mean()) - RELATIVE_GATE_LU]
    return _loudness(_power(lufs).mean())


def _power(lufs: np.ndarray) -> np.ndarray:
    return 10 ** ((lufs + 0.691) / 10)


def _loudness(power: float) -> float:
    return -0.691 + 10 * math.log10(power)
