"""The one interface every executor trains a run through: claim it, train it (in the
slot's warm worker, or in a process of its own), record the attempt, release it.

Local workers, Slurm array tasks, Ray actors and the final run all call `train_claimed`
or `train_process`, so run folders, claims, resume and failure records are the same
whichever executor ran them. A run trains in the executor slot's warm worker
(`workers.WorkerSlot`) unless `settings.isolate_runs` is true or the run needs a process
of its own (`execute.needs_own_process`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import budget, endings, runfolder
from ..log import logger
from ..run import caches, ownership
from ..run.execute import BUSY, Request, needs_own_process
from ..space import SweepConfig
from ..wording import some
from . import claims
from .stop import Stop, never, send
from .workers import Ending, WorkerSlot

log = logger(__name__)


NOT_STARTED = "not started: the energy budget is spent"  # declined once claimed


@dataclass(frozen=True)
class RunReport:
    """What became of one run in this invocation.

    Attributes:
        index: The run's index.
        outcome: The run folder's outcome (`RunFolder.outcome()`): status, reason, ...
        note: What happened, in a word or two for the progress line's column ("done",
            "kept", "claimed", "left alone").
        wall_s: Seconds this invocation spent training it; None if it did not train it.
        detail: The rest, for a line of its own: why a run was kept, who holds its claim.
    """

    index: int
    outcome: dict
    note: str
    wall_s: float | None = None
    detail: str = ""

    def said(self) -> str:
        """The note and its detail in one phrase, for a log line."""
        return f"{self.note}: {self.detail}" if self.detail else self.note


def train_claimed(config: SweepConfig, sweep_dir: Path, index: int, epochs: int,
                  env: dict | None = None, stop: Stop | None = None,
                  slot: WorkerSlot | None = None, run_env: dict | None = None,
                  release: bool = False) -> RunReport:
    """Trains (or resumes) run `index` unless it is finished or another process holds it.

    A finished run is kept; a folder that cannot be read is left alone and named. A run
    still trained by a process whose sweep is gone (its claim is stale, its lock held) is
    waited for, then trained here. `slot`: the executor slot's warm worker (None: a
    process of its own); `run_env`: variables set for this run only; `release`: at a
    halving rung not decided yet, the run is parked instead of waiting (`Request`).
    """
    stop = stop or never()
    wait_for_orphan(sweep_dir, index, stop)
    folder = runfolder.RunFolder.of(sweep_dir, index)
    try:
        outcome = folder.outcome()
    except runfolder.Unreadable as exc:
        return RunReport(index, {"status": "unreadable", "reason": str(exc)}, "left alone",
                         detail=str(exc))
    if finished(outcome, config):
        return RunReport(index, outcome, "kept", detail=_kept(outcome))
    if not claims.claim(sweep_dir, index):
        holder = claims.owner(sweep_dir, index) or {}
        return RunReport(index, outcome, "claimed", detail=(
            f"by pid {holder.get('pid', '?')} on {holder.get('host', '?')} "
            f"(if it is gone: rm {claims.claim_path(sweep_dir, index)})"))
    try:
        outcome = folder.outcome()  # another sweep may have finished it meanwhile
        if finished(outcome, config):
            return RunReport(index, outcome, "kept", detail=_kept(outcome))
        if outcome["status"] != "parked" and not budget.allows_next(config.settings, sweep_dir):
            # read after the claim: a peer at a rung that saw the budget spent and this run
            # unclaimed has counted it out (budget.never_starts), so it must not start
            return RunReport(index, outcome, NOT_STARTED)
        folder.summary()  # raises Unreadable: a resumed run must not overwrite it
        if outcome["status"] == "failed":
            log.info("run %03d failed before (%s); training it again", index,
                     outcome.get("reason", "no reason recorded"))
        elif outcome["status"] != "pending":
            log.info("run %03d was %s; resuming it", index, outcome["status"])
        outcome = train_process(config, sweep_dir, index, epochs, env, stop, slot, run_env,
                                release)
        return RunReport(index, outcome, outcome["status"], outcome.get("wall_s", 0.0))
    except runfolder.Unreadable as exc:
        return RunReport(index, {"status": "unreadable", "reason": str(exc)}, "left alone",
                         detail=str(exc))
    finally:
        claims.release(sweep_dir, index)


def finished(outcome: dict, config: SweepConfig) -> bool:
    """Whether a run is through: done, stopped, skipped or failed (failed runs are trained
    again with settings.retry_failed, `--retry-failed`)."""
    if outcome["status"] == "failed" and config.settings.get("retry_failed"):
        return False
    return outcome["status"] in runfolder.FINAL


@dataclass(frozen=True)
class Todo:
    """The runs an executor should hand out, in index order, without listing them: `runs`
    may be a billion (issue 33), and only the run folders that exist are read.

    A run is to train unless its folder says it is through (done, stopped, failed or
    skipped; failed ones are trained again under `--retry-failed`). An unreadable folder
    counts as to train: the executor then reports it, and leaves it.
    """

    runs: int
    through: frozenset[int]

    def __len__(self) -> int:
        return self.runs - len(self.through)

    def __iter__(self) -> Iterator[int]:
        return (i for i in range(self.runs) if i not in self.through)

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int) and 0 <= index < self.runs and index not in self.through

    def ranges(self) -> Iterator[range]:
        """The runs to train as ranges of consecutive indices, found from the runs through
        alone (Slurm's --array takes them as they are)."""
        start = 0
        for index in sorted(self.through):
            if index > start:
                yield range(start, index)
            start = index + 1
        if start < self.runs:
            yield range(start, self.runs)


def to_train(config: SweepConfig, sweep_dir: Path) -> Todo:
    """The runs an executor should hand out: not through yet (see `Todo`)."""
    runs, retry = config.settings["runs"], config.settings.get("retry_failed")
    through = {row["index"] for row in runfolder.started(sweep_dir, runs)
               if row["status"] in runfolder.FINAL
               and not (retry and row["status"] == "failed")}
    return Todo(runs, frozenset(through))


def runs_left(config: SweepConfig) -> tuple[str | None, str | None]:
    """Which of the sweep's runs are not through yet, in words: (those the same sweep
    command trains, or None; those the spent budget holds back from it, or None).

    The first: runs started and not finished (running, parked, interrupted, pending) and
    runs not started. Once the budget is spent no run starts that has not, and an
    interrupted or pending one does not resume (`budget.stopped_line`): those are the
    second, and `final --if-complete` does not wait for them. A parked run still resumes.
    """
    s = config.settings
    sweep_dir = Path(s["sweep_dir"])
    waiting = [r for r in runfolder.started(sweep_dir, s["runs"])
               if r["status"] not in runfolder.FINAL]
    spent = not budget.allows_next(s, sweep_dir)
    held = [r for r in waiting if spent and r["status"] in ("pending", "interrupted")]
    unstarted = 0 if spent else len(to_train(config, sweep_dir)) - len(waiting)
    waiting = [r for r in waiting if r not in held]

    def named(rows: list[dict]) -> str:
        runs = [f"{r['index']:03d} ({r['status']})" for r in rows]
        return f"run{'s' if len(rows) > 1 else ''} {some(runs)}"

    said = [f"{named(waiting)} not finished"] if waiting else []
    said += [f"{unstarted} run(s) not started"] if unstarted > 0 else []
    return ("; ".join(said) or None,
            f"{named(held)} held back by the spent budget" if held else None)


def _kept(outcome: dict) -> str:
    """Why a finished run that is not done is kept: its state and reason, whole."""
    if outcome["status"] == "done":
        return ""
    reason = outcome.get("reason")
    return f"it {outcome['status']}" + (f" ({reason})" if reason else "")


def wait_for_orphan(sweep_dir: Path, index: int, stop: Stop) -> None:
    """Waits while a process left by a sweep that is gone still trains run `index`.

    Such a process (an orphan of a `kill -9`ed sweep) holds the run's lock; on Linux it
    was sent SIGTERM when its sweep died and ends within seconds, as after a Ctrl-C.
    """
    folder = runfolder.RunFolder.of(sweep_dir, index).path
    holder = claims.owner(sweep_dir, index) or {}
    if not ownership.locked(folder) or claims.held_by_live_process(holder):
        return
    log.warning("run %03d is still being trained by pid %s, left by a sweep that is gone; "
                "waiting for it to stop", index, ownership.holder(folder) or "?")
    ownership.wait_until_free(folder, lambda: stop.requested)


def train_process(config: SweepConfig, sweep_dir: Path, index: int, epochs: int,
                  env: dict | None = None, stop: Stop | None = None,
                  slot: WorkerSlot | None = None, run_env: dict | None = None,
                  release: bool = False) -> dict:
    """Trains run `index` in `slot`'s warm worker, or in a process of its own (no slot,
    `settings.isolate_runs`, or a run that needs one); returns its outcome. The caller
    holds the claim. Every attempt is logged in the folder's attempts.jsonl, however it
    ends; the folder is never deleted."""
    folder = runfolder.RunFolder.of(sweep_dir, index)
    request = Request(config.path, str(sweep_dir), index, epochs, environment=run_env or {},
                      release=release, runs=config.settings["runs"])
    cfg = folder.configuration() or config.run(index)
    code = train_attempt(config, folder, request, cfg, env, stop or never(), slot)
    return {**folder.outcome(), "attempt_code": code}  # how this attempt ended


def train_attempt(config: SweepConfig, folder: runfolder.RunFolder, request: Request,
                  cfg: dict, env: dict | None, stop: Stop, slot: WorkerSlot | None) -> int:
    """One attempt at `request` (a sweep run or the final run), logged in attempts.jsonl;
    returns how it ended (an exit code, or minus the signal that ended its process)."""
    backend = (env or os.environ).get("KERAS_BACKEND", "tensorflow")
    own = needs_own_process(cfg, backend)
    if slot is not None and (config.settings.get("isolate_runs") or own):
        if own:
            log.info("run %03d trains in a process of its own: %s", request.index, own)
        slot = None
    if ownership.locked(folder.path):  # an orphan of a sweep that is gone, or a sweep
        log.warning("run %03d: not trained: pid %s trains it now", request.index,
                    ownership.holder(folder.path) or "?")  # started on it by hand
        return BUSY
    started = folder.log_attempt_start()
    ending = Ending()
    try:
        if slot is not None:
            slot.train(request, stop, ending)
        else:
            _own_process(request, env, stop, ending)
    finally:
        folder.log_attempt_end(started, ending.code, ending.stderr_tail, ending.worker())
    if ending.code == BUSY:
        log.warning("run %03d: %s", request.index, ending.stderr_tail.splitlines()[-1]
                    if ending.stderr_tail else "another process trains it now")
    else:
        settle_status(folder)
    return ending.code


def settle_status(folder: runfolder.RunFolder) -> None:
    """Writes into status.json how the run ended where its process died before it could
    (SIGKILL, the OOM killer): status.json still says running, and the attempt's end just
    logged makes the folder's outcome failed or interrupted (`RunFolder.outcome`). The one
    transition of status.json its executor writes (runfolder.py's owner table), under
    the run's lock, so no process trains the run meanwhile; any doubt leaves it alone."""
    try:
        if folder.status_record().get("status") != "running":
            return
        with ownership.Held(folder.path):
            record, outcome = folder.status_record(), folder.outcome()
            if record.get("status") == "running" and outcome["status"] in (
                    "failed", "interrupted"):
                said = {k: outcome[k] for k in ("reason", "traceback_tail") if k in outcome}
                folder.write_status(outcome["status"], **said, pid=record.get("pid"),
                                    written_by="executor")
    except (ownership.Busy, runfolder.Unreadable, OSError) as exc:
        log.debug("run folder %s: status.json left as it is: %s", folder.path, exc)


def _own_process(request: Request, env: dict | None, stop: Stop, ending: Ending) -> None:
    """Trains `request` in a fresh run process (`python -m greenscreen_pipeline.run`)."""
    cmd = [sys.executable, "-m", "greenscreen_pipeline.run", "--config", request.config,
           "--sweep-dir", request.sweep_dir, "--index", str(request.index),
           "--parent", str(os.getpid()), *(["--release"] if request.release else [])]
    if request.epochs:
        cmd += ["--epochs", str(request.epochs)]
    if request.runs:
        cmd += ["--runs", str(request.runs)]
    if request.configuration is not None:
        cmd += ["--configuration", json.dumps(request.configuration)]
    base = env if env is not None else os.environ
    cache = caches.folder_of(request.sweep_dir, request.configuration is not None)
    env = {**base, **caches.environment(cache, base), **request.environment}
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    stop.add(proc)
    err = ""
    try:
        _, err = proc.communicate()
    except BaseException:  # KeyboardInterrupt in a Ray task that was cancelled
        send(proc, signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        raise
    finally:
        stop.discard(proc)
        ending.code = proc.returncode if proc.returncode is not None else -9
        ending.stderr_tail = endings.tail(err or "")
