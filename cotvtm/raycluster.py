"""Start or join Ray the way this project runs it."""

import os
from pathlib import Path

# Ray binds to the machine's network address unless told otherwise; these keep a
# local run on 127.0.0.1 and skip token auth, which a single-user local run does not need.
from cotvtm.about import LOCAL_RAY_ENV as LOCAL_ENV

# Ray Data's logging for a local Ray's workers: its console at warnings, its log file at every
# level. A file, because Ray Data reads its configuration from a path in each process; a local
# Ray's workers share this machine's files, a cluster's nodes may not, so a cluster keeps its own.
RAY_DATA_LOGGING = Path(__file__).parent / "data" / "ray_data_logging.yaml"
# Ray Data's own logging settings: where either is set, it stands and RAY_DATA_LOGGING is not used.
RAY_DATA_LOGGING_SETTINGS = ("RAY_DATA_LOGGING_CONFIG", "RAY_DATA_LOG_ENCODING")
# Ray Train 2.60 hands Ray Data a deprecated option of Ray's own on every run
# (ray/train/_internal/data_config.py), and its dataset manager warns about it: a Python warnings
# filter for that one message (a literal prefix: PYTHONWARNINGS escapes it).
RAY_OWN_DEPRECATION = "ignore:`ExecutionOptions.exclude_resources` is deprecated"

_local_ray = None  # the GCS address of the local Ray that init_ray started in this process


def init_ray(num_cpus: int | None = None) -> str:
    """Join the cluster named by RAY_ADDRESS, or start a local one on loopback; what it did, in words.

    The loopback settings must be in the environment before Ray is first imported;
    ``cotvtm/__init__.py`` puts them there. Ray's own INFO lines go to its log files, not the
    console (``quiet_ray_data``); its warnings and errors still show.
    """
    import logging
    import sys

    import ray

    global _local_ray
    if ray.is_initialized():
        return "joined the Ray this process runs"
    if not sys.stdout.isatty():  # the actors' lines reach a pipe or a log file without colour codes
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    quiet = dict(log_to_driver=True, logging_level=logging.WARNING)  # the driver's "ray" logger: warnings up
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], **quiet)
        done = f"joined the Ray cluster at {os.environ['RAY_ADDRESS']}"
    else:
        # address="local": always a new local Ray, never one that happens to run on this machine
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                 runtime_env={"env_vars": local_worker_env()}, **quiet)
        _local_ray = ray.get_runtime_context().gcs_address
        done = f"started a local Ray ({ray.cluster_resources().get('CPU', 0):.0f} CPUs)"
    quiet_ray_data()
    return done


def local_worker_env() -> dict:
    """The environment of a local Ray's workers: the loopback settings, Ray Data's logging with
    its console at warnings (unless Ray Data's own settings are set) and Python's warnings
    without Ray's known deprecation notice (after any filters already in PYTHONWARNINGS)."""
    env = dict(LOCAL_ENV)
    if not any(os.environ.get(name) for name in RAY_DATA_LOGGING_SETTINGS):
        env["RAY_DATA_LOGGING_CONFIG"] = str(RAY_DATA_LOGGING)
    env["PYTHONWARNINGS"] = ",".join(filter(None, (os.environ.get("PYTHONWARNINGS"), RAY_OWN_DEPRECATION)))
    return env


def runs_local_ray() -> bool:
    """Whether the Ray this process runs is the local one that ``init_ray`` started: it ends with
    this process and has no dashboard, hence no state API."""
    import ray

    return ray.is_initialized() and _local_ray == ray.get_runtime_context().gcs_address


def quiet_ray_data() -> None:
    """Ray Data's progress bars under a terminal, and none in a pipe or a log file (there it
    would log a block of lines every few seconds, from the driver and from Ray Train's workers
    alike: the job prints its own progress lines instead). Its INFO lines (each dataset's plan)
    go only to its log file (``ray-data.log`` of the session); its warnings still show."""
    import logging
    import sys

    import ray.data

    ctx = ray.data.DataContext.get_current()  # datasets made after this carry it to the workers
    ctx.enable_progress_bars = ctx.enable_operator_progress_bars = sys.stdout.isatty()
    # Its notice that the bars are off, and which kind it draws: said once, here, by the job.
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    for handler in logging.getLogger("ray.data").handlers:
        if handler.name == "console":  # as Ray Data's logging config names it; the file keeps every level
            handler.setLevel(logging.WARNING)


# Only settings that are not secret travel with the actors: Ray writes a runtime_env into its
# logs and shows it on the dashboard and the state API. Credentials (AWS keys and session
# tokens, the teacher's API key) come from each node's own environment: a local run's workers
# inherit the driver's; a cluster's nodes have an instance role, IRSA, a Kubernetes Secret in
# the pod spec or a profile file (cluster/README.md, "Credentials").
FORWARDED_ENV = ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


def worker_runtime_env() -> dict:
    """Ray ``runtime_env`` carrying the driver's non-secret S3 settings to stage actors."""
    return {"env_vars": {key: os.environ[key] for key in FORWARDED_ENV if key in os.environ}}
