"""Benchmark (not a test): the share of worker time a halving sweep spends waiting at its
rungs (issue 37 item 3: a run waiting for its peers holds its worker, and on a GPU the GPU).

Reads a finished sweep folder. Per run, from logs.csv's `t_start`/`t_end` and
results.json's `fit_start`/`fit_end` (a run stopped at a rung: its first epoch's start,
and the time its status.json was written, once the rung decided): the gap after each
epoch until the next epoch starts, or until its `fit` ended. A rung's wait is its gap less
the run's median gap after the epochs that are not rungs (checkpoint and callbacks, paid
after every epoch). The share is the waits' sum over the runs' `fit` time, every run of
the sweep. A run parked at a rung (`settings.release_at_rungs`) held no worker between
its attempts (attempts.jsonl): that time is neither a wait nor `fit` time; what is left
of the gap is the parking and the resume (the model built again, the checkpoint read).

    python benchmarks/rung_waits.py SWEEP_DIR [--out FILE]
    python benchmarks/rung_waits.py --sweeps 3 [--out FILE]

The second form measures before and after side by side: the sweep below (8 runs x 9
epochs on digits, random search, halving with eta 3, `sweep local --workers 2`) with
`release_at_rungs: false` (waiting in the worker) and `true`, alternately, N times each.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from greenscreen_pipeline.runfolder import RunFolder  # noqa: E402
from greenscreen_pipeline.search import halving  # noqa: E402

CONFIG = """settings: {{runs: 8, epochs: 9, seed: 5, early_stop: halving, halving_eta: 3,
           final_epochs: 1, final_seeds: 1, release_at_rungs: {release}}}
configuration:
  dataset: {{values: [digits]}}
  model: {{values: [ffnn, small_cnn]}}
  batch_size: {{values: [32, 128]}}
  lr: {{values: [0.001, 0.01, 0.1]}}
"""


def run_waits(folder: Path, rungs: list[int]) -> dict | None:
    """One run's fit time and its waits at rungs, in seconds; None for a run that did not
    record both its epochs and its fit."""
    try:
        rows = list(csv.DictReader(open(folder / "logs.csv", encoding="utf-8")))
        rows = [r for r in rows if r.get("epoch", "").isdigit() and r.get("t_end")]
        timing = _timing(folder, rows)
        parked = parked_intervals(folder)
    except (OSError, ValueError, KeyError, IndexError):
        return None
    if not rows or "fit_end" not in timing:
        return None
    ends = [float(r["t_end"]) for r in rows]
    starts = [float(r["t_start"]) for r in rows[1:]] + [timing["fit_end"]]
    gaps = {int(r["epoch"]) + 1: b - a - _overlap(parked, a, b)
            for r, a, b in zip(rows, ends, starts)}
    plain = [g for epoch, g in gaps.items() if epoch not in rungs] or [0.0]
    usual = statistics.median(plain)
    waits = {epoch: max(0.0, gaps[epoch] - usual) for epoch in rungs if epoch in gaps}
    fit = timing["fit_end"] - float(rows[0]["t_start"]) - _overlap(
        parked, float(rows[0]["t_start"]), timing["fit_end"])
    return {"fit_s": fit, "waits_s": waits, "usual_gap_s": usual,
            "parked_s": sum(b - a for a, b in parked), "attempts": len(parked) + 1}


def parked_intervals(folder: Path) -> list[tuple[float, float]]:
    """When the run held no worker: from an attempt's end to the next one's start. (An
    attempt's merged `time` is its end; its start is that less its `wall_s`.)"""
    attempts = RunFolder(folder).attempts()
    return [(a["time"], b["time"] - b["wall_s"]) for a, b in zip(attempts, attempts[1:])
            if "wall_s" in a and "wall_s" in b]


def _overlap(intervals: list[tuple[float, float]], a: float, b: float) -> float:
    return sum(max(0.0, min(b, hi) - max(a, lo)) for lo, hi in intervals)


def _timing(folder: Path, rows: list[dict]) -> dict:
    """results.json's timing; for a run stopped at a rung (no results.json), its first
    epoch's start and the time status.json says it stopped (written once the rung decided)."""
    if (folder / "results.json").exists():
        return json.loads((folder / "results.json").read_text())["timing"]
    status = json.loads((folder / "status.json").read_text())
    if status.get("status") != "stopped":
        return {}
    return {"fit_start": float(rows[0]["t_start"]), "fit_end": float(status["time"])}


def sweep_waits(sweep_dir: Path) -> dict:
    settings = json.loads((sweep_dir / "sweep.json").read_text())["settings"]
    rungs = halving.default_rule(settings.get("halving_eta", 3)).rungs(settings["epochs"])
    runs = {}
    for folder in sorted(sweep_dir.glob("[0-9][0-9][0-9]")):
        row = run_waits(folder, rungs)
        if row is not None:
            runs[folder.name] = row
    fit = sum(r["fit_s"] for r in runs.values())
    waited = sum(sum(r["waits_s"].values()) for r in runs.values())
    return {"sweep_dir": str(sweep_dir), "rungs": rungs, "runs": len(runs), "fit_s": fit,
            "waited_s": waited, "waiting_share_pct": 100 * waited / fit if fit else None,
            "parked_runs": sum(r["attempts"] > 1 for r in runs.values()), "per_run": runs}


def side_by_side(repeats: int) -> dict:
    """The sweep waiting in its workers and releasing them, alternately."""
    work = Path(tempfile.mkdtemp(prefix="greenscreen-rungs-"))
    got: dict[str, list[dict]] = {"hold": [], "release": []}
    for r in range(repeats):
        for mode in got:
            config = work / f"{mode}-{r}.yaml"
            config.write_text(CONFIG.format(release=str(mode == "release").lower()))
            out = work / f"{mode}-{r}"
            began = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "sweep",
                                   "local", "--workers", "2", "--config", str(config),
                                   "--sweep-dir", str(out)], cwd=ROOT, capture_output=True,
                                  text=True)
            wall = time.perf_counter() - began
            if done.returncode != 0:
                raise SystemExit(f"sweep failed: {done.stderr[-2000:]}")
            row = {**sweep_waits(out), "wall_s": wall}
            got[mode].append(row)
            print(f"{mode} {r}: wall {wall:.1f} s, waiting {row['waiting_share_pct']:.1f} % "
                  f"of {row['fit_s']:.1f} s fit, {row['parked_runs']} run(s) parked",
                  flush=True)
    medians = {mode: {key: statistics.median(row[key] for row in rows)
                      for key in ("wall_s", "fit_s", "waited_s", "waiting_share_pct")}
               for mode, rows in got.items()}
    return {"config": CONFIG, "repeats": repeats, "medians": medians, "sweeps": got}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, nargs="?")
    parser.add_argument("--sweeps", type=int, default=0,
                        help="run the sweep N times each way instead of reading SWEEP_DIR")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if (args.sweep_dir is None) == (args.sweeps == 0):
        parser.error("give SWEEP_DIR or --sweeps N")
    report = {"benchmark": "rung_waits", "date": time.strftime("%Y-%m-%d")}
    report.update(sweep_waits(args.sweep_dir) if args.sweep_dir else side_by_side(args.sweeps))
    emit(report, args.out)


if __name__ == "__main__":
    main()
