"""The real-GPU check: every power source against the NVML energy counter, over the same windows.

    ./greenscreen.sh gpu-check [--out FILE] [--scale 1.0] [--no-fit]

On a machine with an NVIDIA GPU it measures, with all sources running at once:
- the windows: idle 10 s; a steady matmul load 20 s; on/off square waves with 2 s
  and 0.5 s periods, 20 s each; a 0.3 s burst (measured with a 2 s idle tail);
- the sources: the nvidia-smi stream as greenscreen uses it (`power.draw`), the
  same with `power.draw.instant`, NVML power polled at 10 Hz, and the NVML
  total-energy counter as the reference;
- per window and source: energy, error against the counter, sample coverage; per
  source: the sampler's CPU cost; and nvidia-smi's start-up time;
- then a real Keras `fit` on the JAX backend (a small CNN on the embedded digits,
  sized so that an epoch lasts a few seconds on a GPU) with one `SMICallback` per
  source, compared per epoch with the counter over the same epoch windows.

It writes a JSON file and prints a table. A source or the counter that cannot
run is reported with the reason, never dropped. `--scale` shortens every window
(the test runs it against the fake nvidia-smi with --scale 0.05).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # this check is the JAX path on a real GPU

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_loads import Counter, MatmulLoad, schedule  # noqa: E402

from greenscreen.meters import EnergyMeter, SourceUnavailable  # noqa: E402
from greenscreen.meters.nvidia_smi import NvidiaSmiSource, resolve_executable  # noqa: E402
from greenscreen.meters.nvml import NvmlSource  # noqa: E402

SOURCES = {
    "nvidia-smi power.draw": lambda: NvidiaSmiSource(0.1),
    "nvidia-smi power.draw.instant": lambda: NvidiaSmiSource(0.1,
                                                             power_field="power.draw.instant"),
    "nvml power 10 Hz": lambda: NvmlSource(0.1, counter=False),
}


def nvidia_smi_facts() -> dict:
    """Device name, driver, and the wall time of one nvidia-smi query (its start-up cost)."""
    exe = resolve_executable()
    if exe is None:
        return {"reason": "nvidia-smi not found"}
    facts = {"executable": exe}
    start = time.perf_counter()
    out = subprocess.run([exe, "--query-gpu=power.draw", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=60)
    facts["startup_s"] = time.perf_counter() - start
    info = subprocess.run([exe, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                          capture_output=True, text=True, timeout=60)
    facts["device"] = (info.stdout.strip() or info.stderr.strip() or out.stderr.strip())
    return facts


def start_meters() -> tuple[dict, dict, dict]:
    """(meters, their sources, reasons): every source of SOURCES that can run here in its
    own meter, and why each other one cannot."""
    meters, sources, reasons = {}, {}, {}
    for name, make in SOURCES.items():
        source = make()
        reason = source.unavailable_reason()
        if reason:
            reasons[name] = reason
            continue
        try:
            meters[name], sources[name] = EnergyMeter(source=source).start(), source
        except SourceUnavailable as exc:
            reasons[name] = str(exc)
    for meter in meters.values():
        meter.wait_for_sample(timeout=30)
    return meters, sources, reasons


def measure_windows(meters: dict, counter: Counter, scale: float, load) -> list[dict]:
    rows = []
    for name, seconds, pattern, tail in schedule(scale):
        time.sleep(0.5 * scale + 0.2)  # settle between windows
        t0, c0 = time.time(), counter.read()
        windows = {src: m.window(name, t_start=t0) for src, m in meters.items()}
        load.run(pattern, seconds)
        time.sleep(tail)
        t1, c1 = time.time(), counter.read()
        time.sleep(1.0)  # let samples past the window's end arrive before closing it
        reference = c1 - c0 if counter.available else math.nan
        row = {"window": name, "duration_s": t1 - t0, "counter_j": reference, "sources": {}}
        for src, w in windows.items():
            w.close(t_end=t1)
            row["sources"][src] = {"energy_j": w.energy_j, "coverage": w.coverage,
                                   "error_pct": 100 * (w.energy_j - reference) / reference
                                   if reference and reference > 0 else math.nan,
                                   "reason": w.reason}
        rows.append(row)
    return rows


def fit_check(counter: Counter, scale: float, epochs: int) -> dict:
    """A Keras fit on JAX with one SMICallback per source, per epoch against the counter."""
    import keras

    from greenscreen import SMICallback

    class CounterLog(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.epochs = []

        def on_epoch_begin(self, epoch, logs=None):
            self.c0 = counter.read()

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append(counter.read() - self.c0 if counter.available else math.nan)

    x, y = digits(repeat=max(1, round(30 * scale)))
    keras.utils.set_random_seed(0)
    width = 128 if scale >= 0.5 else 8
    model = keras.Sequential([
        keras.Input(x.shape[1:]),
        keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    ref, tmp = CounterLog(), Path(tempfile.mkdtemp(prefix="gpu-check-"))
    callbacks, logs = [ref], {}
    for name, make in SOURCES.items():
        source = make()
        if source.unavailable_reason() is None:
            logs[name] = tmp / name.replace(" ", "_")
            callbacks.append(SMICallback(log_dir=logs[name], source=source))
    start = time.time()
    model.fit(x, y, epochs=epochs, batch_size=256, verbose=0, callbacks=callbacks)
    per_source = {name: epoch_energies(folder / "logs.csv") for name, folder in logs.items()}
    return {"backend": keras.backend.backend(), "samples": int(len(x)), "epochs": epochs,
            "fit_s": time.time() - start, "counter_j": ref.epochs,
            "sources": {name: {"energy_j": e, "error_pct": [
                100 * (a - b) / b if b and b > 0 else math.nan for a, b in zip(e, ref.epochs)]}
                for name, e in per_source.items()}}


def digits(repeat: int):
    """The embedded digits at 32x32, repeated so an epoch lasts long enough to measure."""
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.kron(d.images / 16.0, np.ones((4, 4)))[..., None].astype("float32")  # 8x8 -> 32x32
    return np.tile(x, (repeat, 1, 1, 1)), np.tile(d.target, repeat)


def epoch_energies(path: Path) -> list[float]:
    import csv

    with open(path, newline="") as fh:
        return [float(row["energy_j"]) for row in csv.DictReader(fh)]


def table(result: dict) -> str:
    lines = [f"{'window':<12} {'counter J':>10}  " + "  ".join(
        f"{name[:26]:>26}" for name in SOURCES)]
    for row in result["windows"]:
        cells = []
        for name in SOURCES:
            cell = row["sources"].get(name)
            cells.append(f"{'unavailable':>26}" if cell is None else
                         f"{cell['energy_j']:>10.1f} J {cell['error_pct']:>+7.2f} % "
                         f"{cell['coverage']:>4.0%}")
        lines.append(f"{row['window']:<12} {row['counter_j']:>10.1f}  " + "  ".join(cells))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="benchmarks/results/gpu_check.json")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiplies every window's length (the test uses 0.05)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--no-fit", action="store_true", help="leave out the Keras fit part")
    args = parser.parse_args(argv)
    if not args.scale > 0:
        parser.error(f"--scale={args.scale} is not valid; allowed: a number > 0")

    counter = Counter()
    result = {"nvidia_smi": nvidia_smi_facts(), "counter": counter.describe()}
    meters, sources, result["unavailable"] = start_meters()
    load = MatmulLoad()
    result["load"] = load.describe()
    before, t0 = {name: s.cpu_seconds() for name, s in sources.items()}, time.time()
    result["windows"] = measure_windows(meters, counter, args.scale, load)
    wall = time.time() - t0  # CPU seconds per wall second of each sampler, in %
    result["sampler_cpu_pct"] = {name: 100 * (s.cpu_seconds() - before[name]) / wall
                                 for name, s in sources.items()}
    result["health"] = {src: m.health for src, m in meters.items()}
    for meter in meters.values():
        meter.stop()
    if not args.no_fit:
        result["fit"] = fit_check(counter, args.scale, args.epochs)
    counter.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    print(table(result))
    print(json.dumps({k: result[k] for k in ("nvidia_smi", "counter", "unavailable",
                                             "sampler_cpu_pct")}, indent=1, default=str))
    if "fit" in result:
        print("fit (per epoch, J):", json.dumps(result["fit"], default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
