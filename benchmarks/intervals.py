"""Benchmark of the interval on every window's joules (issue 34; not a test).

Plays known power traces through the tests' fakes, measures with `EnergyMeter` at 0.1,
0.2 and 0.5 s, and checks `energy_err_j` of random windows of 1 to 10 s against the exact
integral: coverage (the share of windows whose actual error is inside the interval) and
width (median half-width over median actual error), per source, signal and interval.

- nvidia-smi (tests/bin/nvidia-smi): smooth (200 +/- 60 W sine, 4 s period) and stepped
  (200 +/- 100 W square, 3.14 s period; and 3 s, locked to the sampler's phase) traces;
  the stream prints a garbage line every 7th line, [N/A] power every 11th and dies every
  150 lines (restarted by the source);
- RAPL (tests/powercap.py): counters of package-0 (40 +/- 15 W sine, 4 s), its DRAM
  (6 +/- 2 W, 3 s, wrapping every 1.5 s), package-1 and its DRAM (constant) updated every
  millisecond or so by a writer process.

Usage: python benchmarks/intervals.py [--seconds 40] [--windows 80] [--seed 34]
       [--out benchmarks/results/intervals.json]
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
import powercap  # noqa: E402  (tests/ is on sys.path)
from _report import emit  # noqa: E402

from greenscreen.meters import EnergyMeter  # noqa: E402

FAKE = ROOT / "tests" / "bin" / "nvidia-smi"
INTERVALS = (0.1, 0.2, 0.5)
GPUS = {"smooth": {"base": 200.0, "amp": 60.0, "period": 4.0},
        "stepped": {"base": 200.0, "amp": 100.0, "period": 3.14, "shape": "square"},
        # Steps every 1.5 s: a whole number of 0.1, 0.2 and 0.5 s samples, so the sampler
        # sees every step at the same phase and their errors add up instead of averaging.
        "stepped phase-locked": {"base": 200.0, "amp": 100.0, "period": 3.0,
                                  "shape": "square"}}
FAULTS = {"garbage_every": 7, "na_every": 11, "die_after": 150}
ZONES = {"intel-rapl:0": ("package-0 smooth", {"base": 40.0, "amp": 15.0, "period": 4.0}),
         "intel-rapl:0:2": ("dram-0 smooth, wrapping", {"base": 6.0, "amp": 2.0, "period": 3.0}),
         "intel-rapl:1": ("package-1 constant", {"base": 30.0}),
         "intel-rapl:1:0": ("dram-1 constant", {"base": 5.0})}


def fake_module():
    """The fake nvidia-smi as a module: its `energy` is the exact integral of its traces."""
    loader = importlib.machinery.SourceFileLoader("fake_smi", str(FAKE))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("fake_smi", loader))
    loader.exec_module(module)
    return module


def windows(rng: random.Random, start: float, end: float, n: int) -> list[tuple[float, float]]:
    """n windows of 1 to 10 s inside [start, end]."""
    out = []
    for _ in range(n):
        length = rng.uniform(1.0, min(10.0, end - start - 0.1))
        a = rng.uniform(start, end - length)
        out.append((a, a + length))
    return out


def check(meters: dict, truth, rng: random.Random, n: int, key) -> list[dict]:
    """Each meter's windows: (label, actual error, half-width) per device."""
    rows = []
    for interval, meter in meters.items():
        start = max(s.t[0] for s in meter._series.values()) + 0.5  # noqa: SLF001
        for a, b in windows(rng, start, time.time() - 0.6, n):
            w = meter.window("check", t_start=a).close(t_end=b)
            for d in w.devices:
                label = key(d)
                if label is not None:
                    rows.append({"signal": label, "interval_s": interval,
                                 "error_j": abs(d.energy_j - truth(label, a, b)),
                                 "err_j": d.energy_err_j, "energy_j": d.energy_j})
    return rows


