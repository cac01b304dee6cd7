"""python -m greenscreen.cascade run|threshold|heterogeneity [options]

Mirrors the original cascade scripts' options. Models come from saved `.keras`
files (--model1 small, --model2 big) or, when none are given, a small and a big
model are trained here on the data. Thresholds are chosen on a validation
split; accuracy and cost are reported on the test split. Nothing here can
power off or reboot the machine: --end is none or alarm (a terminal bell).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .. import validation
from ._data import ModelRefused, load_model
from .cascade import Cascade
from .evaluation import add_duplicates, heterogeneity_matrix
from .memory import PredictionMemory
from .scores import SCORES
from .threshold import find_threshold, measure


def load_data(filepath: str | None, seed: int = 0):
    """(x_train, y_train, x_val, y_val, x_test, y_test): CIFAR-10 pickle dir, image folder,
    or the embedded digits when no path is given."""
    from sklearn.model_selection import train_test_split

    if filepath is None:
        from sklearn.datasets import load_digits

        d = load_digits()
        x, y = (d.images[..., None] / 16.0).astype("float32"), d.target
    else:
        from ._data import load_folder

        x, y = load_folder(Path(filepath))
    x_tr, x_rest, y_tr, y_rest = train_test_split(x, y, test_size=0.4, stratify=y,
                                                  random_state=seed)
    x_va, x_te, y_va, y_te = train_test_split(x_rest, y_rest, test_size=0.5, stratify=y_rest,
                                              random_state=seed)
    return x_tr, y_tr, x_va, y_va, x_te, y_te


def train_pair(x, y, num_classes: int, epochs: int = 15):
    """A small dense model and a bigger CNN, trained here (no pretrained weights exist offline)."""
    import keras

    small = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Flatten(),
                              keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(num_classes, activation="softmax")])
    big = keras.Sequential([keras.Input(x.shape[1:]),
                            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
                            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
                            keras.layers.MaxPooling2D(),
                            keras.layers.Conv2D(128, 3, padding="same", activation="relu"),
                            keras.layers.Flatten(), keras.layers.Dense(256, activation="relu"),
                            keras.layers.Dense(num_classes, activation="softmax")])
    for model in (small, big):
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return small, big


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m greenscreen.cascade", description=__doc__)
    p.add_argument("command", choices=["run", "threshold", "heterogeneity"])
    # The original scripts' short flags are accepted as aliases.
    p.add_argument("-m1", "--model1", help="small model (.keras)")
    p.add_argument("-m2", "--model2", help="big model (.keras); without it: single-model "
                   "baseline")
    p.add_argument("--models", nargs="+", help="heterogeneity: any number of .keras models")
    p.add_argument("-f", "--filepath", help="CIFAR-10 pickle folder or image folder "
                   "(default: digits)")
    p.add_argument("-s", "--scorefn", default="difference", choices=list(SCORES))
    p.add_argument("-t", "--threshold", type=float, default=None, help="default: chosen on val")
    p.add_argument("-p", "--postcheck", action="store_true")
    p.add_argument("-m", "--memory", choices=["dhash", "invariants"], default=None)
    p.add_argument("-d", "--duplicates", type=float, default=0.0)
    p.add_argument("-r", "--rotations", type=float, default=0.0)
    p.add_argument("-n", "--n_threshold_values", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=15, help="when training the models here")
    p.add_argument("-e", "--end", choices=["none", "alarm"], default="none")
    p.add_argument("--out", help="run: also write the result (costs included) to this JSON")
    args = p.parse_args(argv)
    try:
        for name in ("threshold", "duplicates", "rotations"):
            value = getattr(args, name)
            if value is not None:
                validation.check_number(name, value, low=0, high=1)
    except ValueError as exc:
        p.error(str(exc))
    try:
        result = run(args)
    except ModelRefused as exc:
        print(f"greenscreen.cascade: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    if args.out:
        from ..fileio import atomic_write_json

        atomic_write_json(args.out, result)
    if args.end == "alarm":
        print("\a", end="", flush=True)
    return 0


def run(args) -> dict:
    x_tr, y_tr, x_va, y_va, x_te, y_te = load_data(args.filepath)
    if args.command == "heterogeneity" and args.models:
        models = {Path(m).stem: load_model(m) for m in args.models}
        return heterogeneity_matrix(models, x_te, y_te).to_dict()
    if args.model1:
        small = load_model(args.model1)
        big = load_model(args.model2) if args.model2 else None
    else:
        small, big = train_pair(x_tr, y_tr, int(y_tr.max()) + 1, args.epochs)
    x_te, y_te = add_duplicates(x_te, y_te, args.duplicates, args.rotations)
    if args.command == "heterogeneity":
        models = {"small": small} | ({"big": big} if big is not None else {})
        return heterogeneity_matrix(models, x_te, y_te).to_dict()
    if big is None:  # single-model baseline
        probs, cost = measure(small, x_te)
        return {"accuracy": float(np.mean(probs.argmax(1) == y_te)), "cost": cost.__dict__}
    search = find_threshold(small, big, x_va, y_va, args.scorefn, args.n_threshold_values)
    if args.command == "threshold":
        return search.as_dict() | {"thresholds": None, "accuracy": None, "escalation_rate": None,
                                   "seconds_per_prediction": None, "joules_per_prediction": None}
    threshold = args.threshold if args.threshold is not None else (
        search.cheapest_matching_threshold or search.best_threshold)
    memory = PredictionMemory(args.memory) if args.memory else None
    cascade = Cascade(small, big, args.scorefn, threshold, args.postcheck, memory)
    out, costs = measured_costs(small, big, cascade, x_te, y_te, args.scorefn)
    return {"threshold": threshold, "chosen_on": "validation split",
            "accuracy": float(np.mean(out.predictions == y_te)),
            "escalation_rate": out.escalation_rate,
            "memory_hit_rate": memory.hit_rate if memory else None,
            "small_accuracy_val": search.small_accuracy, "big_accuracy_val": search.big_accuracy,
            "cost_per_1000_predictions": costs}


def measured_costs(small, big, cascade, x, y, scorefn: str) -> tuple:
    """The cascade's output on the test split, and the time and energy per 1000 predictions
    of small alone, big alone and the cascade, measured on that split, with the source."""
    from ..meters import EnergyMeter

    meter = EnergyMeter(interval=0.05).start()
    meter.wait_for_sample(5.0)
    try:
        costs = {name: _per_1000(measure(model, x, meter=meter)[1])
                 for name, model in (("small", small), ("big", big))}
        labels = y if scorefn == "oracle" else None
        # Warm-up (tracing) by a twin without the memory, which must not see x early.
        twin = Cascade(cascade.small, cascade.big, cascade.score, cascade.threshold,
                       cascade.postcheck)
        twin.predict(x[:256], y=None if labels is None else labels[:256])
        t0 = time.perf_counter()
        with meter.window("cascade") as w:
            out = cascade.predict(x, y=labels)
        seconds = time.perf_counter() - t0
    finally:
        meter.stop()
    costs["cascade"] = {"seconds": 1000 * seconds / len(x),
                        "joules": 1000 * w.energy_j / len(x), "source": w.source}
    return out, costs


def _per_1000(cost) -> dict:
    return {"seconds": 1000 * cost.seconds_per_prediction,
            "joules": 1000 * cost.joules_per_prediction, "source": cost.source}


if __name__ == "__main__":
    sys.exit(main())
