"""Benchmark (not a test): the share of each run's wall time spent outside `fit`.

Each run records its timeline in results.json ("timing": process start, imports
done, data ready, fit start/end, end) and the sweep records the run's wall time
from spawn to exit in attempts.jsonl, both read through greenscreen_pipeline.runfolder.
and reports, per run and as the median, where the time went.

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep-dir", default="sweeps/default")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = [r for f in sorted(Path(args.sweep_dir).glob("[0-9][0-9][0-9]"))
            if (r := phases(f)) is not None]
    if not rows:
        raise SystemExit(f"no finished runs with timing in {args.sweep_dir}")
    report = {
        "benchmark": "pipeline_overhead", "date": time.strftime("%Y-%m-%d"),
        "sweep_dir": args.sweep_dir, "runs": len(rows),
        "median_outside_fit_pct": statistics.median(r["outside_fit_pct"] for r in rows),
        "median_wall_s": statistics.median(r["wall_s"] for r in rows),
        "median_imports_s": statistics.median(r["imports_s"] for r in rows),
        "per_run": rows,
    }
    emit(report, args.out)


if __name__ == "__main__":
    main()
