"""Benchmark (not a test): sweep throughput of each executor on this machine.

The same tiny sweep (small CNN on digits, estimated energy) is trained from
scratch by the local executor with 1 and 2 workers, by a local Ray instance
and, where `slurm-wlm` and `munge` are installed, by a single-node Slurm
started for the purpose (tests/localslurm.py). Modes alternate within each
trial so that drifts of the machine hit all of them alike. Reported: runs per
minute from submission to the last run folder written, per trial and median.
The Slurm figure includes the scheduler's polling; its report job (analysis, a
1-epoch final run, PDF) runs after the timing stops and before the next mode.

Usage: python benchmarks/executors.py [--runs 6] [--epochs 2] [--trials 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from localslurm import LocalSlurm, Unavailable  # noqa: E402

from greenscreen_pipeline import runfolder  # noqa: E402

CONFIG = """
settings: {{runs: {runs}, epochs: {epochs}, final_epochs: 1, seed: 3, energy_source: estimate}}
configuration:
  model: {{values: [small_cnn]}}
  batch_size: {{values: [32, 64]}}
  lr: {{values: [0.001, 0.003]}}
"""
MODES = {"local, 1 worker": ["local", "--workers", "1"],
         "local, 2 workers": ["local", "--workers", "2"],
         "ray, local, 2 CPUs": ["ray", "--num-cpus", "2"],
         "slurm, 1 node, 2 CPUs": ["slurm", "--gpus-per-run", "0"]}


def one_sweep(config: Path, out: Path, options: list[str], runs: int, env=None) -> float:
    t0 = time.time()
    executor, *flags = options
    cmd = [sys.executable, "-m", "greenscreen_pipeline", "sweep", executor, "--config",
           str(config), "--sweep-dir", str(out), *flags]
    subprocess.run(cmd, cwd=ROOT, check=True, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    while not all(row["status"] in runfolder.FINAL  # Slurm returns at submission
                  for row in runfolder.statuses(out, runs)):
        time.sleep(0.2)
    return time.time() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gs-executors-"))
    config = work / "config.yaml"
    config.write_text(CONFIG.format(runs=args.runs, epochs=args.epochs))
    slurm, notes = LocalSlurm(), {}
    try:
        slurm.start()
    except Unavailable as exc:
        notes["slurm"] = f"not measured: {exc}"
    walls = {mode: [] for mode in MODES if mode.split(",")[0] not in notes}
    try:
        for trial in range(args.trials):
            for k, mode in enumerate(walls):
                out = work / f"trial{trial}-mode{k}"
                env = slurm.env if mode.startswith("slurm") else None
                walls[mode].append(one_sweep(config, out, MODES[mode], args.runs, env))
                if env:
                    slurm.wait_idle(timeout=300)  # the report job, before the next mode
                print(f"trial {trial} {mode}: {walls[mode][-1]:.1f} s", file=sys.stderr)
    finally:
        slurm.stop()
        shutil.rmtree(work, ignore_errors=True)
    rows = {mode: {"wall_s": [round(w, 1) for w in ws],
                   "runs_per_min": [round(60 * args.runs / w, 1) for w in ws],
                   "median_runs_per_min": round(statistics.median(60 * args.runs / w
                                                                  for w in ws), 1)}
            for mode, ws in walls.items()}
    emit({"runs": args.runs, "epochs": args.epochs, "trials": args.trials, "modes": rows,
          "notes": notes}, args.out)


if __name__ == "__main__":
    main()
