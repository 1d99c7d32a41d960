"""The embedding job as a Ray Data pipeline: labelled records -> embedding shards.

    labels -> Visual   (CLIP: image / video frames with the image tower; captions without
                        media with the text tower, E_vt standing in for E_v as in the paper)
           -> Rationale (bidirectional LLM, mean-pooled: E_r from X_rt)
           -> MusicText (MusicGen's T5: E_m sequence + mask from X_mt)
           -> Parquet shards + index.json
"""

import shutil
from pathlib import Path

import numpy as np
import torch

from cotvtm import models
from cotvtm.errors import CotvtmError, MediaError
from cotvtm.pipelines.rows import use_threads
from cotvtm.training.shards import DATA, ROWS_PER_FILE, ShardIndex, write_index
from cotvtm.video import media as media_kinds
from cotvtm.video.windows import FRAMES_PER_WINDOW, WINDOW_S

TINY_MUSIC_LEN, PAPER_MUSIC_LEN = 32, 64  # E_m tokens by default
MAX_VIDEO_WINDOWS = 3  # a video-text pair is summarised by its first windows' frames


def half(device: str, kind: str):
    """Reduced precision on a GPU: fp16 for CLIP, bf16 for the LLM (fp16 overflows there).
    CPU runs, and MusicGen's T5 everywhere (small, and known to overflow in fp16), stay fp32."""
    if not device.startswith("cuda"):
        return None
    return torch.float16 if kind == "clip" else torch.bfloat16


class Visual:
    def __init__(self, clip_ref: str, device: str, threads: float = 1):
        from cotvtm.encoders.clip import ClipEncoder

        use_threads(threads)
        self.clip = ClipEncoder(clip_ref, device, dtype=half(device, "clip"))

    def __call__(self, batch: dict) -> dict:
        vectors, sources = [], []
        for caption, media in zip(batch["caption"], batch["media"]):
            vector, source = self._media(media) if media else (None, "caption")
            if vector is None:
                vector = self.clip.embed_texts([str(caption)])[0]
            vectors.append(vector)
            sources.append(source)
        return {**batch, "e_v": np.stack(vectors).astype(np.float32), "visual_source": np.array(sources)}

    def _media(self, path: str):
        """Image tower on the picture or the video's first windows' frames (the soundtrack job's
        sampling); None -> use the caption."""
        try:
            if media_kinds.is_image(path):
                from cotvtm.video.image import image_frames

                return self.clip.embed_images(image_frames(path, 1, self.clip.image_size))[0], "image"
            info, windows = media_kinds.plan(path, path, WINDOW_S, WINDOW_S)
            frames = media_kinds.window_frames(path, path, info, windows[:MAX_VIDEO_WINDOWS], FRAMES_PER_WINDOW,
                                               self.clip.image_size)
            return self.clip.embed_windows(frames).mean(axis=0), "video"
        except (MediaError, OSError, ValueError):
            return None, "caption (media unreadable)"


class Rationale:
    def __init__(self, ref: str, device: str, threads: float = 1):
        from cotvtm.encoders.rationale import RationaleEncoder

        use_threads(threads)
        self.encoder = RationaleEncoder(ref, device, dtype=half(device, "rationale"))

    def __call__(self, batch: dict) -> dict:
        return {**batch, "e_r": self.encoder.encode([str(t) for t in batch["x_rt"]])}


class MusicText:
    """MusicGen's own T5 on the music description: E_m as MusicGen would see the text."""

    def __init__(self, ref: str, length: int, device: str, threads: float = 1):
        from cotvtm.encoders.music_text import MusicTextEncoder

        use_threads(threads)
        self.encoder = MusicTextEncoder(ref, length, device)

    def __call__(self, batch: dict) -> dict:
        e_m, mask = self.encoder.encode([str(t) for t in batch["x_mt"]])
        return {**batch, "e_m": e_m, "mask": mask}


def _rows(labels_dir: str) -> list[dict]:
    from cotvtm.teacher.records import read_labels

    rows = [{"id": r.id, "caption": r.caption, "media": r.media or "", "x_rt": r.x_rt, "x_mt": r.x_mt}
            for r in read_labels(labels_dir)]
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

    from cotvtm.pipelines.stages import Place, add_stage
    from cotvtm.raycluster import init_ray

    init_ray()
    rows = _rows(labels_dir)
    data_dir = Path(out_dir) / DATA
    shutil.rmtree(data_dir, ignore_errors=True)
    place = Place(1, model_cpus, 0.3 if device.startswith("cuda") else 0.0)
    ds = ray.data.from_items(rows)
    ds = add_stage(ds, Visual, place, batch_size, clip_ref=refs.clip, device=device, threads=model_cpus)
    ds = add_stage(ds, Rationale, place, batch_size, ref=refs.rationale, device=device, threads=model_cpus)
    ds = add_stage(ds, MusicText, place, batch_size, ref=refs.t5, length=music_len, device=device, threads=model_cpus)
    ds.write_parquet(str(data_dir), min_rows_per_file=ROWS_PER_FILE)
    index = ShardIndex(
        encoders={"clip": refs.clip, "rationale": refs.rationale, "t5": refs.t5, "fingerprint": refs.fingerprint()},
        dims=_dims(refs, music_len), count=len(rows), music_std=_music_std(data_dir), sources=[str(labels_dir)])
    write_index(out_dir, index)
    return index


def _dims(refs: models.ModelRefs, music_len: int) -> dict:
    return {**models.embedding_dims(refs), "music_len": music_len}
