"""Distillation across two Ray nodes on this machine, surviving a killed worker."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cotvtm.prior import TwoStagePrior

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    work = tmp_path_factory.mktemp("multinode")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "multinode_distill.py"), str(work)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_workers_ran_on_both_nodes(outcome):
    assert len(outcome["cluster_nodes"]) == 2
    assert sorted(outcome["metrics"]["nodes"]) == outcome["cluster_nodes"]


def test_killed_worker_resumes_from_last_checkpoint_and_run_completes(outcome):
    assert outcome["killed"].get("pid"), "no worker was killed"
    assert outcome["metrics"]["resumed_from"] >= 1  # restarted from a checkpoint, not from scratch
    assert outcome["metrics"]["step"] == outcome["steps"]
    assert TwoStagePrior.from_pretrained(outcome["prior"]).config.trained
