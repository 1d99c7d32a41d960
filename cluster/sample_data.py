"""Sample inputs for a first cluster run: short videos and small synthetic embedding shards.

    python cluster/sample_data.py WORK [--videos 2] [--seconds 12] [--rows 512]

Writes WORK/videos/*.mp4 (ffmpeg test patterns, via ``cotvtm.video.samples.make_video``) for
the soundtrack job and WORK/shards/ (random E_v, E_r of 32 dims and E_m of 8 x 32, the tiny
preset's sizes, via ``cotvtm.training.shards.write_arrays``) for the distillation job. The
shards carry no meaning: they exercise the cluster, not the model. Existing outputs are kept.
"""

import argparse
import sys
from pathlib import Path

DIM, MUSIC_LEN = 32, 8  # the tiny preset's CLIP / rationale / T5 widths


def make_videos(directory: Path, count: int, seconds: float) -> list[Path]:
    from cotvtm.video.samples import make_video

    directory.mkdir(parents=True, exist_ok=True)
    sources = ["testsrc2", "mandelbrot", "smptebars", "rgbtestsrc"]
    paths = []
    for i in range(count):
        path = directory / f"sample-{i}.mp4"
        if not path.exists():
            # Lengths differ so the videos have different window counts (the last one short).
            make_video(path, duration=seconds - 4 * (i % 2), source=sources[i % len(sources)])
        paths.append(path)
    return paths


def make_shards(directory: Path, rows: int, seed: int = 0) -> None:
    import numpy as np

    from cotvtm.raycluster import init_ray
    from cotvtm.training.shards import INDEX, write_arrays

    if (directory / INDEX).exists():
        return
    init_ray(num_cpus=1)
    rng = np.random.default_rng(seed)
    write_arrays(directory, {"id": [f"sample-{i}" for i in range(rows)],
                             "e_v": rng.standard_normal((rows, DIM)), "e_r": rng.standard_normal((rows, DIM)),
                             "e_m": rng.standard_normal((rows, MUSIC_LEN, DIM))},
                 encoders={"note": "synthetic sample shards (cluster/sample_data.py)"})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("work", type=Path, help="folder to write videos/ and shards/ into")
    p.add_argument("--videos", type=int, default=2)
    p.add_argument("--seconds", type=float, default=12.0, help="length of the longest video")
    p.add_argument("--rows", type=int, default=512, help="rows in the synthetic shards")
    a = p.parse_args(argv)
    work = a.work.resolve()
    make_videos(work / "videos", a.videos, a.seconds)
    make_shards(work / "shards", a.rows)
    print(f"cotvtm: sample videos in {work / 'videos'}, shards in {work / 'shards'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
