"""Benchmark (not a test): big model alone vs a small/big cascade on the embedded digits.

Trains a small dense model and a bigger CNN on digits, picks the threshold on
the validation split (the cheapest within 0.5 pt of the big model's
validation accuracy), then on the test split measures, side by side, the big
model alone and the cascade: accuracy, and wall time and energy per 1000
predictions from the meter around each predict call (labelled with its
source), plus the escalation rate. Medians over seeds.

Usage: python benchmarks/cascade.py [--seeds 3] [--out benchmarks/results/cascade.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)

from greenscreen.cascade import Cascade, find_threshold  # noqa: E402
from greenscreen.cascade.__main__ import load_data, train_pair  # noqa: E402
from greenscreen.cascade.cascade import infer  # noqa: E402
from greenscreen.cascade.threshold import timed_work  # noqa: E402
from greenscreen.meters import EnergyMeter  # noqa: E402


def timed(meter, fn, repeats: int):
    fn()  # warm-up: tracing
    with meter.window() as w:  # timed inside: closing the window can wait, once
        result, seconds = timed_work(lambda: [fn() for _ in range(repeats)][-1])
    return result, seconds / repeats, w.energy_j / repeats


def machine(gpus: list[str]) -> str:
    """The machine in words, with the GPUs the meter found (none: "no GPU")."""
    return f"{platform.machine()}, {os.cpu_count()} cores, " + (
        ", ".join(gpus) if gpus else "no GPU")


def one_seed(seed: int, repeats: int) -> dict:
    keras.utils.set_random_seed(seed)
    x_tr, y_tr, x_va, y_va, x_te, y_te = load_data(None, seed)
    small, big = train_pair(x_tr, y_tr, 10, epochs=15)
    with EnergyMeter(interval=0.05) as meter:
        meter.wait_for_sample(5.0)
        search = find_threshold(small, big, x_va, y_va, "difference", 2000, 0.005, meter=meter)
        t = search.cheapest_matching_threshold
        t = search.best_threshold if t is None else t
        cascade = Cascade(small, big, "difference", t)
        big_probs, big_s, big_j = timed(
            meter, lambda: infer(big, x_te, 256), repeats)
        out, cas_s, cas_j = timed(meter, lambda: cascade.predict(x_te, batch_size=256), repeats)
        source = meter.source
        gpus = [d["name"] for d in meter.devices if d["component"] == "gpu"]
    n = len(x_te) / 1000
    return {"seed": seed, "threshold": t, "source": source, "gpus": gpus,
            "big_accuracy": float(np.mean(big_probs.argmax(1) == y_te)),
            "cascade_accuracy": float(np.mean(out.predictions == y_te)),
            "escalation_rate": out.escalation_rate,
            "big_s_per_1000": big_s / n, "cascade_s_per_1000": cas_s / n,
            "big_j_per_1000": big_j / n, "cascade_j_per_1000": cas_j / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default="benchmarks/results/cascade.json")
    args = parser.parse_args()
    runs = [one_seed(s, args.repeats) for s in range(args.seeds)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k not in ("seed", "source",
                                                                                  "gpus")}
    med["energy_saving_pct"] = 100 * (1 - med["cascade_j_per_1000"] / med["big_j_per_1000"])
    med["time_saving_pct"] = 100 * (1 - med["cascade_s_per_1000"] / med["big_s_per_1000"])
    med["accuracy_change_pt"] = 100 * (med["cascade_accuracy"] - med["big_accuracy"])
    report = {"benchmark": "cascade", "date": time.strftime("%Y-%m-%d"),
              "machine": machine(runs[0]["gpus"]),
              "energy_source": runs[0]["source"], "median": med, "runs": runs}
    emit(report, args.out)


if __name__ == "__main__":
    main()
