"""Run by tests/test_multinode.py in its own process: a 2-node Ray cluster on 127.0.0.1,
a 2-worker distillation spread over both nodes, one worker killed after the first checkpoint.
Prints one JSON line with what happened."""

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import numpy as np  # noqa: E402
import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402
from ray.util.state import list_actors  # noqa: E402

from cotvtm.training.hyperparameters import DistillConfig, StageConfig  # noqa: E402
from cotvtm.training.distill import distill  # noqa: E402
from cotvtm.training.shards import write_arrays  # noqa: E402


def _shards(directory: Path) -> None:
    rng = np.random.default_rng(0)
    n = 2000
    write_arrays(directory, {"id": [f"c{i}" for i in range(n)], "e_v": rng.standard_normal((n, 32)),
                             "e_r": rng.standard_normal((n, 32)), "e_m": rng.standard_normal((n, 8, 32))})


def _registered_checkpoints(storage: Path) -> int:
    """Checkpoints the Train controller has recorded (a folder alone may still be uploading)."""
    snapshots = list(storage.glob("*/checkpoint_manager_snapshot.json"))
    return snapshots[0].read_text().count("checkpoint_") if snapshots else 0


def _kill_a_worker_after_first_checkpoint(storage: Path, killed: dict) -> None:
    deadline = time.time() + 300
    while time.time() < deadline and _registered_checkpoints(storage) == 0:
        time.sleep(0.5)
    workers = [a for a in list_actors(filters=[("state", "=", "ALIVE")]) if "RayTrainWorker" in a.class_name]
    if workers:
        os.kill(workers[-1].pid, signal.SIGKILL)
        killed.update(pid=workers[-1].pid, node=workers[-1].node_id)


def main(work: Path) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    cluster.add_node(num_cpus=2)
    ray.init(address=cluster.address)
    _shards(work / "shards")
    stage = StageConfig(lr=1e-3, batch_size=32, epochs=3)
    cfg = DistillConfig(arch="tiny", stage1=stage, stage2=stage, num_workers=2, placement="STRICT_SPREAD")
    killed: dict = {}
    watcher = threading.Thread(target=_kill_a_worker_after_first_checkpoint,
                               args=(work / "out" / "runs", killed), daemon=True)
    watcher.start()
    result = distill(str(work / "shards"), str(work / "out"), cfg)
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    print(json.dumps({"metrics": result.metrics, "killed": killed, "cluster_nodes": sorted(nodes),
                      "prior": str(result.prior_dir), "steps": len(cfg.epochs())}, default=str))
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
