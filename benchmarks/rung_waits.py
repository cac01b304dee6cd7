"""Benchmark (not a test): the share of worker time a halving sweep spends waiting at its
rungs (issue 37 item 3: a run waiting for its peers holds its worker, and on a GPU the GPU).

Reads a finished sweep folder. Per run, from logs.csv's `t_start`/`t_end` and
results.json's `fit_start`/`fit_end` (a run stopped at a rung: its first epoch's start,
and the time its status.json was written, once the rung decided): the gap after each
epoch until the next epoch starts, or until its `fit` ended. A rung's wait is its gap less
the run's median gap after the epochs that are not rungs (checkpoint and callbacks, paid
after every epoch). The share is the waits' sum over the runs' `fit` time, every run of
the sweep.

Usage: python benchmarks/rung_waits.py SWEEP_DIR [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from greenscreen_pipeline.search import halving  # noqa: E402


def run_waits(folder: Path, rungs: list[int]) -> dict | None:
    """One run's fit time and its waits at rungs, in seconds; None for a run that did not
    record both its epochs and its fit."""
    try:
        rows = list(csv.DictReader(open(folder / "logs.csv", encoding="utf-8")))
        rows = [r for r in rows if r.get("epoch", "").isdigit() and r.get("t_end")]
        timing = _timing(folder, rows)
    except (OSError, ValueError, KeyError, IndexError):
        return None
    if not rows or "fit_end" not in timing:
        return None
    ends = [float(r["t_end"]) for r in rows]
    starts = [float(r["t_start"]) for r in rows[1:]] + [timing["fit_end"]]
    gaps = {int(r["epoch"]) + 1: b - a for r, a, b in zip(rows, ends, starts)}
    plain = [g for epoch, g in gaps.items() if epoch not in rungs] or [0.0]
    usual = statistics.median(plain)
    waits = {epoch: max(0.0, gaps[epoch] - usual) for epoch in rungs if epoch in gaps}
    return {"fit_s": timing["fit_end"] - timing["fit_start"], "waits_s": waits,
            "usual_gap_s": usual}


def _timing(folder: Path, rows: list[dict]) -> dict:
    """results.json's timing; for a run stopped at a rung (no results.json), its first
    epoch's start and the time status.json says it stopped (written once the rung decided)."""
    if (folder / "results.json").exists():
        return json.loads((folder / "results.json").read_text())["timing"]
    status = json.loads((folder / "status.json").read_text())
    if status.get("status") != "stopped":
        return {}
    return {"fit_start": float(rows[0]["t_start"]), "fit_end": float(status["time"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    settings = json.loads((args.sweep_dir / "sweep.json").read_text())["settings"]
    rungs = halving.default_rule(settings.get("halving_eta", 3)).rungs(settings["epochs"])
    runs = {}
    for folder in sorted(args.sweep_dir.glob("[0-9][0-9][0-9]")):
        row = run_waits(folder, rungs)
        if row is not None:
            runs[folder.name] = row
    fit = sum(r["fit_s"] for r in runs.values())
    waited = sum(sum(r["waits_s"].values()) for r in runs.values())
    emit({"benchmark": "rung_waits", "date": time.strftime("%Y-%m-%d"),
          "sweep_dir": str(args.sweep_dir), "rungs": rungs, "runs": len(runs),
          "fit_s": fit, "waited_s": waited,
          "waiting_share_pct": 100 * waited / fit if fit else None, "per_run": runs},
         args.out)


if __name__ == "__main__":
    main()
