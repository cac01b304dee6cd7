"""Ray executor: every unfinished run is one Ray task (`pip install ".[ray]"`).

Each task claims its run and trains it in a subprocess exactly as the local
executor does (`sweep._do`), so run folders, claims, resume and failure
records are the same. A task asks for `cpus_per_run` CPUs and, when the
cluster has GPUs, one GPU (Ray then sets `CUDA_VISIBLE_DEVICES`, so the run's
SMICallback measures only that GPU). The sweep folder and this checkout must
be on storage every node sees, at the same path.

Without an address a private local Ray instance is started that listens on
loopback only and sends no usage statistics. Ray binds its servers (GCS,
raylet, object manager, workers, agents) to the node's IP address, and takes
127.0.0.1 as that address when `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, the
single-machine mode Ray uses by default on macOS and Windows. Ray reads that
variable when it is first imported, so `start` sets it before importing Ray and
checks the node address afterwards. With an address (a real cluster), binding
is the cluster operator's business.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from . import runfolder, sweep
from .space import SweepConfig

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _train(config: SweepConfig, sweep_dir: str, index: int, epochs: int) -> tuple:
    """The Ray task: the same claim-and-train step as a local worker."""
    return sweep._do(config, Path(sweep_dir), index, epochs, None)


def start(address: str | None, num_cpus: int | None):
    """Connects to the cluster at `address`, or starts a local Ray instance on loopback."""
    if not address:
        # Must precede Ray's first import (see the module docstring); and no
        # telemetry leaves the machine unless the user asks for it.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise SystemExit('greenscreen: --executor ray needs Ray: pip install ".[ray]" '
                         "(or pip install ray)") from None
    if address:
        ray.init(address=address, log_to_driver=False)
        return ray
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 2**20)  # run results are small JSON
    node_ip = ray.util.get_node_ip_address()
    if node_ip not in LOOPBACK:
        ray.shutdown()
        raise SystemExit(f"greenscreen: the private Ray instance took node address {node_ip}, "
                         "so it would listen beyond loopback; Ray was imported before "
                         "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 was set. Start it from a fresh "
                         "process, or give --address of a cluster.")
    return ray


def _stop(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def resources(cluster: dict, gpus_per_run: int | None, cpus_per_run: int) -> dict:
    """Per-task resources: one GPU per run when the cluster has GPUs, CPUs otherwise."""
    if gpus_per_run is None:
        gpus_per_run = 1 if cluster.get("GPU", 0) >= 1 else 0
    if gpus_per_run > cluster.get("GPU", 0):
        raise SystemExit(f"greenscreen: --gpus-per-run {gpus_per_run} but the Ray cluster has "
                         f"{cluster.get('GPU', 0):g} GPUs; allowed: 0 to {cluster.get('GPU', 0):g}")
    if cpus_per_run > cluster.get("CPU", 0):
        raise SystemExit(f"greenscreen: --cpus-per-run {cpus_per_run} but the Ray cluster has "
                         f"{cluster.get('CPU', 0):g} CPUs; allowed: 1 to {cluster.get('CPU', 0):g}")
    return {"num_gpus": gpus_per_run, "num_cpus": cpus_per_run}


def run_sweep(config: SweepConfig, sweep_dir: Path, address: str | None = None,
              num_cpus: int | None = None, gpus_per_run: int | None = None,
              cpus_per_run: int = 1) -> list[dict]:
    """Trains every unfinished run as a Ray task; returns each run's status."""
    s = config.settings
    todo = runfolder.unfinished(sweep_dir, s["runs"])
    signal.signal(signal.SIGTERM, _stop)  # like Ctrl-C: cancel the tasks cleanly
    ray = start(address, num_cpus)
    pending = {}
    try:
        cluster = ray.cluster_resources()
        res = resources(cluster, gpus_per_run, cpus_per_run)
        print(f"greenscreen: Ray cluster {cluster.get('CPU', 0):g} CPUs, "
              f"{cluster.get('GPU', 0):g} GPUs; {len(todo)} runs to train, "
              f"each with {res['num_gpus']} GPU(s) and {res['num_cpus']} CPU(s)", flush=True)
        # No Ray-level retries: a lost task leaves its run unfinished, and rerunning the
        # sweep trains it; a retry on another node would find the dead task's claim.
        task = ray.remote(_train).options(max_retries=0, **res)
        pending = {task.remote(config, str(sweep_dir.resolve()), i, s["epochs"]): i
                   for i in todo}
        progress = sweep._Progress(len(todo))
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(ready[0])
            try:
                st, note, wall = ray.get(ready[0])
            except ray.exceptions.RayError as exc:
                st, note, wall = {"status": "lost"}, f"lost ({type(exc).__name__})", None
            progress.report(sweep_dir, i, st, note, wall)
    except KeyboardInterrupt:
        # Without force, a running task gets a KeyboardInterrupt: its run process is sent
        # SIGTERM, marks the run interrupted and its claim is released.
        print("\ngreenscreen: stopping the Ray tasks; interrupted runs resume when you run the "
              "same command again", file=sys.stderr, flush=True)
        for ref in pending:
            ray.cancel(ref, force=False)
        ray.wait(list(pending), num_returns=len(pending), timeout=90)
        raise
    finally:
        ray.shutdown()
    return runfolder.statuses(sweep_dir, s["runs"])
