"""Local workers pinned to their share of the CPUs (run/cpus.py): every backend sizes its
thread pools by the CPUs it may run on, so two unpinned workers on two cores ran four busy
threads each pool's size (PyTorch: 4x the CPU time of one worker, benchmarks/RESULTS.md)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from greenscreen_pipeline.executors.local import slot_environment
from greenscreen_pipeline.run import cpus

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")


def test_the_cpus_are_shared_out_contiguously_and_in_turn_past_one_each(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6})
    assert cpus.shares(1) is None  # one worker keeps every CPU
    assert cpus.shares(2) == [[0, 1, 2, 3], [4, 5, 6]]
    assert cpus.shares(3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert cpus.shares(9) == [[0], [1], [2], [3], [4], [5], [6], [0], [1]]
    assert cpus.environment(1, 3) == {"GREENSCREEN_CPUS": "3,4"}
    env = slot_environment(1, 2, ["0", "1"])
    assert (env["CUDA_VISIBLE_DEVICES"], env["GREENSCREEN_CPUS"]) == ("1", "4,5,6")
    assert slot_environment(0, 1, None) is None  # this process's environment, unpinned


PINNED = "import os, sys; from greenscreen_pipeline.run import cpus; cpus.pin(); " \
         "import numpy; print(sorted(os.sched_getaffinity(0)))"


def test_a_worker_pins_itself_and_the_threads_it_starts_to_its_share():
    mine = sorted(os.sched_getaffinity(0))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GREENSCREEN_CPUS": str(mine[-1])}
    done = subprocess.run([sys.executable, "-c", PINNED], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip() == f"[{mine[-1]}]", done.stderr
    # CPUs the process may not use (taken away since): said, and it runs unpinned.
    env["GREENSCREEN_CPUS"] = "100000"
    done = subprocess.run([sys.executable, "-c", PINNED], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip() == str(mine)
    assert "could not pin to CPUs 100000" in done.stderr
