"""Start or join Ray the way this project runs it."""

import os

# Ray binds to the machine's network address unless told otherwise; these keep a
# local run on 127.0.0.1 and skip token auth, which a single-user local run does not need.
from cotvtm import LOCAL_RAY_ENV as LOCAL_ENV


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


# The driver's S3 settings reach the actors that read and write objects. On a cluster with
# instance roles or IRSA none of these are set, and the nodes' own credential chain applies.
FORWARDED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
                 "AWS_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


def worker_runtime_env() -> dict:
    """Ray ``runtime_env`` carrying the driver's AWS_* settings to stage actors."""
    return {"env_vars": {key: os.environ[key] for key in FORWARDED_ENV if key in os.environ}}
