"""Benchmark of the measurement core (not a test): sampler CPU cost and energy error.

Runs the EnergyMeter against the fake nvidia-smi in tests/bin (no GPU needed):
- the sampler's CPU cost at 10 Hz, as a percentage of one core, measured as
  this process's CPU time (the reader thread) over wall time while idle;
- the relative energy error on three synthetic traces with known integrals.

Usage: python benchmarks/meter.py [--seconds 20] [--out benchmarks/results/meter.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)

from greenscreen.meters import EnergyMeter  # noqa: E402

TRACES = {
    "constant_250W": {"base": 250.0},
    "sine_200pm100W_0.8s": {"base": 200.0, "amp": 100.0, "period": 0.8},
    "ramp_100W_plus_30Wps": {"base": 100.0, "slope": 30.0},
}


def integral(spec: dict, a: float, b: float) -> float:
    t0, period = spec.get("t0", 0.0), spec.get("period", 1.0)
    base, amp, slope = spec.get("base", 0.0), spec.get("amp", 0.0), spec.get("slope", 0.0)
    w = 2 * math.pi / period
    return (base * (b - a) - amp / w * (math.cos(w * (b - t0)) - math.cos(w * (a - t0)))
            + slope / 2 * ((b - t0) ** 2 - (a - t0) ** 2))


def configure(spec: dict) -> None:
    cfg = {"gpus": [{"uuid": "GPU-bench", "name": "fake", "power": spec}]}
    os.environ["FAKE_SMI_JSON"] = json.dumps(cfg)


def cpu_cost(seconds: float) -> dict:
    configure({"base": 200.0})
    with EnergyMeter(source="nvidia-smi", interval=0.1) as meter:
        time.sleep(1.0)  # let the process start before timing
        c0, w0 = os.times(), time.perf_counter()
        time.sleep(seconds)
        c1, w1 = os.times(), time.perf_counter()
    ours = (c1.user + c1.system - c0.user - c0.system) / (w1 - w0)
    return {"interval_s": 0.1, "seconds": round(w1 - w0, 2),
            "sampler_cpu_pct_of_one_core": round(100 * ours, 3),
            "faults": meter.health["faults"]}


def trace_error(name: str, spec: dict, windows: int, window_s: float) -> dict:
    spec = dict(spec, t0=time.time())
    configure(spec)
    errors = []
    with EnergyMeter(source="nvidia-smi", interval=0.1) as meter:
        time.sleep(1.0)
        for _ in range(windows):
            with meter.window(name) as w:
                time.sleep(window_s)
            truth = integral(spec, w.t_start, w.t_end)
            errors.append(abs(w.energy_j - truth) / truth)
    return {"trace": name, "windows": windows, "window_s": window_s,
            "max_rel_error_pct": round(100 * max(errors), 4),
            "median_rel_error_pct": round(100 * sorted(errors)[len(errors) // 2], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--window-s", type=float, default=2.0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory():
        os.environ["GREENSCREEN_NVIDIA_SMI"] = str(ROOT / "tests" / "bin" / "nvidia-smi")
        result = {
            "benchmark": "meter",
            "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"),
            "source": "measured:nvidia-smi (fake nvidia-smi replaying synthetic traces)",
            "cpu_cost": cpu_cost(args.seconds),
            "energy_error": [trace_error(n, s, args.windows, args.window_s)
                             for n, s in TRACES.items()],
        }
    emit(result, args.out)


if __name__ == "__main__":
    main()
