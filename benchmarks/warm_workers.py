"""Benchmark (not a test): warm workers against a fresh process per run (issue 31).

Three measurements, each side by side in one invocation, repeats interleaved:

1. overhead: the default sweep (config.yaml) swept with warm workers and with
   `settings.isolate_runs: true`, alternately, `--repeats` times each. Per sweep: the fixed
   cost per run, (sweep wall time - the runs' fit time) / runs, and the share of the
   sweep's wall time outside `fit`; per run, the share outside `fit` as
   pipeline_overhead.py reads it, and its phases. The runs' fit time includes the fit of
   runs that trained and did not finish (a diverged run's epochs ran);
   `fixed_per_run_done_only_s` is the figure as first measured, finished runs' fit only;
   `worker_memory`: each warm run's worker pid, RSS and GPU memory after it (attempts.jsonl).
   Medians over the repeats.
2. memory: one warm worker trains `--memory-runs` runs of the default space one after
   another (1 epoch each); its RSS after each run, as the worker reports it.
3. cache: run 000's configuration trained in a fresh worker without the compilation
   cache, then with a cold one, then with the one that run filled, `--repeats` times:
   the first epoch's excess over the median later epoch (set-up and tracing).

Usage: python benchmarks/warm_workers.py [--repeats 3] [--only overhead,memory,cache]
       [--runs N --epochs E (a smaller default sweep, for a short device call)]
       [--modes warm|isolated (overhead: one sweep alone)] [--out FILE]
       (KERAS_BACKEND picks the backend; the cache is JAX's or XLA's)
"""

from __future__ import annotations

import argparse
import csv
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
sys.path.insert(0, str(ROOT / "benchmarks"))
from pipeline_overhead import phases, unfinished_fit  # noqa: E402

from greenscreen_pipeline.executors.stop import never  # noqa: E402
from greenscreen_pipeline.executors.workers import WorkerSlot  # noqa: E402
from greenscreen_pipeline.run.execute import Request  # noqa: E402
from greenscreen_pipeline.runfolder import RunFolder  # noqa: E402


def config_copy(folder: Path, **settings) -> Path:
    """config.yaml with some settings changed, in `folder`."""
    doc = yaml.safe_load((ROOT / "config.yaml").read_text())
    doc["settings"].update(settings)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def sweep_once(config: Path, out: Path) -> dict:
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "sweep", "local",
                           "--config", str(config), "--sweep-dir", str(out)], cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"sweep failed: {done.stderr[-2000:]}")
    runs = sorted(out.glob("[0-9][0-9][0-9]"))
    fits, per_run, rows = [], [], []
    for folder in runs:
        results = RunFolder(folder).results()
        if results and "fit_end" in results.timing:
            fits.append(results.timing["fit_end"] - results.timing["fit_start"])
        row = phases(folder)
        if row:
            per_run.append(row["outside_fit_pct"])
            rows.append(row)
    unfinished = {folder.name: s for folder in runs if (s := unfinished_fit(folder)) > 0}
    memory = {folder.name: a["worker"] for folder in runs  # warm only: after each run
              for a in RunFolder(folder).attempts() if a.get("worker")}
    fit = sum(fits) + sum(unfinished.values())
    return {"wall_s": wall, "runs": len(runs), "fit_s": fit,
            "fixed_per_run_s": (wall - fit) / len(runs),
            "outside_fit_pct": 100 * (1 - fit / wall),
            "median_run_outside_fit_pct": statistics.median(per_run) if per_run else None,
            "fixed_per_run_done_only_s": (wall - sum(fits)) / len(runs),
            "unfinished_fit_s": unfinished, "per_run": rows, "worker_memory": memory}


def overhead(work: Path, repeats: int, size: dict, only: list[str]) -> dict:
    modes = {mode: config_copy(_mk(work / mode), isolate_runs=(mode == "isolated"), **size)
             for mode in ("warm", "isolated") if mode in only}
    got: dict[str, list[dict]] = {mode: [] for mode in modes}
    for r in range(repeats):
        for mode, config in modes.items():  # interleaved: warm, isolated, warm, ...
            row = sweep_once(config, work / f"{mode}-sweep-{r}")
            got[mode].append(row)
            print(f"overhead {mode} repeat {r}: "
                  f"{ {k: v for k, v in row.items() if k not in ('per_run', 'worker_memory')} }",
                  flush=True)
    out = {mode: {key: statistics.median(row[key] for row in rows)
                  for key in ("wall_s", "fit_s", "fixed_per_run_s", "outside_fit_pct",
                              "median_run_outside_fit_pct", "fixed_per_run_done_only_s")}
           for mode, rows in got.items()}
    if len(modes) == 2:
        out["fixed_cost_ratio_warm_over_isolated"] = (out["warm"]["fixed_per_run_s"]
                                                      / out["isolated"]["fixed_per_run_s"])
        out["fixed_cost_ratio_done_only"] = (out["warm"]["fixed_per_run_done_only_s"]
                                             / out["isolated"]["fixed_per_run_done_only_s"])
    out["repeats"] = got
    return out


