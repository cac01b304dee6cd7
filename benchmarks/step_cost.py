"""Benchmark (not a test): does each method's step cost what its arithmetic says?

A compute-bound task, so that dispatch and bookkeeping cannot hide the arithmetic:
a width-64 ResNet on 32x32x3 inputs, batch 128, compiled (XLA on TensorFlow, jit on
JAX). Every method trains two epochs of the same synthetic data; the second epoch's
steps are timed (the first compiles and, for stale scores, fills the memory). Methods
are interleaved per seed; ratios are against the baseline of the same seed, medians
over seeds.

The theoretical ratio of each method, with a step = forward (1/3) + backward (2/3),
the backward split evenly into input and weight gradients, and FLOPs per layer
counted from the layer shapes:
- gating with a scoring pass: 1/3 (scoring forward) + r (the sub-batch step);
- gating with stale scores, or random selection: r;
- layer mode (either policy): 1/3 + 1/3 x (FLOPs share of the trained layers: their
  weight gradients) + 1/3 x (FLOPs share of the layers after the lowest trained one,
  in model order: the input gradients the backward pass still needs); below the
  lowest trained layer no gradient is computed at all. Bottom-up freezing keeps that
  layer as high as the chosen share allows;
- weight mode and pruning: 1 (they mask, they do not skip arithmetic).

Usage: python benchmarks/step_cost.py [--seeds 3] [--out benchmarks/results/step_cost.json]
"""

from __future__ import annotations

import argparse
import json
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

from greenscreen.training import (  # noqa: E402
    MagnitudePruning,
    RankedUpdates,
    SampleGating,
    with_indices,
)

RATE, BATCH, STEPS = 0.3, 128, 8
METHODS = ("baseline", "gated_scoring", "gated_stale", "gated_random", "layer_ranked",
           "layer_bottom_up", "ranked_weight", "pruned")


def resnet(width: int = 64) -> keras.Model:
    """Stem and one residual block at 32x32, then stride-2 blocks at 16x16 and 8x8."""
    x = inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(x)
    for stride in (1, 2, 2):
        shortcut = x if stride == 1 else keras.layers.Conv2D(width, 1, strides=stride)(x)
        x = keras.layers.Conv2D(width, 3, strides=stride, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(width, 3, padding="same")(x)
        x = keras.layers.ReLU()(keras.layers.Add()([x, shortcut]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def flops(model: keras.Model) -> dict[str, float]:
    """Forward multiply-adds per sample of each layer with weights, by layer path."""
    out = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            h, w, c_out = layer.output.shape[1:]
            k = layer.kernel.shape
            out[layer.kernel.path.rsplit("/", 1)[0]] = h * w * c_out * k[0] * k[1] * k[2]
        elif isinstance(layer, keras.layers.Dense):
            out[layer.kernel.path.rsplit("/", 1)[0]] = float(np.prod(layer.kernel.shape))
    return out


def data(seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH * STEPS, 32, 32, 3)).astype("float32")
    return x, rng.integers(0, 10, len(x))


def wrap(method: str, model: keras.Model):
    n = BATCH * STEPS
    return {
        "gated_scoring": lambda: SampleGating(model, RATE),
        "gated_stale": lambda: SampleGating(model, RATE, scoring="stale", num_samples=n),
        "gated_random": lambda: SampleGating(model, RATE, selector="random"),
        "layer_ranked": lambda: RankedUpdates(model, 50, 50, granularity="layer",
                                              rerank_every=1000),
        "layer_bottom_up": lambda: RankedUpdates(model, 50, 50, granularity="layer",
                                                 freeze="bottom_up"),
        "ranked_weight": lambda: RankedUpdates(model, 50, 50, granularity="weight"),
        "pruned": lambda: MagnitudePruning(model, final_sparsity=0.8, begin_step=0,
                                           end_step=2 * STEPS, frequency=4),
    }.get(method, lambda: model)()


class StepTimer(keras.callbacks.Callback):
    """Wall and CPU seconds of each step of the second epoch."""

    def on_train_begin(self, logs=None):
        self.wall, self.cpu, self.epoch = [], [], 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.t, self.c = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1:
            self.wall.append(time.perf_counter() - self.t)
            self.cpu.append(time.process_time() - self.c)


def theory(method: str, wrapped, costs: dict) -> float:
    total = sum(costs.values())
    if method == "gated_scoring":
        return 1 / 3 + RATE
    if method in ("gated_stale", "gated_random"):
        return RATE
    if method.startswith("layer_"):
        paths = [path for path, _ in wrapped.groups]
        trained = {paths[i] for i in wrapped.mode}
        above = set(paths[min(wrapped.mode) + 1:])  # input gradients still propagated
        share = sum(c for path, c in costs.items() if path in trained) / total
        carried = sum(c for path, c in costs.items() if path in above) / total
        return 1 / 3 + share / 3 + carried / 3
    return 1.0


def run(method: str, seed: int) -> dict:
    keras.utils.set_random_seed(seed)
    base = resnet()
    costs = flops(base)
    model = wrap(method, base)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  jit_compile=True)
    x, y = data(seed)
    timer = StepTimer()
    model.fit(with_indices(x) if method == "gated_stale" else x, y, batch_size=BATCH,
              epochs=2, verbose=0, shuffle=False, callbacks=[timer])
    return {"method": method, "seed": seed, "step_s": statistics.median(timer.wall),
            "cpu_s": statistics.median(timer.cpu), "theory": theory(method, model, costs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/step_cost.json")
    args = parser.parse_args()
    runs = []
    for seed in range(args.seeds):
        for method in METHODS[seed % len(METHODS):] + METHODS[:seed % len(METHODS)]:
            runs.append(run(method, seed))
            print(f"seed {seed} {method}: {runs[-1]['step_s'] * 1000:.0f} ms/step", flush=True)
    base = {r["seed"]: r for r in runs if r["method"] == "baseline"}
    table = {}
    for method in METHODS:
        mine = [r for r in runs if r["method"] == method]
        ratios = [r["step_s"] / base[r["seed"]]["step_s"] for r in mine]
        table[method] = {"ms_per_step": round(statistics.median(r["step_s"] for r in mine) * 1e3),
                         "measured_ratio": round(statistics.median(ratios), 3),
                         "theoretical_ratio": round(statistics.median(r["theory"] for r in mine),
                                                    3)}
        t = table[method]
        t["measured_over_theory"] = round(t["measured_ratio"] / t["theoretical_ratio"], 3)
    report = {"benchmark": "step_cost", "date": time.strftime("%Y-%m-%d"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "keras": keras.__version__, "backend": keras.backend.backend(),
              "command": " ".join(sys.argv), "seeds": args.seeds, "batch": BATCH,
              "rate": RATE, "table": table, "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print("| method | ms/step | measured ratio | theoretical ratio | measured / theory |")
    print("|---|---|---|---|---|")
    for method, t in table.items():
        print(f"| {method} | {t['ms_per_step']} | {t['measured_ratio']} | "
              f"{t['theoretical_ratio']} | {t['measured_over_theory']} |")


if __name__ == "__main__":
    main()
