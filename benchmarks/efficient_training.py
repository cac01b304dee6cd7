"""Benchmark (not a test): do ranked updates, sample gating and pruning save anything?

Runs baseline, ranked-weight, ranked-layer, gated (PI), gated (random, same
rate) and pruned on the same data and model, for several seeds, with the same
epoch budget, methods interleaved per seed. Reports per method the median over
seeds of: final validation accuracy; wall and CPU time per epoch and their
ratio to the baseline of the same seed; the time and energy to reach the
baseline's final accuracy minus 0.5 pt (and the ratio to the baseline's own
time/energy to that accuracy); for pruning the sparsity and gzip-size ratio.

Energy comes from SMICallback's meter and is labelled with its source. On a
machine without a GPU or RAPL that is "estimated:cpu-time": an estimate, so
only the time columns are measurements there.

Tasks:
- digits: sklearn's digits upsampled to 32x32, a 4-layer CNN; steps take milliseconds,
  so fixed per-step costs are a large share of a step;
- synthetic: 32x32x3 class patterns with strong signal, a wider CNN (solved in one epoch);
- resnet: the compute-bound task of step_cost.py (a width-32 ResNet, batch 128, every
  step compiled with XLA) on class patterns with weak signal, so that the baseline needs
  several epochs; a step takes hundreds of milliseconds, so the arithmetic dominates.

On digits and synthetic every method trains the same number of epochs. On resnet a
cheaper epoch buys more epochs: the baseline trains its epochs first, and every other
method then trains until it reaches the target or has spent the baseline's whole
training time (at most 4x the baseline's epochs), whichever comes first. So "reached"
there means "reached within the baseline's time", and "val acc" is the accuracy when
the method stopped.

Usage: python benchmarks/efficient_training.py [--seeds 3] [--task digits|synthetic|resnet|both|all]
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
from typing import Callable, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from greenscreen import SMICallback  # noqa: E402
from greenscreen.training import (  # noqa: E402
    MagnitudePruning,
    RankedUpdates,
    SampleGating,
    strip_pruning,
    weights_gzip_bytes,
    with_indices,
)

METHODS = ("baseline", "ranked_weight", "ranked_layer", "layer_bottom_up", "gated_pi",
           "gated_stale", "gated_random", "pruned")


def digits(seed: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = np.kron(d.images / 16.0, np.ones((4, 4)))[..., None].astype("float32")  # 8x8 -> 32x32
    return train_test_split(x, d.target, test_size=0.25, stratify=d.target, random_state=seed)


def synthetic(seed: int, n: int = 4000, signal: float = 0.6, test_size: float = 0.25):
    """Ten classes of 32x32x3 images: class-specific smooth patterns plus noise."""
    rng = np.random.default_rng(1234)  # the task is fixed; the seed only splits it
    protos = rng.standard_normal((10, 8, 8, 3))
    protos = np.kron(protos, np.ones((4, 4, 1)))
    y = rng.integers(0, 10, n)
    x = (signal * protos[y] + rng.standard_normal((n, 32, 32, 3))).astype("float32")
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=test_size, stratify=y, random_state=seed)


def weak_patterns(seed: int):
    """The same patterns under more noise: 2 560 training images, not learnt in one epoch."""
    return synthetic(seed, n=3200, signal=0.35, test_size=0.2)


def cnn(shape, width: int) -> keras.Model:
    return keras.Sequential([
        keras.Input(shape),
        keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(4 * width, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])


def wrap(method: str, model: keras.Model, steps: int, n_train: int):
    if method == "ranked_weight":
        return RankedUpdates(model, 50, 20, granularity="weight")
    if method == "ranked_layer":
        return RankedUpdates(model, 50, 20, granularity="layer", rerank_every=20)
    if method == "gated_pi":
        return SampleGating(model, target_rate=0.3, warmup_epochs=1)
    if method == "layer_bottom_up":
        return RankedUpdates(model, 50, 20, granularity="layer", freeze="bottom_up")
    if method == "gated_stale":
        return SampleGating(model, target_rate=0.3, warmup_epochs=1, scoring="stale",
                            num_samples=n_train)
    if method == "gated_random":
        return SampleGating(model, target_rate=0.3, warmup_epochs=1, selector="random")
    if method == "pruned":
        return MagnitudePruning(model, final_sparsity=0.9, end_step=int(0.7 * steps),
                                frequency=max(1, steps // 40))
    return model


class UntilTarget(keras.callbacks.Callback):
    """Stops at the first epoch reaching `target`, or once `seconds` of epochs are spent.

    Placed after SMICallback, which puts the epoch's `epoch_s` into `logs`.
    """

    def __init__(self, target: float, seconds: float) -> None:
        super().__init__()
        self.target, self.seconds = target, seconds

    def on_train_begin(self, logs=None):
        self.spent = 0.0

    def on_epoch_end(self, epoch, logs=None):
        self.spent += logs["epoch_s"]
        if logs["val_accuracy"] >= self.target or self.spent >= self.seconds:
            self.model.stop_training = True


class Clock(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.cpu = []

    def on_epoch_begin(self, epoch, logs=None):
        self.c0 = time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.cpu.append(time.process_time() - self.c0)


def run(method, seed, split, task, baseline: dict | None = None) -> dict:
    """One training; with `baseline` (until-target tasks), within the baseline's time."""
    x_tr, x_va, y_tr, y_va = split
    keras.utils.set_random_seed(seed)
    base = task.build(x_tr.shape[1:], task.width)
    epochs, batch = task.epochs, task.batch
    steps = epochs * int(np.ceil(len(x_tr) / batch))
    extra = []
    if baseline is not None:
        extra = [UntilTarget(baseline["val_accuracy"][-1] - 0.005, sum(baseline["epoch_s"]))]
        epochs = 4 * task.epochs
    model = wrap(method, base, steps, len(x_tr))
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=task.jit_compile)
    smi, clock = SMICallback(log_dir=None, interval=0.1), Clock()
    h = model.fit(with_indices(x_tr) if method == "gated_stale" else x_tr, y_tr,
                  validation_data=(x_va, y_va), epochs=epochs, batch_size=batch,
                  verbose=0, callbacks=[smi, clock, *extra])
    out = {"method": method, "seed": seed, "val_accuracy": h.history["val_accuracy"],
           "epoch_s": h.history["epoch_s"], "cpu_s": clock.cpu,
           "energy_j": h.history["energy_j"], "source": smi.summary.get("source")}
    if method.startswith("gated"):
        out["activation_rate"] = h.history["activation_rate"]
    if method == "pruned":
        out["sparsity"] = h.history["sparsity"][-1]
        out["gzip_bytes"] = weights_gzip_bytes(strip_pruning(model))
    if method == "baseline":
        out["gzip_bytes"] = weights_gzip_bytes(model)
    return out