def memory(work: Path, runs: int) -> dict:
    config = config_copy(_mk(work / "memory"), runs=runs, epochs=1)
    slot, rss, gpu, pids = WorkerSlot(), [], [], []
    try:
        for i in range(runs):
            ending = slot.train(Request(str(config), str(work / "memory-sweep"), i, 1), never())
            rss.append(ending.rss_mb)
            gpu.append(ending.gpu_mb)
            pids.append(ending.worker_pid)  # set before a retiring worker is closed
            print(f"memory run {i:03d}: code {ending.code}, RSS {ending.rss_mb} MiB, "
                  f"GPU {ending.gpu_mb} MiB, workers started {slot.started}"
                  f"{f', retired: {ending.retired}' if ending.retired else ''}", flush=True)
    finally:
        slot.close()
    return {"runs": runs, "rss_mb": rss, "gpu_mb": gpu, "worker_pid": pids,
            "workers_started": slot.started,
            "rss_after_1_mb": rss[0], f"rss_after_{runs}_mb": rss[-1],
            "gpu_after_1_mb": gpu[0], f"gpu_after_{runs}_mb": gpu[-1]}


def first_epoch_excess(folder: Path) -> float:
    epochs = [float(r["epoch_s"]) for r in csv.DictReader(open(folder / "logs.csv"))]
    return epochs[0] - statistics.median(epochs[1:])


def cache(work: Path, repeats: int) -> dict:
    config = config_copy(_mk(work / "cache"), epochs=4)
    target = yaml.safe_load((ROOT / "config.yaml").read_text())["configuration"]
    configuration = {dim: spec["values"][0] for dim, spec in target.items()}
    got: dict[str, list[float]] = {"no cache": [], "cold cache": [], "warm cache": []}
    for r in range(repeats):
        shutil.rmtree(work / ".cache", ignore_errors=True)
        for case in got:
            env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": "",
                   "TF_XLA_FLAGS": "--tf_xla_persistent_cache_directory="} \
                if case == "no cache" else None
            folder = work / f"cache-{r}-{case.replace(' ', '-')}"
            slot = WorkerSlot(env)
            try:  # the final run's path: its cache is <work>/.cache
                slot.train(Request(str(config), str(folder), 0, 4, configuration), never())
            finally:
                slot.close()
            got[case].append(first_epoch_excess(folder))
            print(f"cache repeat {r} {case}: first-epoch excess {got[case][-1]:.2f} s",
                  flush=True)
    return {case: {"median_first_epoch_excess_s": statistics.median(v), "values": v}
            for case, v in got.items()}


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-runs", type=int, default=20)
    parser.add_argument("--only", default="overhead,memory,cache")
    parser.add_argument("--out", default=None)
    parser.add_argument("--runs", type=int, default=None,
                        help="overhead: the sweep's runs (default: config.yaml's)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="overhead: epochs per run (default: config.yaml's)")
    parser.add_argument("--modes", default="warm,isolated",
                        help="overhead: which sweeps (one alone when a device call cannot "
                             "hold both; then it is not side by side)")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="greenscreen-warm-"))
    report = {"benchmark": "warm_workers", "date": time.strftime("%Y-%m-%d"),
              "backend": os.environ.get("KERAS_BACKEND", "tensorflow"), "cpus": os.cpu_count()}
    try:
        if "overhead" in parts:
            size = {key: value for key, value in (("runs", args.runs), ("epochs", args.epochs))
                    if value is not None}
            report["overhead"] = overhead(work, args.repeats, size, args.modes.split(","))
            report["overhead"]["sweep_size"] = size or "config.yaml"
        if "memory" in parts:
            report["memory"] = memory(work, args.memory_runs)
        if "cache" in parts:
            report["cache"] = cache(work, args.repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    emit(report, args.out)


if __name__ == "__main__":
    main()
