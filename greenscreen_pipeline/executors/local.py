"""The local executor: `workers` slots on this machine, each a thread with its own warm
worker process (`workers.WorkerSlot`) that trains runs one after another; slot k sees
only GPU gpus[k].

The slots' threads live as long as the sweep: Linux stops a worker when the thread that
started it ends (PR_SET_PDEATHSIG follows the thread), and a worker is meant to outlive
a batch. With `search: pareto` the runs go in batches of `workers`: each batch is
proposed once the one before it has ended (`proposals.configure_batch`), its
configurations written to the run folders, then trained.

Halving (issue 37 item 3): a run that reaches a rung its peers have not decided gives its
worker back (status parked, its checkpoint kept; `rung_callback.RunParked`), and the slot
takes the next run. Before each new run, a parked run whose rung is now decided resumes
from its checkpoint, lowest index first (`parked.ParkedRuns`; a random search only, see
there). `settings.release_at_rungs: false` keeps the run waiting in its worker. A peer
the spent budget keeps from starting is not waited for (`rungfiles.never_starts`), and a
run an earlier sweep's process left parked resumes even once the budget is spent: it is
in flight, its energy spent. When
nothing here trains and no live process trains a peer a parked run waits for (it was
interrupted), the sweep ends with that run parked and says so, where a waiting run would
have waited for ever; the same command resumes it."""

from __future__ import annotations

import errno
import os
import queue
import threading
from pathlib import Path
from typing import Iterable

from .. import budget, endings, ledger, runfolder
from ..errors import Interrupted, PipelineError, RunsFailing
from ..log import logger
from ..run import cpus
from ..run.execute import NO_SPACE, PARKED
from ..space import SweepConfig
from . import proposals
from .attempt import train_claimed
from .parked import ParkedRuns, releases
from .progress import FailureStreak, Progress, through
from .stop import Stop
from .workers import WorkerSlot

log = logger(__name__)