def to_target(run_: dict, target: float):
    """Cumulative (time, energy) at the first epoch reaching `target`, else None."""
    for i, acc in enumerate(run_["val_accuracy"]):
        if acc >= target:
            return sum(run_["epoch_s"][: i + 1]), sum(run_["energy_j"][: i + 1])
    return None


def summarise(runs: list[dict]) -> dict:
    by_seed = {}
    for r in runs:
        by_seed.setdefault(r["seed"], {})[r["method"]] = r
    table = {}
    for method in METHODS:
        rows = []
        for methods in by_seed.values():
            b, m = methods["baseline"], methods[method]
            target = b["val_accuracy"][-1] - 0.005
            mt, bt = to_target(m, target), to_target(b, target)
            rows.append({
                "acc": m["val_accuracy"][-1],
                "epochs": len(m["val_accuracy"]),
                "epoch_s": statistics.mean(m["epoch_s"]), "cpu_s": statistics.mean(m["cpu_s"]),
                # per epoch: the same as the ratio of totals when the epoch counts are equal
                "wall_ratio": statistics.mean(m["epoch_s"]) / statistics.mean(b["epoch_s"]),
                "cpu_ratio": statistics.mean(m["cpu_s"]) / statistics.mean(b["cpu_s"]),
                "reached": mt is not None,
                "time_to_target_s": mt[0] if mt else None,
                "energy_to_target_j": mt[1] if mt else None,
                "time_to_target_ratio": mt[0] / bt[0] if mt else None,
                "energy_to_target_ratio": mt[1] / bt[1] if mt else None,
                "sparsity": m.get("sparsity"),
                "gzip_ratio": (b["gzip_bytes"] / m["gzip_bytes"]) if method == "pruned" else None,
            })
        table[method] = {k: _median([r[k] for r in rows]) for k in rows[0] if k != "reached"}
        table[method]["reached_target"] = f"{sum(r['reached'] for r in rows)}/{len(rows)}"
    return table


