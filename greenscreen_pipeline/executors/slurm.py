"""Slurm executor: one job array over the unfinished runs, then a dependent
analysis + final + report job.

With `slurm_parallel` N the array has N tasks, and task k trains runs k, k + N, k + 2N,
... one after another in one warm worker (`run-one --share k/N`): the backend is imported
N times in all, not once per run, and N runs train at once. Its `--time` must then cover
a share of the runs. Without it, the array has one task per unfinished run (`run-one
--index i`), each its own allocation and process: Slurm may start them all at once.

The report job uses `--dependency=afterany`, not `afterok`: with `afterok` one
failed run (an OOM, a NaN) would cancel the analysis of every run that did
finish; failed runs are recorded in their folders and listed by the analysis
anyway. Resubmitting after a partial failure only includes runs not done. The report
job's `final --if-complete` trains the final runs only once every run is through: after a
cancelled or timed-out array it analyses and reports what finished, and the resubmission's
report job trains final.
The sweep folder must be on storage every node sees (e.g. a shared home or
scratch file system), since each array task writes its own run folder there.

Halving (`early_stop: halving`): each array task applies the rule itself at its rungs,
from the rung records its peers write to the shared sweep folder (`search.rungfiles`);
no server, no extra job. The batch is `slurm_parallel`, the array's N tasks, recorded in
sweep.json: batch b is runs bN .. bN + N - 1, one in each task's share. When a run waits
at a rung, its peers are the runs at the same place in the other tasks' shares; that
holds only while the N tasks fit on the partition at once. Otherwise a run waits at its
rung, holding its allocation, until a peer's task starts (or its --time ends: it is then
interrupted and resumes on resubmission). With a budget, once it is spent a peer that
has not started is not waited for: its task will start no run (`rungfiles.never_starts`).
A pareto search is refused here (`commands.refuse_search`): its next batch needs the last
one's results.

A run that waits at a rung for a peer whose task has ended without it (cancelled, failed,
out of time) does not hold its allocation until --time: it is parked at the rung and
resumes there on resubmission (`slurm_tasks`). A sweep whose last submission still has
jobs queued or running is not submitted again (`refuse_while_queued`, `slurm/jobs.json`).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from greenscreen.fileio import atomic_write_json, atomic_write_text

from .. import runfolder
from ..errors import MissingDependency, SubmitError, UsageError
from ..log import logger
from ..runfolder import read_json
from ..space import SweepConfig
from . import slurm_tasks
from .attempt import Todo, to_train

log = logger(__name__)
JOBS = "jobs.json"  # the last submission's array and report job ids


def array_spec(indices: Iterable[int] | Todo) -> str:
    """Slurm's --array form of sorted run indices: [0, 1, 2, 5, 7, 8] -> '0-2,5,7-8'. A
    `Todo` is read by its ranges: a billion runs cost what their folders cost."""
    spans = indices.ranges() if isinstance(indices, Todo) else _spans(indices)
    return ",".join(str(r.start) if len(r) == 1 else f"{r.start}-{r.stop - 1}" for r in spans)


def _spans(indices: Iterable[int]) -> Iterator[range]:
    start = last = None
    for i in indices:
        if last is not None and i != last + 1:
            yield range(start, last + 1)
            start = None
        start, last = (i if start is None else start), i
    if last is not None:
        yield range(start, last + 1)


def header(name: str, settings: dict, sweep_dir: Path, array: bool = True) -> list[str]:
    """The #SBATCH lines; a job that is no array logs to %x-%j.out (%a would be 4294967294)."""
    log_name = "%x-%A_%a.out" if array else "%x-%j.out"
    lines = ["#!/bin/bash", f"#SBATCH --job-name={name}",
             f"#SBATCH --output={log_path(sweep_dir, log_name)}"]
    for key in ("partition", "time", "account"):
        if settings.get(f"slurm_{key}"):  # validated in space.py: no spaces, no newlines
            lines.append(f"#SBATCH --{key}={settings[f'slurm_{key}']}")
    return lines


def log_path(sweep_dir: Path, log_name: str) -> str:
    """The jobs' log path for an #SBATCH line: double-quoted (sbatch refused a folder with
    a space, "Invalid directive found in batch script"), its own '%' doubled (Slurm reads
    '%' as the start of a pattern such as %j). A folder with a double quote, a backslash
    or a newline cannot be written there: one clear error instead."""
    folder = str(sweep_dir.resolve() / "slurm")
    if any(c in folder for c in '"\\\n'):
        raise UsageError(f"the sweep folder {str(sweep_dir.resolve())!r} holds a double "
                         "quote, a backslash or a newline, which an #SBATCH line cannot; "
                         "give --sweep-dir a folder without them")
    return f'"{folder.replace("%", "%%")}/{log_name}"'


