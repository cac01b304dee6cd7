"""Benchmark (not a test): one sweep, swept by two checkouts of greenscreen side by side.

Each repeat sweeps the same config.yaml with checkout A, then with checkout B (each a
whole `python -m greenscreen_pipeline sweep local` process started in that checkout), and
reads per sweep: its wall time, the runs' `fit` time, the fixed cost per run, (wall - fit)
/ runs, and the share outside `fit`. Medians over the repeats, and B's fixed cost over
A's. For a change that moves work out of a sweep's own processes, e.g. issue 31's probe in
the first warm worker and config validation that reads your module instead of importing
it (A: `git worktree add /tmp/before <commit>`). `per_run` keeps each finished run's fit,
the time from its data being ready to its first epoch (inside `fit`, before the meter's
window: Keras's first look at the data), its energy with its provenance and its test
accuracy; `sweep_energy_j` adds every run folder's energy, failed runs' too.

`--stage all` times `all local` instead (sweep, analyze, final with final_epochs and
final_seeds 1, report): every training counts, the final runs too.

Usage: python benchmarks/checkout_ab.py --a /tmp/before --b . --config FILE
       [--runs 4] [--epochs 2] [--repeats 3] [--stage sweep|all] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from greenscreen_pipeline.runfolder import RunFolder  # noqa: E402

KEYS = ("wall_s", "fit_s", "fixed_per_run_s", "outside_fit_pct", "sweep_energy_j")


def study(source: Path, folder: Path, runs: int, epochs: int) -> Path:
    """The config's folder copied (your code beside it) with `runs` and `epochs` set."""
    shutil.copytree(source.parent, folder, ignore=shutil.ignore_patterns("sweeps", "report"))
    config = folder / source.name
    doc = yaml.safe_load(config.read_text())
    doc["settings"].update(runs=runs, epochs=epochs, final_epochs=1, final_seeds=1)
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    return config


def sweep(checkout: Path, config: Path, out: Path, stage: str = "sweep") -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    extra = ["--out", str(out.with_suffix(".pdf"))] if stage == "all" else []
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", stage, "local",
                           "--config", str(config), "--sweep-dir", str(out), *extra],
                          cwd=checkout, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"sweep in {checkout} failed: {done.stderr[-2000:]}")
    runs = sorted(p.parent for p in out.rglob("results.json"))  # the final runs' too
    per_run = {}
    for folder in runs:  # each finished run's fit and energy (its provenance with it)
        results = RunFolder(folder).results()
        if not results or "fit_end" not in (timing := results.timing):
            continue
        summary = RunFolder(folder).summary()
        per_run[folder.name] = {"fit_s": timing["fit_end"] - timing["fit_start"],
                                "before_fit_s": timing["fit_start"] - timing["data_ready"],
                                "energy_j": summary.energy_j, "source": summary.source,
                                "test_accuracy": results.test_accuracy}
    fits = [row["fit_s"] for row in per_run.values()]
    # Every attempt's energy, failed runs' too (a sweep's cost), and the sources it has.
    summaries = [s for p in out.rglob("summary.json") if (s := RunFolder(p.parent).summary())]
    return {"wall_s": wall, "runs": len(runs), "fit_s": sum(fits),
            "fixed_per_run_s": (wall - sum(fits)) / len(runs),
            "outside_fit_pct": 100 * (1 - sum(fits) / wall),
            "sweep_energy_j": sum(s.energy_j for s in summaries if s.energy_j == s.energy_j),
            "sweep_energy_sources": sorted({s.source for s in summaries}), "per_run": per_run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, required=True, help="checkout A (before)")
    parser.add_argument("--b", type=Path, required=True, help="checkout B (after)")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stage", choices=("sweep", "all"), default="sweep")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="greenscreen-ab-"))
    checkouts = {"a": args.a.resolve(), "b": args.b.resolve()}
    got: dict[str, list[dict]] = {"a": [], "b": []}
    try:
        config = study(args.config.resolve(), work / "study", args.runs, args.epochs)
        for r in range(args.repeats):
            for name, checkout in checkouts.items():  # interleaved: a, b, a, b, ...
                row = sweep(checkout, config, work / f"{name}-{r}", args.stage)
                got[name].append(row)
                print(f"{name} repeat {r}: {row}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {"benchmark": "checkout_ab", "date": time.strftime("%Y-%m-%d"),
              "backend": os.environ.get("KERAS_BACKEND", "tensorflow"), "cpus": os.cpu_count(),
              "config": str(args.config), "stage": args.stage, "runs": args.runs,
              "epochs": args.epochs,
              "checkouts": {k: str(v) for k, v in checkouts.items()}, "repeats": got}
    for name, rows in got.items():
        report[name] = {key: statistics.median(row[key] for row in rows) for key in KEYS}
    report["fixed_cost_ratio_b_over_a"] = (report["b"]["fixed_per_run_s"]
                                           / report["a"]["fixed_per_run_s"])
    emit(report, args.out)


if __name__ == "__main__":
    main()
