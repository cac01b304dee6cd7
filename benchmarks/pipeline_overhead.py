"""Benchmark (not a test): the share of each run's wall time spent outside `fit`.

Each run records its timeline in results.json ("timing": process start, imports
done, data ready, fit start/end, end) and the sweep records the run's wall time
from spawn to exit in attempts.jsonl, both read through greenscreen_pipeline.runfolder.
and reports, per run and as the median, where the time went.

A run that trained and did not finish (diverged, failed, stopped at a rung, interrupted)
has no results.json; its `fit` is the time its SMICallback measured (summary.json's
duration_s over its attempts), which `unfinished_fit` reads. A sweep's fixed cost counts
that time as training, not as overhead: the epochs ran.

Usage: python benchmarks/pipeline_overhead.py --sweep-dir sweeps/default [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from greenscreen_pipeline.runfolder import RunFolder, Unreadable  # noqa: E402


def phases(path: Path) -> dict | None:
    folder = RunFolder(path)
    try:
        outcome, results = folder.outcome(), folder.results()
    except Unreadable:
        return None
    t, wall = (results.timing if results else None), outcome.get("wall_s")
    if outcome["status"] != "done" or not t or not wall:
        return None
    fit = t["fit_end"] - t["fit_start"]
    return {
        "run": folder.name, "wall_s": round(wall, 2), "fit_s": round(fit, 2),
        "outside_fit_pct": round(100 * (1 - fit / wall), 1),
        "spawn_and_exit_s": round(wall - (t["end"] - t["process_start"]), 2),
        "imports_s": round(t["imports_done"] - t["process_start"], 2),
        "data_and_build_s": round(t["data_ready"] - t["imports_done"], 2),
        "meter_start_s": round(t["fit_start"] - t["data_ready"], 2),
        "evaluate_and_write_s": round(t["end"] - t["fit_end"], 2),
    }


def unfinished_fit(path: Path) -> float:
    """Seconds run `path` spent in `fit` without finishing: its measured window over every
    attempt (0 for a finished run, whose fit `phases` reads, or one that never trained)."""
    folder = RunFolder(path)
    try:
        if folder.outcome()["status"] == "done":
            return 0.0
        summary = folder.summary()
    except Unreadable:
        return 0.0
    if summary is None or not summary.duration_s == summary.duration_s:  # none, or NaN
        return 0.0
    return float(summary.duration_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep-dir", default="sweeps/default")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    folders = sorted(Path(args.sweep_dir).glob("[0-9][0-9][0-9]"))
    rows = [r for f in folders if (r := phases(f)) is not None]
    if not rows:
        raise SystemExit(f"no finished runs with timing in {args.sweep_dir}")
    report = {
        "benchmark": "pipeline_overhead", "date": time.strftime("%Y-%m-%d"),
        "sweep_dir": args.sweep_dir, "runs": len(rows),
        "median_outside_fit_pct": statistics.median(r["outside_fit_pct"] for r in rows),
        "median_wall_s": statistics.median(r["wall_s"] for r in rows),
        "median_imports_s": statistics.median(r["imports_s"] for r in rows),
        "per_run": rows,
        "unfinished_fit_s": {f.name: round(s, 2) for f in folders
                             if (s := unfinished_fit(f)) > 0},
    }
    emit(report, args.out)


if __name__ == "__main__":
    main()
