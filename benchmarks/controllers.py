"""Benchmark (not a test): how well each gating controller tracks its target rate.

Both controllers of `SampleGating` run on synthetic score streams, without training:
- stationary: scores uniform on [0, 1], batch 128;
- drifting: scores Beta(2, b) with b rising from 2 to 12 over the run, as losses
  shrink while a model learns (the share above a fixed threshold keeps falling).

For each: the mean absolute error of the activation rate against the target over
the second half of the run, and the first step after which the 50-step rolling
rate stays within 25 % of the target. Medians over seeds.

Usage: python benchmarks/controllers.py [--steps 2000] [--seeds 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _report import emit  # noqa: E402

from greenscreen.training.controllers import CONTROLLERS, simulate  # noqa: E402


def streams(seed: int, steps: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"stationary": lambda step: rng.random(128),
            "drifting": lambda step: rng.beta(2.0, 2.0 + 10.0 * step / steps, 128)}


def figures(rates: list[float], target: float) -> dict:
    r = np.asarray(rates)
    half = r[len(r) // 2:]
    rolling = np.convolve(r, np.ones(50) / 50, mode="valid")
    inside = np.abs(rolling - target) <= 0.25 * target
    outside = np.nonzero(~inside)[0]
    settled = int(outside[-1] + 50) if len(outside) else 49
    return {"mae_second_half": float(np.mean(np.abs(half - target))),
            "mean_rate_second_half": float(half.mean()),
            "settled_at_step": settled if settled < len(r) else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    for target in (0.1, 0.3):
        for name, cls in CONTROLLERS.items():
            for stream in ("stationary", "drifting"):
                runs = [figures(simulate(cls(target), streams(seed, args.steps)[stream],
                                         args.steps), target) for seed in range(args.seeds)]
                settled = [r["settled_at_step"] for r in runs]
                rows.append({
                    "controller": name, "target": target, "stream": stream,
                    "mae_second_half": statistics.median(r["mae_second_half"] for r in runs),
                    "mean_rate_second_half": statistics.median(
                        r["mean_rate_second_half"] for r in runs),
                    "settled_at_step_median": None if None in settled else
                    statistics.median(settled), "seeds": args.seeds})
                print(rows[-1], flush=True)
    emit({"benchmark": "controllers", "date": time.strftime("%Y-%m-%d"),
          "steps": args.steps, "rows": rows}, args.out)


if __name__ == "__main__":
    main()
