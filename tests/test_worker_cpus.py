"""Local workers pinned to their share of the CPUs (run/cpus.py): every backend sizes its
thread pools by the CPUs it may run on, so two unpinned workers on two cores ran two busy
threads per pool each (PyTorch: 6 to 12x the CPU time of two pinned ones, benchmarks/RESULTS.md)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from greenscreen_pipeline.executors.local import slot_environment
from greenscreen_pipeline.run import cpus

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")


def test_the_cpus_are_shared_out_contiguously_and_never_doubled(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6})
    monkeypatch.setattr(cpus, "CPU_MAX", tmp_path / "no-quota")
    for cap in cpus.THREAD_CAPS:
        monkeypatch.delenv(cap, raising=False)
    monkeypatch.delenv(cpus.ENV, raising=False)
    assert cpus.shares(1) is None  # one worker keeps every CPU
    assert cpus.shares(2) == [[0, 1, 2, 3], [4, 5, 6]]
    assert cpus.shares(3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert cpus.shares(9) is None  # more workers than CPUs: the system spreads them
    assert cpus.environment(1, 3) == {"GREENSCREEN_CPUS": "3,4", "OMP_NUM_THREADS": "2",
                                      "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    assert cpus.environment(0, 9)["OMP_NUM_THREADS"] == "1" and \
        cpus.ENV not in cpus.environment(0, 9)
    env = slot_environment(1, 2, ["0", "1"])
    assert (env["CUDA_VISIBLE_DEVICES"], env["GREENSCREEN_CPUS"]) == ("1", "4,5,6")
    assert slot_environment(0, 1, None) is None  # this process's environment, unpinned
    # A container's quota of 2 CPUs over the 7 it lets the process see: 1 thread each.
    (tmp_path / "cpu.max").write_text("200000 100000\n")
    monkeypatch.setattr(cpus, "CPU_MAX", tmp_path / "cpu.max")
    assert cpus.quota() == 2 and cpus.environment(0, 2)["OMP_NUM_THREADS"] == "1"
    # A share this process was given itself is not passed on to its one worker.
    monkeypatch.setenv(cpus.ENV, "3")
    assert cpus.ENV not in slot_environment(0, 1, None)


THREADS = """import os
import greenscreen_pipeline.run.worker  # pins first, then imports NumPy (its BLAS threads)
import numpy
tasks = os.listdir("/proc/self/task")
print(sorted({c for t in tasks for c in os.sched_getaffinity(int(t))}), len(tasks))
"""


def test_a_worker_pins_itself_and_every_thread_it_starts_to_its_share():
    mine = sorted(os.sched_getaffinity(0))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GREENSCREEN_CPUS": str(mine[-1])}
    done = subprocess.run([sys.executable, "-c", THREADS], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.split("]")[0] + "]" == f"[{mine[-1]}]", done.stderr[-2000:]
    # CPUs the process may not use (taken away since): said, and it runs unpinned.
    env["GREENSCREEN_CPUS"] = "100000"
    done = subprocess.run([sys.executable, "-c", THREADS], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.split("]")[0] + "]" == str(mine)
    assert "could not pin to CPUs 100000" in done.stderr


def test_all_with_several_workers_trains_its_final_runs_on_every_cpu_and_its_first_gpu(
        tmp_path):
    """The sweep's slot 0 is pinned to its share; `all` closes it after the sweep and the
    final runs, alone now, get a worker on every CPU and on the first of --gpus."""
    from argparse import Namespace

    from greenscreen_pipeline import space
    from greenscreen_pipeline.executors import slots

    (tmp_path / "config.yaml").write_text("settings: {runs: 2}\nconfiguration:\n"
                                          "  model: {values: [ffnn]}\n")
    config = space.load(tmp_path / "config.yaml")
    args = Namespace(executor="local", workers=2, gpus="2,3")
    first, final = slots.first_worker(config, args), slots.final_worker(config, args)
    assert first.env["CUDA_VISIBLE_DEVICES"] == final.env["CUDA_VISIBLE_DEVICES"] == "2"
    assert first.env.get(cpus.ENV) == cpus.environment(0, 2).get(cpus.ENV)  # None: 1 CPU
    assert cpus.ENV not in final.env  # unpinned, and no cap of the sweep's on its threads
    assert final.env.get("OMP_NUM_THREADS") == os.environ.get("OMP_NUM_THREADS")
