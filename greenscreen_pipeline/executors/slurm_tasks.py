"""The array tasks of the Slurm job this process runs in, and which are still to run.

A run that waits at a halving rung in a Slurm array task (`search.rung_callback`) waits
for peers that other tasks of the same array train. When a peer's task has ended
without bringing it to the rung (`scancel` of that task, a task that failed to start,
its node lost, its `--time` spent on an earlier run of its share), no process of this
submission will: the run would hold its allocation, and its GPU, idle until its own
`--time` ran out. The rung callback asks `ArrayJob.gone` while it waits, and a run whose
missing peer will not come is parked at its rung instead (checkpoint and rung record
kept; it resumes there when the sweep is submitted again).

`squeue` answers, asked once for the job's tasks in every state: a task listed in a
state it can still train in (pending, running, requeued, suspended ...) is to run; one
listed as ended, or no longer listed (a pending task that was cancelled disappears at
once), is not. Where squeue cannot answer, every task counts as to run: the run waits,
as it did before this check.

Which task trains a run is the submission's (`executors/slurm.py`): with `--parallel` N,
task k trains runs k, k + N, ... (`run-one --share k/N` exports N as `SHARES_ENV`);
otherwise task i trains run i alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..log import logger

log = logger(__name__)

SHARES_ENV = "GREENSCREEN_SLURM_SHARES"  # N of `run-one --share k/N`; unset: a task per run
# Slurm's job states after which a task trains nothing more (squeue's %T). A preempted
# task that Slurm requeues shows as REQUEUED or PENDING instead; one leaving the node
# (COMPLETING) has stopped training (its run's claim and lock say if it still does).
ENDED = frozenset({"BOOT_FAIL", "CANCELLED", "COMPLETED", "COMPLETING", "DEADLINE", "FAILED",
                   "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "REVOKED", "SPECIAL_EXIT",
                   "TIMEOUT"})
SQUEUE_TIMEOUT_S = 30


@dataclass(frozen=True)
class ArrayJob:
    """The Slurm array job of this process.

    Attributes:
        job_id: Its array job id (`SLURM_ARRAY_JOB_ID`).
        task_id: This process's task (`SLURM_ARRAY_TASK_ID`).
        shares: N where task k trains runs k, k + N, ...; 0 where task i trains run i.
    """

    job_id: str
    task_id: int
    shares: int = 0

    @classmethod
    def here(cls, environ: Mapping[str, str] | None = None) -> "ArrayJob | None":
        """The array job this process is a task of; None outside one (a local sweep, a
        `run-one` by hand)."""
        env = os.environ if environ is None else environ
        job, task = env.get("SLURM_ARRAY_JOB_ID", ""), env.get("SLURM_ARRAY_TASK_ID", "")
        if not job.isdigit() or not task.isdigit():
            return None
        shares = env.get(SHARES_ENV, "0")
        return cls(job, int(task), int(shares) if shares.isdigit() else 0)

    def task_of(self, run: int) -> int:
        """The task of this array that trains run `run`."""
        return run % self.shares if self.shares else run

    def tasks_to_run(self) -> set[int] | None:
        """The tasks of this array that can still train (squeue); None where squeue
        cannot say (not installed, no answer, or an answer without this very task)."""
        lines = _squeue([self.job_id], "%K %T")
        states = _task_states(lines or "")
        if self.task_id not in states:  # squeue does not see us: its answer says nothing
            return None
        return {task for task, state in states.items() if state not in ENDED}

    def gone(self, runs: Iterable[int]) -> list[int]:
        """Those of `runs` whose task has ended (or never will start): no process of this
        submission trains them. Empty where squeue cannot say."""
        runs = list(runs)
        if not runs:
            return []
        alive = self.tasks_to_run()
        if alive is None:
            return []
        return [run for run in runs if self.task_of(run) not in alive]

    def describe(self, run: int) -> str:
        """Run `run`'s task, as Slurm names it ("1234_5")."""
        return f"{self.job_id}_{self.task_of(run)}"


def still_queued(job_ids: Iterable[str]) -> list[str] | None:
    """Those of `job_ids` with a task pending or running (not ended); None where squeue
    cannot say. A job Slurm no longer knows has ended."""
    job_ids = [j for j in job_ids if str(j).isdigit()]
    if not job_ids:
        return []
    text = _squeue(job_ids, "%F %T")
    if text is None:
        return None
    alive = {line.split()[0] for line in text.splitlines()
             if len(line.split()) == 2 and line.split()[1].upper() not in ENDED}
    return [j for j in job_ids if j in alive]


def _squeue(job_ids: list[str], fmt: str) -> str | None:
    """squeue's lines for `job_ids`' tasks in every state, one per array task, in `fmt`;
    "" where Slurm knows none of them (ended long ago); None where squeue cannot say."""
    squeue = shutil.which("squeue")
    if squeue is None:
        return None
    try:
        done = subprocess.run([squeue, "--noheader", "--array", "--jobs", ",".join(job_ids),
                               "--states", "all", "--format", fmt],
                              capture_output=True, text=True, timeout=SQUEUE_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("squeue for jobs %s: %s", job_ids, exc)
        return None
    if done.returncode != 0:
        if "invalid job id" in done.stderr.lower():  # every one of them purged: ended
            return ""
        log.debug("squeue for jobs %s: exit %s %s", job_ids, done.returncode,
                  done.stderr.strip())
        return None
    return done.stdout


def _task_states(text: str) -> dict[int, str]:
    """squeue's "%K %T" lines as {task: state}; a line that is not one is left out."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            out[int(parts[0])] = parts[1].upper()
    return out