def run_smi(seconds: float, n: int, rng: random.Random, folder: Path) -> list[dict]:
    fake = fake_module()
    t0 = time.time()
    gpus = [{"uuid": f"GPU-{i}", "name": name, "power": {**spec, "t0": t0}}
            for i, (name, spec) in enumerate(GPUS.items())]
    (folder / "smi.json").write_text(json.dumps({"gpus": gpus, **FAULTS}))
    os.environ.update(GREENSCREEN_NVIDIA_SMI=str(FAKE), FAKE_SMI_CONFIG=str(folder / "smi.json"))
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    meters = {h: EnergyMeter("nvidia-smi", interval=h, attribution="device").start()
              for h in INTERVALS}
    try:
        time.sleep(seconds)
        specs = {g["name"]: g["power"] for g in gpus}
        return check(meters, lambda s, a, b: fake.energy(specs[s], a, b), rng, n,
                     lambda d: d.name)
    finally:
        for meter in meters.values():
            meter.stop()


def run_rapl(seconds: float, n: int, rng: random.Random, folder: Path) -> list[dict]:
    t0 = time.time()
    spec = powercap.zones(t0, **{z: {"power": {**p, "t0": t0}} for z, (_, p) in ZONES.items()})
    with powercap.running(folder, spec) as root:
        os.environ["GREENSCREEN_POWERCAP_ROOT"] = str(root)
        meters = {h: EnergyMeter("rapl", interval=h, attribution="device").start()
                  for h in INTERVALS}
        try:
            time.sleep(seconds)
            labels = {f"rapl:{z}": label for z, (label, _) in ZONES.items()}
            ids = {label: z for z, (label, _) in ZONES.items()}
            return check(meters, lambda s, a, b: powercap.truth(spec, (ids[s],), a, b), rng, n,
                         lambda d: labels.get(d.uuid))
        finally:
            for meter in meters.values():
                meter.stop()


def table(rows: list[dict]) -> list[dict]:
    """Coverage and width per (source, signal, interval), and per (source, signal)."""
    out = []
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["source"], r["signal"], r["interval_s"]), []).append(r)
        groups.setdefault((r["source"], r["signal"], "all"), []).append(r)
    for (source, signal, interval), rs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        error = np.array([r["error_j"] for r in rs])
        err = np.array([r["err_j"] for r in rs])
        energy = np.array([r["energy_j"] for r in rs])
        out.append({"source": source, "signal": signal, "interval_s": interval,
                    "windows": len(rs), "coverage": float(np.mean(error <= err)),
                    "median_err_j": float(np.median(err)),
                    "median_error_j": float(np.median(error)),
                    "width_over_error": float(np.median(err) / max(np.median(error), 1e-12)),
                    "median_err_pct": float(np.median(err / energy) * 100)})
    return out


def markdown(summary: list[dict]) -> str:
    lines = ["| source | signal | interval | windows | coverage | median half-width | "
             "median actual error | width / error |", "|---|---|---|---|---|---|---|---|"]
    for s in summary:
        interval = s["interval_s"] if s["interval_s"] == "all" else f"{s['interval_s']} s"
        lines.append(f"| {s['source']} | {s['signal']} | {interval} | {s['windows']} | "
                     f"{s['coverage']:.1%} | {s['median_err_j']:.3g} J "
                     f"({s['median_err_pct']:.2g} %) | {s['median_error_j']:.3g} J | "
                     f"{s['width_over_error']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--windows", type=int, default=80, help="per meter")
    parser.add_argument("--seed", type=int, default=34)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [{**r, "source": "nvidia-smi"}
                for r in run_smi(args.seconds, args.windows, rng, Path(tmp))]
        rows += [{**r, "source": "rapl"}
                 for r in run_rapl(args.seconds, args.windows, rng, Path(tmp))]
    summary = table(rows)
    print(markdown(summary))
    emit({"seconds": args.seconds, "windows_per_meter": args.windows, "seed": args.seed,
          "summary": summary}, args.out)


if __name__ == "__main__":
    main()
