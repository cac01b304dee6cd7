"""Rung records on shared storage: `<run folder>/rungs/<epoch>.json`, one file per rung,
and the run's decision at it once made, `<epoch>.decided.json` (`write_decision`).

The run process is the one writer of its own rung files (as of the rest of its folder);
every run of the sweep may read them. One small file per rung, written atomically
(temporary file, fsync, rename), because an append to a shared log is not atomic on
NFS and a reader on another node could see half a line. A Slurm array task applies the
halving rule from these files alone: no server, no lock.

No Keras here (`rung_callback.py` holds the callback): the sweep's own process reads
rungs too (`parked_is_decided`, `has_ended`) and must not import a backend.

A peer without a record is waited for until it has ended, or, with an energy budget,
until the budget is spent while the peer has not started (`never_starts`): no run starts
after that, so it would never come. In a Slurm array task, a peer whose task has ended
without it and that no live process trains will not come in this submission either
(`untrained_in_array`): the wait ends with `PeersGone` and the run is parked at its rung.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Callable, Iterable

from greenscreen.fileio import atomic_write_json

from .. import budget
from ..executors import claims, slurm_tasks
from ..runfolder import FINAL, RunFolder, Unreadable, read_json, run_dir
from . import halving
from .halving import RungRecord

RUNGS = "rungs"
# How often a run waiting at a rung in a Slurm array task asks squeue whether its missing
# peers' tasks still run (`untrained_in_array`): at once, then every minute, so that
# hundreds of waiting tasks do not poll the controller every second.
GONE_EVERY_S = 60.0


class PeersGone(Exception):
    """Peers a run waits for at its rung will not reach it in this submission: their
    Slurm array tasks have ended without them, and no live process trains them.

    Attributes:
        peers: Those peers.
    """

    def __init__(self, peers: list[int]) -> None:
        super().__init__(f"peers {peers} will not reach the rung in this submission")
        self.peers = peers


def rung_path(folder: "str | Path", epoch: int) -> Path:
    """Where the run in `folder` records rung `epoch`."""
    return Path(folder) / RUNGS / f"{epoch:04d}.json"


def write_rung(folder: "str | Path", record: RungRecord) -> None:
    """Records `record` in the run folder `folder`, atomically.

    A resumed run that reaches the rung again overwrites its own record with the same
    figures (its epoch and energy so far come from the checkpoint and summary.json).
    """
    path = rung_path(folder, record.epoch)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, record.to_json())


DECIDED = (halving.GO_ON, halving.STOP)  # what a rung's decision file may hold


def decision_path(folder: "str | Path", epoch: int) -> Path:
    """Where the run in `folder` records what rung `epoch` decided for it."""
    return Path(folder) / RUNGS / f"{epoch:04d}.decided.json"


def write_decision(folder: "str | Path", epoch: int, decision: str) -> None:
    """Records that rung `epoch` decided `decision` (go on or stop) for the run in
    `folder`. A resumed run reads it back (`read_decision`) instead of deciding again:
    its peers, the budget and who trains what may have changed since (a peer counted out
    when the budget was spent trains once it is raised; a failed one is retried), and a
    decision made stays made."""
    if decision not in DECIDED:
        raise ValueError(f"decision={decision!r} is not valid; allowed: {DECIDED}")
    atomic_write_json(decision_path(folder, epoch), {"epoch": epoch, "decision": decision,
                                                      "time": time.time()})


def read_decision(folder: "str | Path", epoch: int) -> str | None:
    """What rung `epoch` decided for the run in `folder`; None where nothing was recorded
    (not decided yet, or a run of an earlier greenscreen, which decides again).

    Raises:
        runfolder.Unreadable: The file exists but cannot be read.
    """
    data = read_json(decision_path(folder, epoch))
    made = data.get("decision") if isinstance(data, dict) else None
    return made if made in DECIDED else None  # anything else: decided again


def read_rung(folder: "str | Path", epoch: int) -> RungRecord | None:
    """The record of rung `epoch` in `folder`; None if absent.

    Raises:
        runfolder.Unreadable: The file exists but cannot be read.
    """
    data = read_json(rung_path(folder, epoch))
    return None if data is None else RungRecord.from_json(data)


def rung_table(sweep_dir: "str | Path", runs: Iterable[int], epoch: int) -> dict[int, RungRecord]:
    """The records at rung `epoch` of the runs `runs` that have reached it."""
    out = {}
    for run in runs:
        record = read_rung(run_dir(sweep_dir, run), epoch)
        if record is not None:
            out[run] = record
    return out


def await_decision(sweep_dir: "str | Path", record: RungRecord, group: Iterable[int],
                   has_ended: Callable[[int], bool], eta: "int | halving.Rule",
                   maximize: bool = True, *,
                   poll_s: float = 2.0, timeout_s: float | None = None,
                   sleep: Callable[[float], None] = time.sleep,
                   gone: Callable[[list[int]], list[int]] | None = None,
                   gone_every_s: float = GONE_EVERY_S) -> str:
    """Records `record` in its run's folder, then waits for the rung's decision.

    What a run calls when an epoch that is a rung ends (`halving.rungs`): each poll
    reads its peers' rung files and asks `has_ended` about those without one, until
    `halving.decide` says GO_ON or STOP.

    Args:
        sweep_dir: The sweep folder; run i's folder is `runfolder.run_dir(sweep_dir, i)`.
        record: This run's record at the rung.
        group: The run's peers (`halving.peers`), itself included.
        has_ended: Whether run i has ended (done, stopped, failed, skipped): read from
            its status by the caller, which owns the states.
        eta: The halving rate (the rule of issue 25) or a `halving.Rule`.
        maximize: Whether a higher objective is better.
        poll_s: Seconds between polls.
        timeout_s: Give up after this many seconds (None: wait as long as it takes).
        sleep: Waits between polls (a test passes its own).
        gone: Of the missing peers, those that will not come (`untrained_in_array`);
            asked at once and then every `gone_every_s` of waiting. None: never asked.
        gone_every_s: Seconds of waiting between two questions to `gone`.

    Returns:
        halving.GO_ON or halving.STOP.

    Raises:
        TimeoutError: `timeout_s` passed with a peer neither at the rung nor ended.
        PeersGone: `gone` named a missing peer.
    """
    write_rung(run_dir(sweep_dir, record.run), record)
    group, waited, ask_at = list(group), 0.0, 0.0
    while True:
        decision = decision_now(sweep_dir, record, group, has_ended, eta, maximize)
        if decision != halving.WAIT:
            return decision
        if gone is not None and waited >= ask_at:
            lost = gone(missing(sweep_dir, record, group, has_ended))
            if lost:
                raise PeersGone(lost)
            ask_at = waited + gone_every_s
        if timeout_s is not None and waited >= timeout_s:
            raise TimeoutError(f"run {record.run} waited {waited:.0f} s at epoch "
                               f"{record.epoch} for runs "
                               f"{missing(sweep_dir, record, group, has_ended)}")
        sleep(poll_s)
        waited += poll_s


def missing(sweep_dir: "str | Path", record: RungRecord, group: Iterable[int],
            has_ended: Callable[[int], bool]) -> list[int]:
    """The peers in `group` that `record`'s run still waits for at its rung: without a
    record there, and not ended."""
    records = rung_table(sweep_dir, group, record.epoch)
    return [p for p in group if p != record.run and p not in records and not has_ended(p)]


def untrained_in_array(sweep_dir: "str | Path", job: "slurm_tasks.ArrayJob",
                       runs: Iterable[int]) -> list[int]:
    """Those of `runs` that no process of Slurm array `job` will bring to a rung: not
    trained now by a live process (`claims.trained_now`: another submission's, or one
    started by hand, still counts), and their array task ended (`ArrayJob.gone`)."""
    idle = [run for run in runs if not claims.trained_now(Path(sweep_dir), run)]
    return job.gone(idle)


def decision_now(sweep_dir: "str | Path", record: RungRecord, group: Iterable[int],
                 has_ended: Callable[[int], bool], eta: "int | halving.Rule",
                 maximize: bool = True) -> str:
    """One read of the peers' rung files: halving.WAIT, GO_ON or STOP for `record`'s run
    (whose own record must be written). What `await_decision` polls, and what a run that
    gives its worker back at a rung, or the executor that resumes it, asks once."""
    group = list(group)
    records = {**rung_table(sweep_dir, group, record.epoch), record.run: record}
    ended = {p for p in group if p not in records and has_ended(p)}
    return halving.decide(record.run, records, ended, group, eta, maximize)


def parked_is_decided(sweep_dir: "str | Path", run: int, status: dict,
                      eta: "int | halving.Rule", maximize: bool,
                      settings: dict | None = None) -> bool:
    """Whether parked run `run` (its status.json: `rung`, `peers`) may resume: the rung it
    waits at is decided by `eta` (the sweep's rule, `manifest.halving_rule`; a bare eta is
    issue 25's). True where the record cannot be found (it resumes and finds out).
    `settings`: the sweep's (`budget`, `runs`), for `will_not_reach`."""
    record = read_rung(run_dir(sweep_dir, run), int(status["rung"]))
    if record is None:
        return True
    gone = partial(will_not_reach, sweep_dir, settings=settings)
    decision = decision_now(sweep_dir, record, status["peers"], gone, halving.as_rule(eta),
                            maximize)
    return decision != halving.WAIT


def has_ended(sweep_dir: "str | Path", run: int) -> bool:
    """Whether run `run` has ended (done, stopped, failed, skipped), by its folder; an
    unreadable folder has not."""
    try:
        return RunFolder.of(sweep_dir, run).state() in FINAL
    except Unreadable:
        return False


def never_starts(settings: dict, sweep_dir: "str | Path", run: int) -> bool:
    """Whether run `run` will not start in this sweep: the energy budget is spent, and the
    run has not started, or stopped with no process training it (pending, interrupted),
    and is not parked (a parked run resumes once its rung is decided). False without a
    budget. Reads the budget before the claim, as `attempt.train_claimed` reads it after
    taking one (`budget`'s docstring)."""
    if settings.get("budget") is None or not _idle(sweep_dir, run):
        return False
    return not budget.allows_next(settings, sweep_dir) and _idle(sweep_dir, run)


def _idle(sweep_dir: "str | Path", run: int) -> bool:
    try:
        if RunFolder.of(sweep_dir, run).state() in (*FINAL, "parked"):
            return False
    except Unreadable:
        return False
    return not claims.trained_now(Path(sweep_dir), run)


def will_not_reach(sweep_dir: "str | Path", run: int, settings: dict | None = None) -> bool:
    """Whether run `run`, a peer without a record at a rung, will never reach it: it has
    ended (`has_ended`), or, with the sweep's `settings` (`budget`, `runs`), it never
    starts (`never_starts`)."""
    return has_ended(sweep_dir, run) or (settings is not None
                                         and never_starts(settings, sweep_dir, run))