def scripts(config: SweepConfig, sweep_dir: Path, gpus_per_run: int = 1,
            report_out: str | None = None) -> tuple[str, str, list[int]]:
    """The array script, the report script, and the run indices the array covers.

    Partition, time, account and the array's parallel limit come from the
    config's settings (`slurm_*`), which command-line flags override.
    """
    s = config.settings
    if s.get("budget") is not None and not s.get("slurm_parallel"):
        raise UsageError("settings.budget under Slurm needs settings.slurm_parallel (or "
                         "--parallel) N: N array tasks take the runs in turn and each checks "
                         "the budget before its next run, instead of a task per run queued "
                         "up front")
    todo = to_train(config, sweep_dir)
    # The jobs start where the sweep was submitted from, so paths in config.yaml (a
    # data_path) mean what they meant here.
    here = shlex.quote(str(Path.cwd()))
    py, cfg = shlex.quote(sys.executable), shlex.quote(str(Path(config.path).resolve()))
    out = shlex.quote(str(sweep_dir.resolve()))
    shares = s.get("slurm_parallel") or 0
    if shares:  # N tasks, each training every N-th run in one warm worker
        tasks, which = f"0-{shares - 1}", f'--share "$SLURM_ARRAY_TASK_ID/{shares}"'
    else:  # a task per run, all at once if the partition has room
        tasks, which = array_spec(todo), '--index "$SLURM_ARRAY_TASK_ID"'
    array = header("greenscreen-runs", s, sweep_dir) + [f"#SBATCH --array={tasks}"]
    if gpus_per_run:
        array.append(f"#SBATCH --gres=gpu:{gpus_per_run}")
    retry = " --retry-failed" if s.get("retry_failed") else ""
    # The runs and epochs the sweep was submitted with (`--runs`, `--epochs` override the
    # config's): a task's share, its runs' halving peers and the budget read them.
    sized = f" --runs {int(s['runs'])} --epochs {int(s['epochs'])}"
    array += [f"cd {here}",
              f"exec {py} -m greenscreen_pipeline run-one --config {cfg} --sweep-dir {out} "
              + which + sized + retry]
    report_opts = f" --out {shlex.quote(str(Path(report_out).resolve()))}" if report_out else ""
    report = header("greenscreen-report", s, sweep_dir, array=False) + [
        f"cd {here}",
        # analyze and report read the runs and epochs the sweep recorded (sweep.json)
        *(f"{py} -m greenscreen_pipeline {stage} --config {cfg} --sweep-dir {out}"
          + {"report": report_opts, "final": sized + " --if-complete"}.get(stage, "")
          for stage in ("analyze", "final", "report"))]
    return "\n".join(array) + "\n", "\n".join(report) + "\n", todo


def submit(config: SweepConfig, sweep_dir: Path, dry_run: bool, gpus_per_run: int = 1,
           report_out: str | None = None) -> None:
    """Writes the scripts into `<sweep>/slurm/` and submits them (or prints them)."""
    array, report, todo = scripts(config, sweep_dir, gpus_per_run, report_out)
    if not todo:
        failed = sum(r["status"] == "failed" for r in runfolder.started(
            sweep_dir, config.settings["runs"]))
        log.info("every run is finished; nothing to submit" if not failed else
                 f"nothing to submit: {failed} failed run(s) are kept as failed, the others "
                 "are finished; --retry-failed submits the failed runs again")
        return
    paths = sweep_dir / "slurm" / "runs.sbatch", sweep_dir / "slurm" / "report.sbatch"
    for path, text in zip(paths, (array, report)):
        atomic_write_text(path, text)
    if dry_run:
        print(f"# {paths[0]}\n{array}\n# {paths[1]}\n{report}")
        print(f"# would run: sbatch --parsable {paths[0]}")
        print(f"# then: sbatch --parsable --dependency=afterany:<array job id> {paths[1]}")
        return
    if shutil.which("sbatch") is None:
        raise MissingDependency("sbatch was not found on PATH. Submit from a Slurm login "
                                f"node, or pass --dry-run to only write the scripts ({paths[0]}).")
    job = _sbatch([str(paths[0])])  # `refuse_while_queued` ran before the probe
    _record_jobs(sweep_dir, job, "")
    report_job = _sbatch([f"--dependency=afterany:{job}", str(paths[1])])
    _record_jobs(sweep_dir, job, report_job)
    log.info("submitted array job %s (%d runs) and report job %s; scripts and logs in %s/",
             job, len(todo), report_job, sweep_dir / "slurm")


def refuse_while_queued(sweep_dir: Path) -> None:
    """Refuses a submission while this sweep's last one still has jobs pending or running
    (`slurm/jobs.json`): its runs would wait for the claims of the first, and the two
    report jobs would analyse and train the final runs side by side."""
    recorded = read_json(sweep_dir / "slurm" / JOBS) or {}
    jobs = [j for j in (recorded.get("array"), recorded.get("report")) if j]
    queued = slurm_tasks.still_queued(jobs)
    if queued is None:
        log.warning("could not ask squeue whether this sweep's last jobs (%s) still run; "
                    "submitting", ", ".join(jobs))
    elif queued:
        names = " and ".join(f"{kind} job {j}" for kind, j in
                             (("array", recorded.get("array")), ("report", recorded.get("report")))
                             if j in queued)
        raise UsageError(f"{sweep_dir} was submitted before and its {names} are still "
                         f"queued or running (squeue -j {','.join(queued)}); a second "
                         "submission would run a second report job beside the first. Wait "
                         f"for them, or cancel them first (scancel {' '.join(queued)})")


def _record_jobs(sweep_dir: Path, array: str, report: str) -> None:
    """The submitted jobs' ids, for the next submission's `refuse_while_queued`."""
    atomic_write_json(sweep_dir / "slurm" / JOBS, {"array": array, "report": report})


def _sbatch(args: list[str]) -> str:
    done = subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SubmitError(f"sbatch {' '.join(args)} failed (exit {done.returncode}): "
                          f"{done.stderr.strip()}")
    return done.stdout.strip().split(";")[0]  # "jobid;cluster" on federated clusters
