"""The local executor: `workers` threads on this machine, each training one run at a time
in its own process; worker k sees only GPU gpus[k].

With `search: pareto` the runs go in batches of `workers`: each batch is proposed once
the one before it has ended (`proposals.configure_batch`), its configurations written to
the run folders, then trained. Halving needs no more than that: every run of a batch
trains at once, so a run waiting at a rung never waits for a run without a worker."""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

from .. import ledger, runfolder
from ..errors import Interrupted
from ..log import logger
from ..space import SweepConfig
from . import proposals
from .attempt import train_claimed
from .progress import Progress
from .stop import Stop

log = logger(__name__)


def run_sweep(config: SweepConfig, sweep_dir: Path, workers: int = 1,
              gpus: list[str] | None = None) -> list[dict]:
    """Trains every unfinished run, `workers` at a time; returns each run's outcome.

    SIGINT or SIGTERM stop it (see `Stop`) and raise `Interrupted`; running the same
    command again finishes what is left.
    """
    runs = config.settings["runs"]
    n_gpus = ledger.gpu_count()
    if workers > 1 and not gpus and n_gpus:
        log.warning("%d workers and no --gpus: the runs share this machine's %d GPU(s). Each "
                    "run is charged its share of a shared GPU, and the sweep's total measures "
                    "every GPU once; --gpus 0,1,... gives each worker its own.", workers, n_gpus)
    books = ledger.DeviceLedger(sweep_dir, runs, config.settings["energy_source"], gpus).start()
    progress = Progress(runs, books)
    stop = Stop().install()
    try:
        if config.settings["search"] == "pareto":
            for batch in proposals.batches(config, sweep_dir, max(1, workers)):
                train(config, sweep_dir, batch, workers, gpus, stop, progress)
                if stop.requested:
                    break
        else:
            train(config, sweep_dir, range(runs), workers, gpus, stop, progress)
    finally:
        books.stop()
    statuses = runfolder.statuses(sweep_dir, runs)
    if stop.requested:
        done = sum(r["status"] == "done" for r in statuses)
        raise Interrupted(f"stopped with {done}/{runs} runs done; run the same command again "
                          "to finish (interrupted runs resume)", statuses)
    return statuses


def train(config: SweepConfig, sweep_dir: Path, indices: range, workers: int,
          gpus: list[str] | None, stop: Stop, progress: Progress) -> None:
    """Trains runs `indices` on `workers` threads, in index order, until they are all
    through or a stop is requested."""
    epochs = config.settings["epochs"]
    pending: queue.Queue[int] = queue.Queue()
    for i in indices:
        pending.put(i)

    def worker(k: int) -> None:
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": gpus[k % len(gpus)]} if gpus else None
        while not stop.requested:
            try:
                i = pending.get_nowait()
            except queue.Empty:
                return
            progress.report(sweep_dir, train_claimed(config, sweep_dir, i, epochs, env, stop))

    threads = [threading.Thread(target=worker, args=(k,), daemon=True)
               for k in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(timeout=0.2)  # short waits: the signal handlers run in this thread
