"""How far ``--style-weight`` moves the music from the picture towards the style, on MusicGen.

    .venv/bin/python bench/style_weight.py [--windows 16] [--seconds 5] [--weights 0.25,0.5,1,2,4]

Windows of random E_m (the prior's output: the picture) are made through the slot engine three
ways, each window with the same stream of draws: the picture alone, the style alone (E_m masked
out, the style's states only), and picture and style joined as the Music stage joins them
(``music/style.py``) at each weight. For each weight it prints the total variation distance
between the token histograms (per codebook, summed over the windows) of the joined music and the
picture-only music, and of the joined music and the style-only music, and the style's share
d(picture) / (d(picture) + d(style)): 0 sounds like the picture alone, 1 like the style alone.
The tiny preset's models by default (random weights: the figures show the mechanism, not how a
trained model sounds).
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import numpy as np  # noqa: E402

from cotvtm import models  # noqa: E402
from cotvtm.music.musicgen import EngineBackend, MusicRequest, SamplingConfig  # noqa: E402
from cotvtm.music.style import steer  # noqa: E402
from cotvtm.rng import stream_id  # noqa: E402

STYLE = "warm acoustic guitar, slow, no drums"
TEXT_TOKENS = 16


def histogram(music, codebooks: int, vocab: int) -> np.ndarray:
    """Token frequencies per codebook over every window, (codebooks, vocab)."""
    counts = np.zeros((codebooks, vocab))
    for window in music:
        for book in range(codebooks):
            counts[book] += np.bincount(window.codes[book], minlength=vocab)[:vocab]
    return counts / counts.sum(axis=1, keepdims=True)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance, averaged over codebooks."""
    return float(0.5 * np.abs(a - b).sum(axis=1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--weights", default="0.25,0.5,1,2,4")
    args = parser.parse_args()
    engine = EngineBackend(models.resolve("tiny").musicgen, sampling=SamplingConfig(guidance_scale=3.0, top_k=250),
                           slots=args.windows)
    config = engine.model.config.decoder
    width, books, vocab = engine.model.config.text_encoder.d_model, config.num_codebooks, config.vocab_size
    rng = np.random.default_rng(0)
    pictures = rng.standard_normal((args.windows, TEXT_TOKENS, width)).astype(np.float32)
    full, empty = np.ones(TEXT_TOKENS, np.int64), np.zeros(TEXT_TOKENS, np.int64)
    style = engine.encode_text(STYLE)
    streams = [stream_id(0, f"window {i}", 0) for i in range(args.windows)]

    def made(conditioning) -> np.ndarray:
        work = [MusicRequest(hidden, mask, args.seconds, stream) for (hidden, mask), stream in zip(conditioning, streams)]
        return histogram(engine.render(work), books, vocab)

    picture = made([(e_m, full) for e_m in pictures])
    alone = made([steer(np.zeros_like(e_m), empty, style, 1.0) for e_m in pictures])
    print(f"tiny MusicGen engine, {args.windows} windows of {args.seconds:g} s, style {STYLE!r}; the style alone "
          f"is {distance(picture, alone):.3f} from the picture alone")
    print("weight  d(picture)  d(style)  style share")
    for weight in (float(w) for w in args.weights.split(",")):
        joined = made([steer(e_m, full, style, weight) for e_m in pictures])
        near, far = distance(joined, picture), distance(joined, alone)
        print(f"{weight:6g}  {near:10.3f}  {far:8.3f}  {near / (near + far):11.2f}")


if __name__ == "__main__":
    main()
