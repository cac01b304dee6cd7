"""Benchmark (not a test): when the load's steps keep time with the sampler (issue 34).

`energy_err_j` treats each step between two power samples as happening at an unknown,
independent moment in its interval. A load that switches on and off with a period locked
to the sampling interval breaks that: every step falls at a related moment, and the
errors either cancel (steps a whole number of samples apart) or add up (steps half a
sample later each time: the sampled duty cycle is off, which is aliasing, and nothing
in the samples can show it). This measures how often that happens to a 200 +/- 100 W
square wave whose period is drawn at random from 2 to 6 s, sampled at 0.1, 0.2 and 0.5 s
with 2 ms of timestamp jitter (nvidia-smi prints milliseconds), and the worst case: a
2.5 s period, whose 1.25 s half-period is 12.5, 6.25 and 2.5 samples.

Pure arithmetic on the series code: no stream, no clock, so the figures do not depend
on the machine's load. Per (interval, period): 40 s of samples and 60 windows of 1 to
10 s, each window's actual error (DeviceSeries against the exact integral) against its
half-width (series.power_error with nvidia-smi's reading facts).

Usage: python benchmarks/interval_aliasing.py [--periods 200] [--seed 34] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _report import emit  # noqa: E402

from greenscreen.meters.base import Sample  # noqa: E402
from greenscreen.meters.series import DeviceSeries, ReadingFacts, power_error  # noqa: E402

INTERVALS = (0.1, 0.2, 0.5)
FACTS = ReadingFacts(power_resolution_w=0.01, time_resolution_s=0.001)  # nvidia-smi's
BASE, AMP, SECONDS, WINDOWS, JITTER_S = 200.0, 100.0, 40.0, 60, 0.002


def square(t: np.ndarray, period: float) -> np.ndarray:
    return BASE + AMP * np.where((t / period) % 1.0 < 0.5, 1.0, -1.0)


def exact(a: float, b: float, period: float) -> float:
    def triangle(t: float) -> float:  # an antiderivative of the unit square wave
        u = (t / period) % 1.0
        return period * (u if u < 0.5 else 1.0 - u)
    return BASE * (b - a) + AMP * (triangle(b) - triangle(a))


def one(period: float, h: float, rng: np.random.Generator) -> dict:
    """Coverage and width over WINDOWS windows of one recording."""
    t = np.arange(0.0, SECONDS, h) + rng.uniform(0, h)
    t = np.round(np.sort(t + rng.normal(0, JITTER_S, len(t))), 3)  # printed in ms
    p = square(t, period)
    series = DeviceSeries(Sample(float(t[0]), 0, "u", "n"))
    for ti, pi in zip(t, p):
        series.append(Sample(float(ti), 0, "u", "n", power_w=float(pi)))
    errors, widths = [], []
    for _ in range(WINDOWS):
        length = rng.uniform(1.0, 10.0)
        a = rng.uniform(t[3], t[-4] - length)
        errors.append(abs(series.energy_at(a + length) - series.energy_at(a)
                          - exact(a, a + length, period)))
        widths.append(power_error(t, p, a, a + length, FACTS))
    errors, widths = np.array(errors), np.array(widths)
    return {"period_s": period, "interval_s": h, "coverage": float(np.mean(errors <= widths)),
            "width_over_error": float(np.median(widths) / max(np.median(errors), 1e-12))}


def summarise(rows: list[dict]) -> dict:
    coverage = np.array([r["coverage"] for r in rows])
    width = np.array([r["width_over_error"] for r in rows])
    worst = min(rows, key=lambda r: r["coverage"])
    return {"periods": len(rows), "median_coverage": float(np.median(coverage)),
            "share_periods_covered_95": float(np.mean(coverage >= 0.95)),
            "pooled_coverage": float(np.mean(coverage)),
            "min_coverage": worst["coverage"], "worst_period_s": worst["period_s"],
            "median_width_over_error": float(np.median(width))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--periods", type=int, default=200)
    parser.add_argument("--seed", type=int, default=34)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    periods = rng.uniform(2.0, 6.0, args.periods)
    report = {"benchmark": "interval_aliasing", "seed": args.seed, "signal":
              f"{BASE:g} +/- {AMP:g} W square, period uniform in [2, 6] s",
              "seconds": SECONDS, "windows": WINDOWS, "jitter_s": JITTER_S, "random": {},
              "aliased_2.5s": {}}
    for h in INTERVALS:
        rows = [one(float(p), h, rng) for p in periods]
        report["random"][str(h)] = summarise(rows)
        locked = [one(2.5, h, rng) for _ in range(20)]  # 20 recordings, random phase
        report["aliased_2.5s"][str(h)] = summarise(locked)
        print(f"{h} s: random periods {report['random'][str(h)]}\n"
              f"      2.5 s period  {report['aliased_2.5s'][str(h)]}", flush=True)
    emit(report, args.out)


if __name__ == "__main__":
    main()
