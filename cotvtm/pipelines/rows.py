"""Rows as pickled records, and the thread limit every stage sets."""

import pickle

import numpy as np

COLUMN = "record"


def records(batch) -> list:
    return [pickle.loads(blob) for blob in batch[COLUMN]]


def batch_of(items: list) -> dict:
    """Rows carry the pickled record: a plain binary column Arrow stores without complaint."""
    column = np.empty(len(items), dtype=object)
    column[:] = [pickle.dumps(item, protocol=5) for item in items]
    return {COLUMN: column}


def row_of(item) -> dict:
    return {COLUMN: pickle.dumps(item, protocol=5)}


def use_threads(count: float) -> None:
    """Torch on CPU must use only the cores this actor owns (oversubscription is ~80x slower)."""
    import torch

    torch.set_num_threads(max(1, int(count)))