def run_sweep(config: SweepConfig, sweep_dir: Path, workers: int = 1,
              gpus: list[str] | None = None, first_slot: WorkerSlot | None = None) -> list[dict]:
    """Trains every unfinished run, `workers` at a time; returns each run's outcome.
    `first_slot`: slot 0's worker, which the caller keeps and closes (it may have probed
    your code, and `all` trains the final runs in it).

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
    stop = Stop().install()
    progress = Progress(None if budget.unbounded(config.settings) else runs, books,
                        lambda now: budget.line(config.settings, sweep_dir, now))
    pool = Pool(config, sweep_dir, max(1, workers), gpus, stop, progress, first_slot)
    streak = FailureStreak(config.settings["stop_after_failures"])
    pool.on_report = lambda report: streak.record(report)
    try:
        if config.settings["search"] == "pareto":
            for batch in proposals.batches(config, sweep_dir, max(1, workers)):
                pool.train(batch)
                if stop.requested or not budget.allows_next(config.settings, sweep_dir):
                    break
        else:
            pool.train(range(runs))
    finally:
        pool.close()
        books.stop()
    if pool.stopped_because:
        raise RunsFailing(pool.stopped_because)
    planned = None if budget.unbounded(config.settings) else runs  # not 0/10000 runs done
    if pool.no_space:
        raise NoSpace(f"stopped with {through(runfolder.started(sweep_dir, runs), planned)}: "
                      f"{pool.no_space}. Free some space, then run the same command again "
                      "(interrupted runs resume)")
    if stop.requested:  # the runs with a folder only: `runs` may be a billion (issue 33)
        started = runfolder.started(sweep_dir, runs)
        raise Interrupted(f"stopped with {through(started, planned)}; run the same command "
                          "again to finish (interrupted runs resume)", started)
    return budget.outcomes(config.settings, sweep_dir)


class NoSpace(PipelineError):
    """The sweep stopped: its disk is full. Nothing failed; the same command resumes it."""


def slot_environment(k: int, workers: int, gpus: list[str] | None) -> dict | None:
    """Slot `k`'s environment: its GPU of `gpus` and, with several workers, its share of
    the CPUs (`run/cpus.py`); None (this process's) for one worker without `gpus`. A share
    this process was itself given is not passed on: one worker is never pinned."""
    own = {**({"CUDA_VISIBLE_DEVICES": gpus[k % len(gpus)]} if gpus else {}),
           **cpus.environment(k, workers)}
    if not own and cpus.ENV not in os.environ:
        return None
    inherited = {name: value for name, value in os.environ.items() if name != cpus.ENV}
    return {**inherited, **own}


class Pool:
    """`workers` slot threads, each with its warm worker, taking runs in index order."""

    def __init__(self, config: SweepConfig, sweep_dir: Path, workers: int,
                 gpus: list[str] | None, stop: Stop, progress: Progress,
                 first_slot: WorkerSlot | None = None) -> None:
        self.config, self.sweep_dir, self.stop, self.progress = config, sweep_dir, stop, progress
        self.on_report = lambda report: None  # -> why the sweep must stop, or None
        self.stopped_because: str | None = None
        self.no_space: str | None = None  # why the disk is full, once a run found it
        self.pending: queue.Queue[tuple[int, bool] | None] = queue.Queue()  # (run, release)
        self.freed = threading.Event()  # a slot finished a run
        self.release, self.parked = releases(config), ParkedRuns(config, sweep_dir)
        self.handed_out: set[int] = set()  # every run given to a slot by this process
        slots = [first_slot] + [None] * (workers - 1)
        self.threads = [threading.Thread(target=self._serve,
                                         args=(slot_environment(k, workers, gpus), slot),
                                         name=f"greenscreen-slot-{k}", daemon=True)
                        for k, slot in enumerate(slots)]
        for t in self.threads:
            t.start()

    def train(self, indices: Iterable[int]) -> None:
        """Trains runs `indices` and returns once each is through (or a stop skipped it).

        Runs are handed out lazily, one as a slot frees, so a huge `runs` costs nothing
        up front and a stop is seen before the next run starts."""
        it, exhausted = iter(indices), False
        while True:
            self.freed.clear()
            while self.pending.unfinished_tasks < len(self.threads):
                resumed = None if self.stop.requested else self.parked.take_decided()
                if resumed is not None:
                    self.pending.put((resumed, self.release))
                elif exhausted or not self._hand_out(it):
                    exhausted = True
                    break
            if self.pending.unfinished_tasks == 0 and exhausted:
                if not self.parked or self.stop.requested or self._left_parked():
                    return
            self.freed.wait(0.2)  # short waits: the signal handlers run in this thread

    def _hand_out(self, it) -> bool:
        if self.stop.requested:
            return False
        if budget.allows_next(self.config.settings, self.sweep_dir):
            index = next(it, None)
        else:  # no new run; one an earlier sweep left parked is in flight, and finishes
            index = self._left_parked_before()
        if index is None:
            return False
        self.handed_out.add(index)
        self.pending.put((index, self.release))
        return True

    def _left_parked_before(self) -> int | None:
        """The lowest run parked at a rung by an earlier sweep's process and not handed out
        here yet (`budget.left_parked`)."""
        return next(budget.left_parked(self.config.settings, self.sweep_dir,
                                       exclude=self.handed_out), None)

    def _left_parked(self) -> bool:
        """Whether the parked runs must be left parked: nothing here trains, and no live
        process trains a peer they wait for (it never started: the budget was spent, it
        failed to start, ...). Says so; running the same command again resumes them."""
        stuck = self.parked.stuck()
        if not stuck:
            return False  # another process trains a peer: its rung record will come
        for index, missing in stuck.items():
            log.warning("run %03d stays parked: run(s) %s it waits for at its rung did not "
                        "train in this sweep; run the same command again to resume it",
                        index, ", ".join(f"{p:03d}" for p in missing) or "?")
        return True

    def close(self) -> None:
        """Ends the slots' threads, which end their workers."""
        for _ in self.threads:
            self.pending.put(None)
        for t in self.threads:
            while t.is_alive():
                t.join(timeout=0.2)

    def _no_room(self, why: str) -> None:
        """Stops the sweep: the disk is full (the runs in flight are interrupted)."""
        if self.no_space is None and not self.stop.requested:
            self.no_space = why
            self.stop.request()

    def _serve(self, env: dict | None, slot: WorkerSlot | None) -> None:
        epochs = self.config.settings["epochs"]
        given = slot is not None  # the caller's: it closes it (`all` trains final in it)
        slot = slot or WorkerSlot(env, self.config.settings["worker_memory_growth_mb"])
        try:
            while True:
                item = self.pending.get()
                index = item[0] if item else None
                try:
                    if item is None:
                        return
                    if not self.stop.requested:
                        report = train_claimed(self.config, self.sweep_dir, index, epochs,
                                               env, self.stop, slot, release=item[1])
                        if report.outcome.get("attempt_code") == PARKED:  # parked just now
                            self.parked.add(index, report.outcome)
                            continue
                        self.progress.report(self.sweep_dir, report)
                        reason = str(report.outcome.get("reason", ""))
                        if report.outcome.get("attempt_code") == NO_SPACE or \
                                reason.startswith(endings.NO_SPACE):  # so would the rest
                            self._no_room(f"run {index:03d}: "
                                          + reason.split("; free some space")[0])
                        why = self.on_report(report)
                        if why and not self.stop.requested:
                            self.stopped_because = why  # said once, by the error it raises
                            log.warning("stopping: runs failed one after another" + (
                                "; the runs in flight are kept as interrupted"
                                if self.stop.in_flight else ""))  # this slot's has ended
                            self.stop.request()
                except OSError as exc:
                    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                        log.exception("run %03d: the executor failed: %s", index, exc)
                    else:  # no room for the next run either: stop, and say what to do
                        self._no_room(f"run {index:03d}: {exc}")
                except Exception as exc:  # a slot must not die with runs still queued
                    log.exception("run %03d: the executor failed: %s: %s", index,
                                  type(exc).__name__, exc)
                finally:
                    self.pending.task_done()
                    self.freed.set()
        finally:
            if not given:
                slot.close()