def _median(values):
    vals = [v for v in values if v is not None]
    return round(statistics.median(vals), 4) if vals else None


def markdown(task: str, table: dict, source: str) -> str:
    head = ("| method | val acc | epochs | s/epoch | CPU s/epoch | wall ratio | CPU ratio "
            "| reached | time to target | ratio | energy to target (J, " + source + ") | ratio |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for method, r in table.items():
        lines.append(f"| {method} | {r['acc']} | {r['epochs']} | {r['epoch_s']} | {r['cpu_s']} | "
                     f"{r['wall_ratio']} | {r['cpu_ratio']} | {r['reached_target']} | "
                     f"{r['time_to_target_s']} | {r['time_to_target_ratio']} | "
                     f"{r['energy_to_target_j']} | {r['energy_to_target_ratio']} |")
    extra = table["pruned"]
    return (f"**{task}** (medians over seeds)\n\n" + head + "\n".join(lines) +
            f"\n\nPruning: final sparsity {extra['sparsity']}, gzip size ratio "
            f"{extra['gzip_ratio']}x smaller.\n")


class Task(NamedTuple):
    data: Callable
    build: Callable
    width: int
    epochs: int
    batch: int
    jit_compile: bool | str
    until_target: bool = False  # within the baseline's time, not its epoch count


def compute_bound_resnet(shape, width: int) -> keras.Model:
    from step_cost import resnet  # the per-step benchmark's model, so the two tables agree

    return resnet(width)


TASKS = {"digits": Task(digits, cnn, 16, 15, 32, "auto"),
         "synthetic": Task(synthetic, cnn, 32, 5, 64, "auto"),
         "resnet": Task(weak_patterns, compute_bound_resnet, 32, 10, 128, True, True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--task", choices=[*TASKS, "both", "all"], default="all",
                        help="'both' is digits and synthetic, as in the first tables")
    parser.add_argument("--out", default="benchmarks/results/efficient_training.json")
    args = parser.parse_args()
    tasks = {"all": list(TASKS), "both": ["digits", "synthetic"]}.get(args.task, [args.task])
    report = {"benchmark": "efficient_training", "date": time.strftime("%Y-%m-%d"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU",
              "keras": keras.__version__, "command": " ".join(sys.argv), "tasks": {}}
    for task in tasks:
        runs = []
        for seed in range(args.seeds):
            split = TASKS[task].data(seed)
            order = METHODS[seed % len(METHODS):] + METHODS[: seed % len(METHODS)]
            baseline = None
            if TASKS[task].until_target:  # the baseline sets the target and the time budget
                order = ("baseline",) + tuple(m for m in order if m != "baseline")
            for method in order:
                t0 = time.time()
                runs.append(run(method, seed, split, TASKS[task], baseline))
                if TASKS[task].until_target and method == "baseline":
                    baseline = runs[-1]
                print(f"{task} seed {seed} {method}: val_acc {runs[-1]['val_accuracy'][-1]:.4f} "
                      f"({time.time() - t0:.1f} s)", flush=True)
        table = summarise(runs)
        source = runs[0]["source"]
        report["tasks"][task] = {"epochs": TASKS[task].epochs, "batch_size": TASKS[task].batch,
                                 "width": TASKS[task].width, "seeds": args.seeds,
                                 "energy_source": source, "table": table, "runs": runs}
        print(markdown(task, table, source))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    md = "\n".join(markdown(t, report["tasks"][t]["table"], report["tasks"][t]["energy_source"])
                   for t in tasks)
    Path(args.out).with_suffix(".md").write_text(md)


if __name__ == "__main__":
    main()
