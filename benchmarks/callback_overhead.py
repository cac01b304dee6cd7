"""Benchmark (not a test): what SMICallback costs a real Keras fit.

Fits the same model on the same data with and without SMICallback, in
interleaved pairs (the order alternates to cancel drift), and reports the
median ratio of wall times: whole fit (includes the meter's start-up and its
wait for a first sample) and steady epochs (epochs after the first).

Without a GPU the nvidia-smi here is the fake in tests/bin: a Python script,
heavier than the real binary, and it competes for the same 2 cores. The
"estimate" source (no subprocess) isolates the cost of the callback itself.

Usage: python benchmarks/callback_overhead.py [--pairs 7] [--out FILE]
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
os.environ.setdefault("GREENSCREEN_NVIDIA_SMI", str(ROOT / "tests" / "bin" / "nvidia-smi"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)

from greenscreen import SMICallback  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t0)


class TimedSMICallback(SMICallback):
    """SMICallback whose hooks record their own wall time: the callback's direct cost."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hook_s = {"train_begin": 0.0, "train_end": 0.0, "epoch": 0.0, "epochs": 0}

    def on_train_begin(self, logs=None):
        t0 = time.perf_counter()
        super().on_train_begin(logs)
        self.hook_s["train_begin"] += time.perf_counter() - t0

    def on_train_end(self, logs=None):
        t0 = time.perf_counter()
        super().on_train_end(logs)
        self.hook_s["train_end"] += time.perf_counter() - t0

    def on_epoch_begin(self, epoch, logs=None):
        t0 = time.perf_counter()
        super().on_epoch_begin(epoch, logs)
        self.hook_s["epoch"] += time.perf_counter() - t0

    def on_epoch_end(self, epoch, logs=None):
        t0 = time.perf_counter()
        super().on_epoch_end(epoch, logs)
        self.hook_s["epoch"] += time.perf_counter() - t0
        self.hook_s["epochs"] += 1


def make_model() -> keras.Model:
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    return model


def fit_once(model, weights, x, y, epochs, callbacks) -> tuple[float, list[float]]:
    model.set_weights(weights)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    timer = EpochTimer()
    t0 = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=128, verbose=0, callbacks=callbacks + [timer])
    return time.perf_counter() - t0, timer.times


def measure(source: str, pairs: int, epochs: int, x, y) -> dict:
    model = make_model()
    weights = model.get_weights()
    fit_once(model, weights, x, y, 1, [])  # warm-up: load kernels once for both arms
    whole, steady, hooks, epoch_s = [], [], [], []
    for i in range(pairs):
        arms = ["off", "on"] if i % 2 == 0 else ["on", "off"]
        result = {}
        for arm in arms:
            cb = TimedSMICallback(log_dir=None, interval=0.1, source=source)
            result[arm] = fit_once(model, weights, x, y, epochs, [cb] if arm == "on" else [])
            if arm == "on":
                hooks.append(cb.hook_s)
        whole.append(result["on"][0] / result["off"][0])
        steady.append(sum(result["on"][1][1:]) / sum(result["off"][1][1:]))
        epoch_s.append(statistics.mean(result["off"][1][1:]))
    per_epoch_hook = statistics.median(h["epoch"] / h["epochs"] for h in hooks)
    return {
        "source": source, "pairs": pairs, "epochs": epochs, "interval_s": 0.1,
        "epoch_s_median_without": round(statistics.median(epoch_s), 3),
        "start_s_median": round(statistics.median(h["train_begin"] for h in hooks), 4),
        "stop_s_median": round(statistics.median(h["train_end"] for h in hooks), 4),
        "epoch_hooks_s_median": round(per_epoch_hook, 5),
        "epoch_hooks_pct_of_epoch": round(100 * per_epoch_hook / statistics.median(epoch_s), 4),
        "whole_fit_overhead_pct_median": round(100 * (statistics.median(whole) - 1), 3),
        "steady_epoch_overhead_pct_median": round(100 * (statistics.median(steady) - 1), 3),
        "whole_fit_ratios": [round(r, 4) for r in whole],
        "steady_epoch_ratios": [round(r, 4) for r in steady],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=40000)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.samples, 64)).astype("float32")
    y = rng.integers(0, 10, args.samples)
    results = [measure(s, args.pairs, args.epochs, x, y) for s in ("nvidia-smi", "estimate")]
    report = {
        "benchmark": "callback_overhead",
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, no GPU",
        "keras": keras.__version__, "backend": keras.backend.backend(),
        "date": time.strftime("%Y-%m-%d"),
        "results": results,
    }
    emit(report, args.out)


if __name__ == "__main__":
    main()
