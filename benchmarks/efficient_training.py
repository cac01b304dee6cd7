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

Usage: python benchmarks/efficient_training.py [--seeds 3] [--task digits|synthetic|both]
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


def synthetic(seed: int, n: int = 4000):
    """Ten classes of 32x32x3 images: class-specific smooth patterns plus noise."""
    rng = np.random.default_rng(1234)  # the task is fixed; the seed only splits it
    protos = rng.standard_normal((10, 8, 8, 3))
    protos = np.kron(protos, np.ones((4, 4, 1)))
    y = rng.integers(0, 10, n)
    x = (0.6 * protos[y] + rng.standard_normal((n, 32, 32, 3))).astype("float32")
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=0.25, stratify=y, random_state=seed)


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


class Clock(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.cpu = []

    def on_epoch_begin(self, epoch, logs=None):
        self.c0 = time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.cpu.append(time.process_time() - self.c0)


def run(method, seed, split, width, epochs, batch) -> dict:
    x_tr, x_va, y_tr, y_va = split
    keras.utils.set_random_seed(seed)
    base = cnn(x_tr.shape[1:], width)
    steps = epochs * int(np.ceil(len(x_tr) / batch))
    model = wrap(method, base, steps, len(x_tr))
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    smi, clock = SMICallback(log_dir=None, interval=0.1), Clock()
    h = model.fit(with_indices(x_tr) if method == "gated_stale" else x_tr, y_tr,
                  validation_data=(x_va, y_va), epochs=epochs, batch_size=batch,
                  verbose=0, callbacks=[smi, clock])
    out = {"method": method, "seed": seed, "val_accuracy": h.history["val_accuracy"],
           "epoch_s": h.history["epoch_s"], "cpu_s": clock.cpu,
           "energy_j": h.history["energy_j"], "source": smi.summary.get("source")}
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
                "epoch_s": statistics.mean(m["epoch_s"]), "cpu_s": statistics.mean(m["cpu_s"]),
                "wall_ratio": sum(m["epoch_s"]) / sum(b["epoch_s"]),
                "cpu_ratio": sum(m["cpu_s"]) / sum(b["cpu_s"]),
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
    head = ("| method | val acc | s/epoch | CPU s/epoch | wall ratio | CPU ratio | reached "
            "| time to target | ratio | energy to target (J, " + source + ") | ratio |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for method, r in table.items():
        lines.append(f"| {method} | {r['acc']} | {r['epoch_s']} | {r['cpu_s']} | "
                     f"{r['wall_ratio']} | {r['cpu_ratio']} | {r['reached_target']} | "
                     f"{r['time_to_target_s']} | {r['time_to_target_ratio']} | "
                     f"{r['energy_to_target_j']} | {r['energy_to_target_ratio']} |")
    extra = table["pruned"]
    return (f"**{task}** (medians over seeds)\n\n" + head + "\n".join(lines) +
            f"\n\nPruning: final sparsity {extra['sparsity']}, gzip size ratio "
            f"{extra['gzip_ratio']}x smaller.\n")


TASKS = {"digits": (digits, 16, 15, 32), "synthetic": (synthetic, 32, 5, 64)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--task", choices=["digits", "synthetic", "both"], default="both")
    parser.add_argument("--out", default="benchmarks/results/efficient_training.json")
    args = parser.parse_args()
    tasks = list(TASKS) if args.task == "both" else [args.task]
    report = {"benchmark": "efficient_training", "date": time.strftime("%Y-%m-%d"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU",
              "keras": keras.__version__, "command": " ".join(sys.argv), "tasks": {}}
    for task in tasks:
        make, width, epochs, batch = TASKS[task]
        runs = []
        for seed in range(args.seeds):
            split = make(seed)
            order = METHODS[seed % len(METHODS):] + METHODS[: seed % len(METHODS)]
            for method in order:
                t0 = time.time()
                runs.append(run(method, seed, split, width, epochs, batch))
                print(f"{task} seed {seed} {method}: val_acc {runs[-1]['val_accuracy'][-1]:.4f} "
                      f"({time.time() - t0:.1f} s)", flush=True)
        table = summarise(runs)
        source = runs[0]["source"]
        report["tasks"][task] = {"epochs": epochs, "batch_size": batch, "seeds": args.seeds,
                                 "energy_source": source, "table": table, "runs": runs}
        print(markdown(task, table, source))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    md = "\n".join(markdown(t, report["tasks"][t]["table"], report["tasks"][t]["energy_source"])
                   for t in tasks)
    Path(args.out).with_suffix(".md").write_text(md)


if __name__ == "__main__":
    main()
