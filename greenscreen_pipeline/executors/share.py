"""`run-one`: one run, or a share of a sweep's runs one after another in one warm worker,
as a Slurm array task (`slurm.py` writes the array) or by hand.

Each run is claimed like every other run (`attempt.train_claimed`), and the budget is
asked before each (`budget.allows_next`); once it is spent, the share's runs left parked
at a rung by an earlier task still resume (`budget.left_parked`), as in a local sweep.
SIGTERM (Slurm's time limit, `scancel`) or SIGINT leave the run in flight interrupted,
its claim released, to resume. A run whose rung peers' array tasks ended without them is
parked at the rung (`slurm_tasks`), and the task goes on with its share.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import budget
from ..errors import Interrupted, UsageError
from ..log import logger
from ..space import SweepConfig
from .attempt import train_claimed
from .progress import failure
from .slurm_tasks import SHARES_ENV
from .stop import Stop
from .workers import WorkerSlot

log = logger(__name__)


def indices_of(runs: int, index: int | None,
               share: tuple[int, int] | None) -> "list[int] | range":
    """Run `index`, or share k/N's runs: k, k + N, ... below `runs`."""
    return [index] if share is None else range(share[0], runs, share[1])


def train_one(config: SweepConfig, sweep_dir: Path, i: int, stop: Stop,
              slot: WorkerSlot) -> bool:
    """Trains run `i` (claimed as every run is) and says how it ended; whether it was left
    parked at a rung."""
    report = train_claimed(config, sweep_dir, i, config.settings["epochs"], None, stop, slot)
    why = failure(report.outcome) \
        if report.note in ("failed", "interrupted", "parked") else None
    log.info("run %03d %s", i, f"{report.note}: {why}" if why else report.said())
    return report.note == "parked"


def train_share(config: SweepConfig, index: int | None,
                share: tuple[int, int] | None) -> None:
    """Trains run `index` (`--index`) or share k/N (`--share`) in one warm worker, saying
    how each run ended, and at the end what the task left parked and the budget's stop.

    Raises:
        Interrupted: SIGINT or SIGTERM stopped it; the run in flight resumes later.
    """
    s = config.settings
    sweep_dir = Path(s["sweep_dir"])
    if index is not None and index >= s["runs"]:  # a folder outside the sweep was trained
        raise UsageError(f"--index {index} is not a run of this sweep; allowed: 0 to "
                         f"{s['runs'] - 1} (settings.runs {s['runs']}, or --runs)")
    if share is not None:  # which array task trains a peer (ArrayJob.task_of)
        os.environ[SHARES_ENV] = str(share[1])
    stop = Stop().install()
    slot = WorkerSlot(None, s["worker_memory_growth_mb"])
    indices, parked, trained = indices_of(s["runs"], index, share), 0, set()
    try:
        for i in indices:
            if stop.requested or not budget.allows_next(s, sweep_dir):
                break
            parked += train_one(config, sweep_dir, i, stop, slot)
            trained.add(i)
        # The budget spent: runs of this share an earlier task left parked still resume.
        for i in budget.left_parked(s, sweep_dir, among=indices, exclude=trained):
            if stop.requested:
                break
            parked += train_one(config, sweep_dir, i, stop, slot)
    finally:
        slot.close()
    if stop.requested:
        raise Interrupted("stopped; the run in flight resumes when it runs again")
    if parked:
        log.info("%d run(s) of this task left parked at a rung: their peers will not reach "
                 "it in this submission; submitting the sweep again resumes them there",
                 parked)
    said = budget.stopped_line(s, sweep_dir)
    if said:
        log.info("%s", said)
