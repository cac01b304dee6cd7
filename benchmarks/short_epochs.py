"""Benchmark (not a test): what SMICallback charges epochs shorter than its sampling interval.

Fits a small MLP whose epochs last a few to a few tens of milliseconds, with
`SMICallback(source="estimate")` at its default 0.1 s interval, and sets each epoch's
`energy_j` against the process's CPU time over the epoch (`time.process_time`, every
thread) x the estimate's watts per core: the ratio is what the meter charged over what
the CPU did. A counter with no reading of its own at a window's edges carries the last
timed reading forward, so an epoch that ends before the second timed reading was charged
0 J (`zero_epochs`). Energy is `estimated:cpu-time`: an estimate, on any machine.

Usage: KERAS_BACKEND=torch python benchmarks/short_epochs.py [--epochs 10] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)
from efficient_training import Clock  # noqa: E402  each epoch's process CPU seconds

from greenscreen import SMICallback  # noqa: E402
from greenscreen.meters.estimate import watts_per_core  # noqa: E402


def fit(rows: int, epochs: int, log_dir: Path) -> list[dict]:
    rng = np.random.default_rng(0)
    x = rng.random((rows, 64), dtype="float32")
    y = keras.utils.to_categorical(rng.integers(0, 10, rows), 10)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    clock = Clock()  # after SMICallback: starts after its window opens, stops after it closes
    history = model.fit(x, y, epochs=epochs, batch_size=128, verbose=0,
                        callbacks=[SMICallback(source="estimate", log_dir=str(log_dir)), clock])
    watts = watts_per_core()
    return [{"epoch": i, "epoch_s": history.history["epoch_s"][i],
             "energy_j": history.history["energy_j"][i], "cpu_j": cpu * watts,
             "ratio": history.history["energy_j"][i] / (cpu * watts) if cpu > 0 else None}
            for i, cpu in enumerate(clock.cpu)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000, help="training rows (epoch length)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    epochs = fit(args.rows, args.epochs, Path(tempfile.mkdtemp(prefix="short_epochs_")))
    later = epochs[1:]  # the first epoch traces or compiles: long enough either way
    ratios = [e["ratio"] for e in later if e["ratio"] is not None]
    emit({"benchmark": "short_epochs", "backend": keras.backend.backend(),
          "source": "estimated:cpu-time", "rows": args.rows,
          "median_epoch_s": statistics.median(e["epoch_s"] for e in later),
          "zero_epochs": sum(e["energy_j"] == 0 for e in epochs), "epochs": len(epochs),
          "median_ratio_later_epochs": statistics.median(ratios) if ratios else None,
          "per_epoch": epochs}, args.out)


if __name__ == "__main__":
    main()
