"""Benchmark (not a test): what a run pays for being its warm worker's first.

Run 000's configuration (the baseline) is trained for 3 epochs first in a fresh worker,
and, in another fresh worker, after another configuration (run OTHER's); alternately,
`--repeats` times. The difference is the first run's share of the process's one-off
costs (the backend's first programs, caches read into memory) that later runs do not
pay. Every run shares the sweep folder's compilation cache, as in a sweep (the first
repeat may fill it). Energy: the config's `energy_source` (here the CPU-time estimate).

Usage: KERAS_BACKEND=jax python benchmarks/first_in_worker.py --config FILE
       [--other 5] [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from greenscreen_pipeline import space  # noqa: E402
from greenscreen_pipeline.executors.stop import never  # noqa: E402
from greenscreen_pipeline.executors.workers import WorkerSlot  # noqa: E402
from greenscreen_pipeline.run import caches  # noqa: E402
from greenscreen_pipeline.run.execute import Request  # noqa: E402


def train(slot: WorkerSlot, config: str, folder: Path, configuration: dict) -> dict:
    slot.train(Request(config, str(folder), 0, 3, configuration), never())
    rows = list(csv.DictReader((folder / "logs.csv").open()))
    return {"energy_j": [float(r["energy_j"]) for r in rows],
            "epoch_s": [float(r["epoch_s"]) for r in rows]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--other", type=int, default=5, help="the run trained before")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    sweep = space.load(args.config)
    base, other = sweep.run(0), sweep.run(args.other)
    rows: dict[str, list[dict]] = {"first": [], "after_another": []}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, **caches.environment(Path(tmp) / caches.FOLDER)}
        for r in range(args.repeats):
            slot = WorkerSlot(env)
            try:
                rows["first"].append(train(slot, args.config, Path(tmp) / f"first{r}", base))
            finally:
                slot.close()
            slot = WorkerSlot(env)
            try:
                train(slot, args.config, Path(tmp) / f"other{r}", other)
                rows["after_another"].append(train(slot, args.config,
                                                   Path(tmp) / f"after{r}", base))
            finally:
                slot.close()
    medians = {k: {"energy_j": statistics.median(sum(x["energy_j"]) for x in v),
                   "first_epoch_s": statistics.median(x["epoch_s"][0] for x in v)}
               for k, v in rows.items()}
    emit({"benchmark": "first_in_worker", "date": time.strftime("%Y-%m-%d"),
          "backend": os.environ.get("KERAS_BACKEND", "tensorflow"), "cpus": os.cpu_count(),
          "config": args.config, "other": args.other, "medians": medians, "repeats": rows},
         args.out)


if __name__ == "__main__":
    main()
