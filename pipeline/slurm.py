"""Slurm executor: one job array over the unfinished runs, then a dependent
analysis + final + report job.

The report job uses `--dependency=afterany`, not `afterok`: with `afterok` one
failed run (an OOM, a NaN) would cancel the analysis of every run that did
finish; failed runs are recorded in their folders and listed by the analysis
anyway. Resubmitting after a partial failure only includes runs not done.
The sweep folder must be on storage every node sees (e.g. a shared home or
scratch file system), since each array task writes its own run folder there.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from . import runfolder
from .space import SweepConfig

ROOT = Path(__file__).resolve().parents[1]


def unfinished(sweep_dir: Path, runs: int) -> list[int]:
    return [i for i in range(runs)
            if runfolder.status(runfolder.run_dir(sweep_dir, i)) not in runfolder.FINAL]


def header(name: str, opts: dict, sweep_dir: Path) -> list[str]:
    lines = ["#!/bin/bash", f"#SBATCH --job-name={name}",
             f"#SBATCH --output={sweep_dir.resolve()}/slurm/%x-%A_%a.out"]
    for key in ("partition", "time", "account"):
        if opts.get(key):
            lines.append(f"#SBATCH --{key}={opts[key]}")
    return lines


def scripts(config: SweepConfig, sweep_dir: Path, opts: dict) -> tuple[str, str, list[int]]:
    """The array script, the report script, and the run indices the array covers."""
    todo = unfinished(sweep_dir, config.settings["runs"])
    py, cfg = shlex.quote(sys.executable), shlex.quote(str(Path(config.path).resolve()))
    out = shlex.quote(str(sweep_dir.resolve()))
    parallel = f"%{opts['parallel']}" if opts.get("parallel") else ""
    array = header("greenscreen-runs", opts, sweep_dir) + [
        f"#SBATCH --array={','.join(map(str, todo))}{parallel}"]
    if opts.get("gpus_per_run", 1):
        array.append(f"#SBATCH --gres=gpu:{opts.get('gpus_per_run', 1)}")
    array += [f"cd {shlex.quote(str(ROOT))}",
              f"exec {py} -m pipeline run-one --config {cfg} --sweep-dir {out} "
              "--index \"$SLURM_ARRAY_TASK_ID\""]
    report = header("greenscreen-report", opts, sweep_dir) + [
        f"cd {shlex.quote(str(ROOT))}",
        *(f"{py} -m pipeline {stage} --config {cfg} --sweep-dir {out}"
          for stage in ("analyze", "final", "report"))]
    return "\n".join(array) + "\n", "\n".join(report) + "\n", todo


def submit(config: SweepConfig, sweep_dir: Path, opts: dict, dry_run: bool) -> None:
    array, report, todo = scripts(config, sweep_dir, opts)
    if not todo:
        print("greenscreen: every run is finished; nothing to submit")
        return
    (sweep_dir / "slurm").mkdir(parents=True, exist_ok=True)
    paths = sweep_dir / "slurm" / "runs.sbatch", sweep_dir / "slurm" / "report.sbatch"
    for path, text in zip(paths, (array, report)):
        path.write_text(text)
    if dry_run:
        print(f"# {paths[0]}\n{array}\n# {paths[1]}\n{report}")
        print(f"# would run: sbatch --parsable {paths[0]}")
        print(f"# then: sbatch --parsable --dependency=afterany:<array job id> {paths[1]}")
        return
    job = subprocess.run(["sbatch", "--parsable", str(paths[0])], check=True,
                         capture_output=True, text=True).stdout.strip().split(";")[0]
    dep = subprocess.run(["sbatch", "--parsable", f"--dependency=afterany:{job}",
                          str(paths[1])], check=True, capture_output=True, text=True)
    print(f"greenscreen: submitted array job {job} ({len(todo)} runs) and report job "
          f"{dep.stdout.strip()}; scripts in {sweep_dir / 'slurm'}/")
