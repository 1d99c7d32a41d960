"""A multi-node Ray cluster on one machine, kept on 127.0.0.1, for trying `ray job submit`.

    python cluster/local_cluster.py --dashboard-port 8265 [--workers 1] [--head-cpus 2] [--worker-cpus 2]

Starts a head node (with the dashboard, which is also the job-submission server) and one or
more worker nodes, each with its own CPUs, all in this process tree and all on loopback. It
prints the submission address, then runs until Ctrl-C / SIGTERM and stops every node.

It uses ``ray.cluster_utils.Cluster`` rather than ``ray start``: with the loopback setting
(``LOCAL_ENV``: RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which keeps every Ray service on 127.0.0.1) a
second ``ray start`` process cannot join the head; measured with Ray 2.60.
Token authentication is off (RAY_AUTH_MODE=disabled): nothing listens beyond 127.0.0.1.
The nodes run this interpreter, so ``python`` in a job's entrypoint is this virtual
environment's Python (its directory is put first on PATH for the nodes).
"""

import argparse
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path



def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dashboard-port", type=int, default=8265, help="job-submission (dashboard) port")
    p.add_argument("--workers", type=int, default=1, help="worker nodes besides the head")
    p.add_argument("--head-cpus", type=float, default=2, help="logical CPUs the head offers")
    p.add_argument("--worker-cpus", type=float, default=2, help="logical CPUs each worker node offers")
    p.add_argument("--object-store-mb", type=int, default=300, help="object store per node (MiB)")
    p.add_argument("--ready-file", type=Path, default=None,
                   help="write the addresses here as JSON once every node is up")
    return p.parse_args(argv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_args(index: int) -> dict:
    """What must differ between nodes that share one machine, as it would between machines.

    - The dashboard agent's port: the fixed default (52365) collides with the other nodes and
      with any other Ray here, and a head whose agent cannot bind accepts no job ("No available
      agent to submit job").
    - The runtime-environment folder (the unpacked --working-dir): nodes share the session
      folder, and a node deletes its copy when its last worker using it exits, which would pull
      the folder from under a job's driver still running in it on the head.
    """
    return {"dashboard_agent_listen_port": free_port(),
            "runtime_env_dir_name": "runtime_resources" if index == 0 else f"runtime_resources_node{index}"}


def wait_for_job_agents(cluster, timeout_s: float = 120) -> None:
    """Block until every node's dashboard agent has registered: until then the head refuses
    jobs ("No available agent to submit job")."""
    from ray._private.ray_constants import KV_NAMESPACE_DASHBOARD
    from ray.dashboard.consts import DASHBOARD_AGENT_ADDR_NODE_ID_PREFIX

    gcs = cluster.head_node.get_gcs_client()
    deadline = time.monotonic() + timeout_s
    for node in [cluster.head_node, *cluster.worker_nodes]:
        key = f"{DASHBOARD_AGENT_ADDR_NODE_ID_PREFIX}{node.node_id}".encode()
        while not gcs.internal_kv_get(key, KV_NAMESPACE_DASHBOARD):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the dashboard agent of node {node.node_id} did not start; see "
                                   f"{node.get_session_dir_path()}/logs/dashboard_agent*.log")
            time.sleep(0.2)


def _interrupt(*_):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # Ray reads these when it starts its processes; child processes (the nodes, the jobs) inherit them.
    from cotvtm.raycluster import LOCAL_ENV

    os.environ.update(LOCAL_ENV)
    os.environ.pop("RAY_ADDRESS", None)
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

    from ray.cluster_utils import Cluster

    store = args.object_store_mb * 1024 * 1024
    cluster = Cluster(initialize_head=False)
    try:
        cluster.add_node(num_cpus=args.head_cpus, include_dashboard=True, dashboard_port=args.dashboard_port,
                         object_store_memory=store, **node_args(0))
        for index in range(1, args.workers + 1):
            cluster.add_node(num_cpus=args.worker_cpus, object_store_memory=store, **node_args(index))
        cluster.wait_for_nodes()
        wait_for_job_agents(cluster)
        # SIGTERM stops the whole cluster like Ctrl-C (set after the nodes start: Ray installs a
        # handler of its own when a node starts, which drains for 30 s and leaves the others).
        signal.signal(signal.SIGTERM, _interrupt)
        info = {"address": f"http://127.0.0.1:{args.dashboard_port}", "gcs_address": cluster.address,
                "nodes": 1 + args.workers, "pid": os.getpid(),
                "session_dir": cluster.head_node.get_session_dir_path()}
        if args.ready_file:
            tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
            tmp.write_text(json.dumps(info))
            tmp.replace(args.ready_file)
        print(f"cotvtm: {info['nodes']} Ray nodes up on 127.0.0.1 (session {info['session_dir']}); "
              f"submit jobs with: ray job submit --address {info['address']} ...; Ctrl-C stops them", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.shutdown()
    print("cotvtm: local cluster stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
