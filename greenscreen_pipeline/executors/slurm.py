"""Slurm executor: one job array over the unfinished runs, then a dependent
analysis + final + report job.

The report job uses `--dependency=afterany`, not `afterok`: with `afterok` one
failed run (an OOM, a NaN) would cancel the analysis of every run that did
finish; failed runs are recorded in their folders and listed by the analysis
anyway. Resubmitting after a partial failure only includes runs not done.
The sweep folder must be on storage every node sees (e.g. a shared home or
scratch file system), since each array task writes its own run folder there.

Halving (`early_stop: halving`): each array task applies the rule itself at its rungs,
from the rung records its peers write to the shared sweep folder (`search.rungfiles`);
no server, no extra job. The batch is `slurm_parallel`, the array tasks at once (the
`%N` throttle), recorded in sweep.json. Slurm starts an array's tasks in index order, so
when a run waits at a rung, the runs of its batch and of the batches before it have all
started; that holds only while N tasks fit on the partition at once. Otherwise a run
waits at its rung, holding its allocation, until a peer gets one (or its --time ends:
it is then interrupted and resumes on resubmission). A pareto search is refused here
(`commands.refuse_search`): its next batch needs the last one's results.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from greenscreen.fileio import atomic_write_text

from .. import runfolder
from ..errors import MissingDependency, SubmitError
from ..log import logger
from ..space import SweepConfig

log = logger(__name__)


def array_spec(indices: list[int]) -> str:
    """Slurm's --array form of sorted run indices: [0, 1, 2, 5, 7, 8] -> '0-2,5,7-8'."""
    parts, start = [], None
    for k, i in enumerate(indices):
        start = i if start is None else start
        if k + 1 == len(indices) or indices[k + 1] != i + 1:
            parts.append(str(i) if i == start else f"{start}-{i}")
            start = None
    return ",".join(parts)


def header(name: str, settings: dict, sweep_dir: Path) -> list[str]:
    lines = ["#!/bin/bash", f"#SBATCH --job-name={name}",
             f"#SBATCH --output={sweep_dir.resolve()}/slurm/%x-%A_%a.out"]
    for key in ("partition", "time", "account"):
        if settings.get(f"slurm_{key}"):  # validated in space.py: no spaces, no newlines
            lines.append(f"#SBATCH --{key}={settings[f'slurm_{key}']}")
    return lines


def scripts(config: SweepConfig, sweep_dir: Path, gpus_per_run: int = 1,
            report_out: str | None = None) -> tuple[str, str, list[int]]:
    """The array script, the report script, and the run indices the array covers.

    Partition, time, account and the array's parallel limit come from the
    config's settings (`slurm_*`), which command-line flags override.
    """
    s = config.settings
    todo = runfolder.unfinished(sweep_dir, s["runs"])
    # The jobs start where the sweep was submitted from, so paths in config.yaml (a
    # data_path) mean what they meant here.
    here = shlex.quote(str(Path.cwd()))
    py, cfg = shlex.quote(sys.executable), shlex.quote(str(Path(config.path).resolve()))
    out = shlex.quote(str(sweep_dir.resolve()))
    parallel = f"%{s['slurm_parallel']}" if s.get("slurm_parallel") else ""
    array = header("greenscreen-runs", s, sweep_dir) + [
        f"#SBATCH --array={array_spec(todo)}{parallel}"]
    if gpus_per_run:
        array.append(f"#SBATCH --gres=gpu:{gpus_per_run}")
    array += [f"cd {here}",
              f"exec {py} -m greenscreen_pipeline run-one --config {cfg} --sweep-dir {out} "
              "--index \"$SLURM_ARRAY_TASK_ID\""]
    report_opts = f" --out {shlex.quote(str(Path(report_out).resolve()))}" if report_out else ""
    report = header("greenscreen-report", s, sweep_dir) + [
        f"cd {here}",
        *(f"{py} -m greenscreen_pipeline {stage} --config {cfg} --sweep-dir {out}"
          + (report_opts if stage == "report" else "")
          for stage in ("analyze", "final", "report"))]
    return "\n".join(array) + "\n", "\n".join(report) + "\n", todo


def submit(config: SweepConfig, sweep_dir: Path, dry_run: bool, gpus_per_run: int = 1,
           report_out: str | None = None) -> None:
    """Writes the scripts into `<sweep>/slurm/` and submits them (or prints them)."""
    array, report, todo = scripts(config, sweep_dir, gpus_per_run, report_out)
    if not todo:
        log.info("every run is finished; nothing to submit")
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
    job = _sbatch([str(paths[0])])
    report_job = _sbatch([f"--dependency=afterany:{job}", str(paths[1])])
    log.info("submitted array job %s (%d runs) and report job %s; scripts and logs in %s/",
             job, len(todo), report_job, sweep_dir / "slurm")


def _sbatch(args: list[str]) -> str:
    done = subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SubmitError(f"sbatch {' '.join(args)} failed (exit {done.returncode}): "
                          f"{done.stderr.strip()}")
    return done.stdout.strip().split(";")[0]  # "jobid;cluster" on federated clusters
