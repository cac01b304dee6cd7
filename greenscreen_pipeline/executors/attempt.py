"""The one interface every executor trains a run through: claim it, train it in its own
process, record the attempt, release it.

Local workers, Slurm array tasks and Ray tasks all call `train_claimed`, so run folders,
claims, resume and failure records are the same whichever executor ran them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import runfolder
from ..log import logger
from ..space import SweepConfig
from . import claims
from .stop import Stop, never, send

log = logger(__name__)


@dataclass(frozen=True)
class RunReport:
    """What became of one run in this invocation.

    Attributes:
        index: The run's index.
        outcome: The run folder's outcome (`RunFolder.outcome()`): status, reason, ...
        note: What happened, for the progress line ("done", "kept", "claimed by ...").
        wall_s: Seconds this invocation spent training it; None if it did not train it.
    """

    index: int
    outcome: dict
    note: str
    wall_s: float | None = None


def train_claimed(config: SweepConfig, sweep_dir: Path, index: int, epochs: int,
                  env: dict | None = None, stop: Stop | None = None) -> RunReport:
    """Trains (or resumes) run `index` unless it is finished or another process holds it.

    A finished run is kept; a folder that cannot be read is left alone and named.
    """
    stop = stop or never()
    folder = runfolder.RunFolder.of(sweep_dir, index)
    try:
        outcome = folder.outcome()
    except runfolder.Unreadable as exc:
        return RunReport(index, {"status": "unreadable", "reason": str(exc)},
                         f"left alone: {exc}")
    if outcome["status"] in runfolder.FINAL:
        return RunReport(index, outcome, _kept(outcome))
    if not claims.claim(sweep_dir, index):
        holder = claims.owner(sweep_dir, index) or {}
        return RunReport(index, outcome, (
            f"claimed by pid {holder.get('pid', '?')} on {holder.get('host', '?')} "
            f"(if it is gone: rm {claims.claim_path(sweep_dir, index)})"))
    try:
        outcome = folder.outcome()  # another sweep may have finished it meanwhile
        if outcome["status"] in runfolder.FINAL:
            return RunReport(index, outcome, "kept")
        folder.summary()  # raises Unreadable: a resumed run must not overwrite it
        if outcome["status"] != "pending":
            log.info("run %03d was %s; resuming it", index, outcome["status"])
        outcome = train_process(config, sweep_dir, index, epochs, env, stop)
        return RunReport(index, outcome, outcome["status"], outcome.get("wall_s", 0.0))
    except runfolder.Unreadable as exc:
        return RunReport(index, {"status": "unreadable", "reason": str(exc)},
                         f"left alone: {exc}")
    finally:
        claims.release(sweep_dir, index)


def _kept(outcome: dict) -> str:
    if outcome["status"] == "done":
        return "kept"
    return f"kept ({outcome.get('reason', '')[:60]})"


def train_process(config: SweepConfig, sweep_dir: Path, index: int, epochs: int,
                  env: dict | None = None, stop: Stop | None = None) -> dict:
    """Trains run `index` in a subprocess (`python -m greenscreen_pipeline.run`); returns its
    outcome. The caller holds the claim. Every attempt is logged in the folder's
    attempts.jsonl, however the process ends; the folder is never deleted."""
    stop = stop or never()
    folder = runfolder.RunFolder.of(sweep_dir, index)
    started = folder.log_attempt_start()
    cmd = [sys.executable, "-m", "greenscreen_pipeline.run", "--config", config.path,
           "--sweep-dir", str(sweep_dir), "--index", str(index), "--epochs", str(epochs)]
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
        tail = "\n".join((err or "").strip().splitlines()[-15:])
        folder.log_attempt_end(started, proc.returncode if proc.returncode is not None else -9,
                               tail)
    return folder.outcome()
