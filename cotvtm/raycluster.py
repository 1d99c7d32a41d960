"""Start or join Ray the way this project runs it."""

import os

# Ray binds to the machine's network address unless told otherwise; these keep a
# local run on 127.0.0.1 and skip token auth, which a single-user local run does not need.
from cotvtm.about import LOCAL_RAY_ENV as LOCAL_ENV


def init_ray(num_cpus: int | None = None) -> None:
    """Join the cluster named by RAY_ADDRESS, or start a local one on loopback.

    The loopback settings must be in the environment before Ray is first imported;
    ``cotvtm/__init__.py`` puts them there.
    """
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=True)
    else:
        # address="local": always a new local Ray, never one that happens to run on this machine
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=True,
                 runtime_env={"env_vars": dict(LOCAL_ENV)})
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = True
    ctx.enable_operator_progress_bars = True


# Only settings that are not secret travel with the actors: Ray writes a runtime_env into its
# logs and shows it on the dashboard and the state API. Credentials (AWS keys and session
# tokens, the teacher's API key) come from each node's own environment: a local run's workers
# inherit the driver's; a cluster's nodes have an instance role, IRSA, a Kubernetes Secret in
# the pod spec or a profile file (cluster/README.md, "Credentials").
FORWARDED_ENV = ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


def worker_runtime_env() -> dict:
    """Ray ``runtime_env`` carrying the driver's non-secret S3 settings to stage actors."""
    return {"env_vars": {key: os.environ[key] for key in FORWARDED_ENV if key in os.environ}}
