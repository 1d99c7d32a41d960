"""What every soundtrack stage shares: rows as pickled records, thread limits, error isolation."""

import pickle
import time

import numpy as np
import torch

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
    torch.set_num_threads(max(1, int(count)))


class ModelStage:
    """Shared frame for the model stages: skip failed records, time the batch, isolate errors.

    Records are ``Segment``s or ``VideoJob``s: anything with ``error``, ``fail`` and ``seconds``.
    """

    name = "model"

    def __call__(self, batch) -> dict:
        items = records(batch)
        live = [item for item in items if item.error is None]
        if live:
            started = time.perf_counter()
            try:
                self.process(live)
            except Exception as exc:  # one broken batch fails its videos, not the run
                for item in live:
                    if item.error is None:
                        item.fail(self.name, f"{self.name} stage failed: {type(exc).__name__}: {exc}")
            for item in live:
                item.seconds[self.name] = (time.perf_counter() - started) / len(live)
        return batch_of(items)

    def process(self, items: list) -> None:
        raise NotImplementedError
