"""The embedding job as a Ray Data pipeline: labelled records -> embedding shards.

    labels -> Visual   (CLIP: image / video frames with the image tower; captions without
                        media with the text tower, E_vt standing in for E_v as in the paper)
           -> Rationale (bidirectional LLM, mean-pooled: E_r from X_rt)
           -> MusicText (MusicGen's T5: E_m sequence + mask from X_mt)
           -> Parquet shards + index.json
"""

import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cotvtm import models, text_space
from cotvtm.errors import CotvtmError, MediaError
from cotvtm.stage import Place, Record, Stage, add_stage, dataset, to_columns, use_threads
from cotvtm.training.shards import DATA, ROWS_PER_FILE, ShardIndex, write_index
from cotvtm.video import media as media_kinds
from cotvtm.video.windows import FRAMES_PER_WINDOW, WINDOW_S

MAX_VIDEO_WINDOWS = 3  # a video-text pair is summarised by its first windows' frames
SHARD_COLUMNS = ("id", "caption", "media", "x_rt", "x_mt", "e_v", "visual_source", "e_r", "e_m", "mask")


@dataclass(frozen=True)
class Example(Record):
    """A labelled record on its way to a shard row: its texts, then its embeddings."""

    id: str
    caption: str
    media: str
    x_rt: str
    x_mt: str
    e_v: np.ndarray | None = None
    visual_source: str = ""
    e_r: np.ndarray | None = None
    e_m: np.ndarray | None = None
    mask: np.ndarray | None = None


@dataclass(frozen=True)
class EmbedSizes:
    """How the embedding stages are placed: one actor each, a GPU share where there is one."""

    device: str = "cpu"
    batch_size: int = 64
    model_cpus: float = 0.5


class _Encoder(Stage):
    """A model stage of the embedding job."""

    @classmethod
    def placement(cls, sizes: EmbedSizes) -> Place:
        return Place(1, sizes.model_cpus, 0.3 if sizes.device.startswith("cuda") else 0.0, batch=sizes.batch_size)


class Visual(_Encoder):
    name = "visual"
    takes = Example

    def __init__(self, clip_ref: str, device: str, threads: float = 1):
        from cotvtm.encoders.clip import ClipEncoder

        use_threads(threads)
        self.clip = ClipEncoder(clip_ref, device, dtype=models.half_dtype(device, "clip"))

    def run(self, examples: list[Example]):
        yield [self._embedded(example) for example in examples]

    def _embedded(self, example: Example) -> Example:
        vector, source = self._media(example.media) if example.media else (None, "caption")
        if vector is None:
            vector = self.clip.embed_texts([example.caption])[0]
        return replace(example, e_v=np.asarray(vector, np.float32), visual_source=source)

    def _media(self, path: str):
        """Image tower on the picture or the video's first windows' frames (the soundtrack job's
        sampling); None -> use the caption."""
        try:
            if media_kinds.is_image(path):
                from cotvtm.video.image import image_frames

                return self.clip.embed_images(image_frames(path, 1, self.clip.image_size))[0], "image"
            info, windows = media_kinds.plan_media_windows(path, path, WINDOW_S, WINDOW_S)
            frames = media_kinds.window_frames(path, path, info, windows[:MAX_VIDEO_WINDOWS], FRAMES_PER_WINDOW,
                                               self.clip.image_size)
            return self.clip.embed_windows(frames).mean(axis=0), "video"
        except (MediaError, OSError, ValueError):
            return None, "caption (media unreadable)"


class Rationale(_Encoder):
    name = "rationale"
    takes = Example

    def __init__(self, ref: str, device: str, threads: float = 1):
        from cotvtm.encoders.rationale import RationaleEncoder

        use_threads(threads)
        self.encoder = RationaleEncoder(ref, device, dtype=models.half_dtype(device, "rationale"))

    def run(self, examples: list[Example]):
        e_r = self.encoder.encode([e.x_rt for e in examples])
        yield [replace(example, e_r=one) for example, one in zip(examples, e_r)]


class MusicText(_Encoder):
    """MusicGen's own T5 on the music description: E_m as MusicGen would see the text."""

    name = "music_text"
    takes = Example

    def __init__(self, ref: str, length: int, device: str, threads: float = 1):
        from cotvtm.encoders.music_text import MusicTextEncoder

        use_threads(threads)
        self.encoder = MusicTextEncoder(ref, length, device)

    def run(self, examples: list[Example]):
        e_m, mask = self.encoder.encode([e.x_mt for e in examples])
        yield [replace(example, e_m=one, mask=valid) for example, one, valid in zip(examples, e_m, mask)]


def _rows(labels_dir: str) -> list[Example]:
    from cotvtm.teacher.records import read_labels

    rows = [Example(r.id, str(r.caption), r.media or "", str(r.x_rt), str(r.x_mt)) for r in read_labels(labels_dir)]
    if not rows:
        raise CotvtmError(f"{labels_dir} holds no labelled records with status ok")
    return rows


def _music_std(data_dir: Path) -> float:
    """Std of E_m over real (unpadded) tokens, from up to 4096 rows."""
    import ray.data

    sample = ray.data.read_parquet(str(data_dir)).limit(4096).take_batch(4096, batch_format="numpy")
    real = sample["e_m"][sample["mask"].astype(bool)]
    return float(real.std()) if real.size else 1.0


def run_embed(labels_dir: str, out_dir: str, refs: models.ModelRefs, music_len: int, device: str = "cpu",
              batch_size: int = 64, model_cpus: float = 0.5) -> ShardIndex:
    """Embed every labelled record; (re)writes ``out_dir`` and returns its index."""
    import ray.data

    from cotvtm.raycluster import init_ray

    init_ray()
    rows = _rows(labels_dir)
    data_dir = Path(out_dir) / DATA
    shutil.rmtree(data_dir, ignore_errors=True)
    sizes = EmbedSizes(device, batch_size, model_cpus)
    ds = dataset(rows, blocks=math.ceil(len(rows) / batch_size))
    ds = add_stage(ds, Visual, sizes, clip_ref=refs.clip, device=device, threads=model_cpus)
    ds = add_stage(ds, Rationale, sizes, ref=refs.rationale, device=device, threads=model_cpus)
    ds = add_stage(ds, MusicText, sizes, ref=refs.t5, length=music_len, device=device, threads=model_cpus)
    to_columns(ds, SHARD_COLUMNS).write_parquet(str(data_dir), min_rows_per_file=ROWS_PER_FILE)
    count = ray.data.read_parquet(str(data_dir)).count()
    if count < len(rows):
        print(f"warning  {len(rows) - count} of {len(rows)} records could not be embedded and are left out", flush=True)
    index = ShardIndex(
        encoders={"clip": refs.clip, "rationale": refs.rationale, "t5": refs.t5, "text_space": text_space.of(models.text_encoder_config(refs.t5)),
                  "fingerprint": replace(refs, prior=None, bank=None).fingerprint()},  # the encoders
        dims=_dims(refs, music_len), count=count, music_std=_music_std(data_dir), sources=[str(labels_dir)])
    write_index(out_dir, index)
    return index


def _dims(refs: models.ModelRefs, music_len: int) -> dict:
    return {**models.embedding_dims(refs), "music_len": music_len}
