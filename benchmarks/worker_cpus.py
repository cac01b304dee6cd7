"""Benchmark (not a test): local workers pinned to their share of the CPUs, or not.

The same sweep, swept side by side by two checkouts of greenscreen, alternately: with one
worker, and with `--workers 2` by checkout A (before: every worker on every CPU) and by
checkout B (after: each pinned to its share, `greenscreen_pipeline/run/cpus.py`). Per
sweep: its wall time and the runs' energy (summed over their summary.json files; with
`energy_source: estimate` it is the CPU-time estimate, so it tracks the CPU time the runs
burnt). Medians over the repeats. The backend is KERAS_BACKEND's.

Usage: KERAS_BACKEND=torch python benchmarks/worker_cpus.py --a /tmp/before --b .
       --config FILE [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)

MODES = (("one worker", "b", 1), ("2 workers, unpinned (A)", "a", 2),
         ("2 workers, pinned (B)", "b", 2))


def sweep(checkout: Path, config: Path, out: Path, workers: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "sweep", "local",
                           "--config", str(config), "--sweep-dir", str(out), "--no-probe",
                           "--workers", str(workers)],
                          cwd=checkout, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"sweep in {checkout} failed: {done.stderr[-2000:]}")
    summaries = [json.loads(p.read_text()) for p in sorted(out.glob("[0-9]*/summary.json"))]
    return {"wall_s": wall, "runs": len(summaries),
            "energy_j": sum(s["energy_j"] for s in summaries),
            "sources": sorted({s["source"] for s in summaries})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, required=True, help="checkout A (before)")
    parser.add_argument("--b", type=Path, required=True, help="checkout B (after)")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    checkouts = {"a": args.a.resolve(), "b": args.b.resolve()}
    rows: dict[str, list[dict]] = {name: [] for name, _, _ in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name, which, workers in MODES:
                out = Path(tmp) / f"{which}{workers}-{r}"
                rows[name].append(sweep(checkouts[which], args.config.resolve(), out,
                                        workers))
                print(name, r, rows[name][-1], file=sys.stderr, flush=True)
    medians = {name: {k: statistics.median(x[k] for x in runs) for k in ("wall_s", "energy_j")}
               for name, runs in rows.items()}
    emit({"benchmark": "worker_cpus", "date": time.strftime("%Y-%m-%d"),
          "backend": os.environ.get("KERAS_BACKEND", "tensorflow"), "cpus": os.cpu_count(),
          "config": str(args.config), "medians": medians, "repeats": rows}, args.out)


if __name__ == "__main__":
    main()
