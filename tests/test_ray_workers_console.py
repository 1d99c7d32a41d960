"""What a local Ray's workers print: Ray Data's plans only in its log file, not Ray's own
deprecation notice, and Ray Train without the placement-group cleaner that a local Ray cannot serve."""

import os
import subprocess
import sys

from cotvtm.raycluster import RAY_DATA_LOGGING, local_worker_env

# A process with Ray Data configured from its environment, as each worker is: an INFO line (a
# dataset's plan), the progress-bar notice and a real warning; its log file in the given folder.
RAY_DATA_WORKER = """
import logging, sys
import ray.data
[file] = [h for h in logging.getLogger("ray.data").handlers if h.name == "file"]
file._get_log_directory = lambda: sys.argv[1]
logging.getLogger("ray.data._internal.execution.streaming_executor").info("Execution plan of Dataset d")
logging.getLogger("ray.data._internal.progress").warning("Progress bars disabled.")
logging.getLogger("ray.data._internal.execution.streaming_executor").warning("a block failed")
"""


def test_ray_data_s_info_goes_to_its_log_file_and_its_warnings_to_the_console(tmp_path, monkeypatch):
    for name in ("RAY_DATA_LOGGING_CONFIG", "RAY_DATA_LOG_ENCODING"):
        monkeypatch.delenv(name, raising=False)
    env = {**os.environ, **local_worker_env()}
    assert env["RAY_DATA_LOGGING_CONFIG"] == str(RAY_DATA_LOGGING) and RAY_DATA_LOGGING.is_file()
    proc = subprocess.run([sys.executable, "-c", RAY_DATA_WORKER, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "a block failed" in proc.stderr and "Execution plan" not in proc.stderr, proc.stderr
    assert "Progress bars" not in proc.stderr
    assert "Execution plan of Dataset d" in (tmp_path / "ray-data.log").read_text()
    default = subprocess.run([sys.executable, "-c", RAY_DATA_WORKER, str(tmp_path)], env=dict(os.environ),
                             capture_output=True, text=True, timeout=120)
    assert "Execution plan of Dataset d" in default.stderr and "Progress bars" in default.stderr  # Ray's default


def test_a_user_s_own_ray_data_logging_is_kept(monkeypatch):
    monkeypatch.setenv("RAY_DATA_LOG_ENCODING", "JSON")
    assert "RAY_DATA_LOGGING_CONFIG" not in local_worker_env()


def test_only_ray_s_own_deprecation_notice_is_silenced_after_the_user_s_filters(monkeypatch):
    """Ray Data's real warning, raised as Ray Train's dataset manager raises it, beside another."""
    monkeypatch.setenv("PYTHONWARNINGS", "default")  # the user's own: every warning shown
    ours = local_worker_env()["PYTHONWARNINGS"]
    assert ours.startswith("default,")
    script = ("import warnings\nfrom ray.data import ExecutionOptions, ExecutionResources\n"
              "ExecutionOptions(exclude_resources=ExecutionResources(cpu=1))\n"
              "warnings.warn('another deprecation', DeprecationWarning)\n")
    for pythonwarnings, shown in ((ours, False), ("default", True)):
        proc = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONWARNINGS": pythonwarnings},
                              capture_output=True, text=True, timeout=120)
        assert ("exclude_resources` is deprecated" in proc.stderr) is shown, proc.stderr
        assert "another deprecation" in proc.stderr, proc.stderr


def test_the_local_trainer_leaves_out_only_the_placement_group_cleaner():
    from ray.train.torch import TorchTrainer

    from cotvtm.training.local_trainer import LocalTorchTrainer

    names = {type(cb).__name__ for cb in TorchTrainer(lambda: None)._create_default_callbacks()}
    local = {type(cb).__name__ for cb in LocalTorchTrainer(lambda: None)._create_default_callbacks()}
    assert names - local == {"PlacementGroupCleanerCallback"} and local < names
