"""Embedding shards: Parquet files written by the embedding job, plus an index.json.

Each row: ``id``, ``e_v`` (clip_dim), ``e_r`` (rationale_dim), ``e_m`` (music_len x music_dim,
zeros at padding) and ``mask`` (music_len). The index names the encoders and sizes, so the
trainer can size the prior and the soundtrack job can check it is paired with the right models.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cotvtm.errors import CotvtmError

INDEX = "index.json"
DATA = "data"
ROWS_PER_FILE = 4096
MATERIALIZE_BYTES = 2 << 30  # smaller splits are held in the object store across epochs


@dataclass
class ShardIndex:
    encoders: dict  # component -> reference used
    dims: dict  # clip_dim, rationale_dim, music_dim, music_len
    count: int
    music_std: float  # std of E_m over real tokens: the prior diffuses E_m / music_std
    sources: list[str] = field(default_factory=list)


def write_index(directory: str | Path, index: ShardIndex) -> None:
    from cotvtm.storage.local import atomic_write_bytes

    atomic_write_bytes(Path(directory) / INDEX, json.dumps(asdict(index), indent=2).encode())


def read_index(directory: str | Path) -> ShardIndex:
    path = Path(directory) / INDEX
    if not path.exists():
        raise CotvtmError(f"{directory} holds no embedding shards (no {INDEX}); run the embedding job first")
    return ShardIndex(**json.loads(path.read_text()))


def is_validation(item_id: str, fraction: float) -> bool:
    """A stable split: the same id is always on the same side, whatever the sharding."""
    bucket = int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:4], "little") / 2**32
    return bucket < fraction


def load_split(directory: str | Path, val_fraction: float):
    """(train, validation) Ray Datasets over the shards.

    Small shard sets are materialised once, so epochs iterate the object store instead of
    re-reading and re-filtering Parquet every pass.
    """
    import ray.data

    index = read_index(directory)
    dims = index.dims
    row_bytes = 4 * (dims["clip_dim"] + dims["rationale_dim"] + dims["music_len"] * dims["music_dim"])

    ds = ray.data.read_parquet(str(Path(directory) / DATA))
    columns = ["e_v", "e_r", "e_m"]
    held_out = _validation_expr(val_fraction)
    val = ds.filter(expr=held_out).select_columns(columns)
    train = ds.filter(expr=~held_out).select_columns(columns)
    if index.count * row_bytes < MATERIALIZE_BYTES:
        train, val = train.materialize(), val.materialize()
    return train, val


def _validation_expr(fraction: float):
    """A Ray Data expression, true for the ids ``is_validation`` holds out: one call per batch of
    ids, where a filter function is called per row (Ray Data warns that it is the slow kind)."""
    import pyarrow as pa
    from ray.data.datatype import DataType
    from ray.data.expressions import col, udf

    @udf(return_dtype=DataType.bool())
    def held_out(ids: pa.Array) -> pa.Array:
        return pa.array([is_validation(item_id, fraction) for item_id in ids.to_pylist()], pa.bool_())

    return held_out(col("id"))


def write_arrays(directory: str | Path, arrays: dict, encoders: dict | None = None) -> ShardIndex:
    """Write in-memory embeddings as shards (synthetic studies, tests, imports).

    ``arrays``: ``id`` (N,), ``e_v`` (N, clip_dim), ``e_r`` (N, rationale_dim), ``e_m``
    (N, L, music_dim) and optionally ``mask`` (N, L; ones when absent).
    """
    import numpy as np
    import ray.data

    e_m = np.asarray(arrays["e_m"], np.float32)
    mask = np.asarray(arrays.get("mask", np.ones(e_m.shape[:2])), np.int64)
    columns = {"id": np.asarray(arrays["id"]).astype(str), "e_v": np.asarray(arrays["e_v"], np.float32),
               "e_r": np.asarray(arrays["e_r"], np.float32), "e_m": e_m, "mask": mask}
    ds = ray.data.from_items([{**{k: v[i] for k, v in columns.items()}, "id": str(columns["id"][i])}
                              for i in range(len(e_m))])
    ds.write_parquet(str(Path(directory) / DATA), min_rows_per_file=ROWS_PER_FILE)
    real = e_m[mask.astype(bool)]
    index = ShardIndex(encoders=encoders or {}, count=len(e_m), music_std=float(real.std()) if real.size else 1.0,
                       dims={"clip_dim": columns["e_v"].shape[1], "rationale_dim": columns["e_r"].shape[1],
                             "music_dim": e_m.shape[2], "music_len": e_m.shape[1]})
    write_index(directory, index)
    return index
