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
from ..datasets import DatasetError
from ._data import BadModelFile, check_data_path, check_model_path, load_model
from .cascade import MEMORY, Cascade
from .evaluation import add_duplicates, heterogeneity_matrix, memory_verdict
from .memory import PredictionMemory
from .scores import SCORES
from .threshold import find_threshold, measure, measure_memory, warm_up


def load_data(filepath: str | None, seed: int = 0):
    """(x_train, y_train, x_val, y_val, x_test, y_test): CIFAR-10 pickle dir, image folder,
    or the embedded digits when no path is given. Needs scikit-learn (its stratified
    split and the digits), which the library alone does not install.

    Raises:
        MissingScikitLearn: scikit-learn is not installed.
    """
    try:
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise MissingScikitLearn("python -m greenscreen.cascade needs scikit-learn for its "
                                 "data splits: pip install scikit-learn (or greenscreen's "
                                 "[pipeline] extra, which has it)") from None

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


class MissingScikitLearn(ImportError):
    """The command's data splits need scikit-learn; the message says how to install it."""


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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m greenscreen.cascade", description=__doc__)
    p.add_argument("command", choices=["run", "threshold", "heterogeneity"],
                   help="run: the cascade on the test split, with its cost; threshold: the "
                   "threshold search on the validation split; heterogeneity: how often one "
                   "model is wrong where another is right")
    # The original scripts' short flags are accepted as aliases.
    p.add_argument("-m1", "--model1", help="small model (.keras); without it, both models "
                   "are trained here")
    p.add_argument("-m2", "--model2", help="big model (.keras), with --model1; without it: "
                   "--model1 alone, as a single-model baseline")
    p.add_argument("--models", nargs="+", help="heterogeneity: any number of .keras models")
    p.add_argument("-f", "--filepath", help="CIFAR-10 pickle folder or image folder "
                   "(default: digits)")
    p.add_argument("-s", "--scorefn", default="difference", choices=list(SCORES),
                   help="the small model's confidence; below --threshold, a sample goes to "
                   "the big model (default: difference)")
    p.add_argument("-t", "--threshold", type=float, default=None,
                   help="escalate when the score is below this, in [0, 1] (default: chosen "
                   "on the validation split)")
    p.add_argument("-p", "--postcheck", action="store_true",
                   help="keep the big model's answer only if it is surer than the small one")
    p.add_argument("-m", "--memory", choices=["dhash", "invariants"], default=None,
                   help="answer repeated inputs from memory: dhash matches copies, "
                   "invariants also rotated or mirrored ones (default: no memory)")
    p.add_argument("-d", "--duplicates", type=float, default=0.0,
                   help="fraction of the test samples added again as copies, in [0, 1] "
                   "(default: 0)")
    p.add_argument("-r", "--rotations", type=float, default=0.0,
                   help="fraction of those copies rotated or mirrored, in [0, 1] (default: 0)")
    p.add_argument("-n", "--n_threshold_values", type=int, default=2000,
                   help="number of thresholds tried in [0, 1] (default: 2000)")
    p.add_argument("--epochs", type=int, default=15,
                   help="epochs of training for each model trained here (default: 15)")
    p.add_argument("-e", "--end", choices=["none", "alarm"], default="none",
                   help="at the end: nothing, or a terminal bell (default: none)")
    p.add_argument("--out", help="also write the printed JSON result to this file")
    return p


def check_args(p: argparse.ArgumentParser, args) -> None:
    """Refuses, as argparse does (usage, one line, exit status 2), values that would fail
    late or be ignored."""
    try:
        for name in ("threshold", "duplicates", "rotations"):
            value = getattr(args, name)
            if value is not None:
                validation.check_number(name, value, low=0, high=1)
        if args.model2 and not args.model1:
            raise ValueError("--model2 needs --model1 (the small model); without --model1 "
                             "both models are trained here")
        if args.models and (args.command != "heterogeneity" or args.model1 or args.model2):
            raise ValueError("--models is for heterogeneity only, without --model1/--model2")
        paths = [("--model1", args.model1), ("--model2", args.model2)]
        for flag, path in paths + [("--models", m) for m in args.models or []]:
            if path is not None:
                check_model_path(path, flag)
        if args.filepath is not None:
            check_data_path(args.filepath)
    except ValueError as exc:
        p.error(str(exc))


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    check_args(p, args)
    try:
        result = run(args)
    except (BadModelFile, DatasetError, MissingScikitLearn) as exc:  # one line, exit 2
        print(f"greenscreen.cascade: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    if not result.get("memory", {}).get("pays", True):
        print(f"greenscreen.cascade: {result['memory']['note']}", file=sys.stderr)
    if args.out:
        from ..fileio import atomic_write_json

        atomic_write_json(args.out, result)
    if args.end == "alarm":
        print("\a", end="", flush=True)
    return 0


def run(args) -> dict:
    x_tr, y_tr, x_va, y_va, x_te, y_te = load_data(args.filepath)
    if args.command == "heterogeneity" and args.models:
        models = {Path(m).stem: load_model(m, "--models") for m in args.models}
        return heterogeneity_matrix(models, x_te, y_te).to_dict()
    if args.model1:
        small = load_model(args.model1, "--model1")
        big = load_model(args.model2, "--model2") if args.model2 else None
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
        return search.summary()
    threshold = args.threshold if args.threshold is not None else (
        search.cheapest_matching_threshold or search.best_threshold)
    memory = PredictionMemory(args.memory) if args.memory else None
    cascade = Cascade(small, big, args.scorefn, threshold, args.postcheck, memory)
    out, costs = measured_costs(small, big, cascade, x_te, y_te, args.scorefn)
    result = {"threshold": threshold, "chosen_on": "validation split",
              "accuracy": float(np.mean(out.predictions == y_te)),
              "escalation_rate": out.escalation_rate,
              "memory_hit_rate": memory.hit_rate if memory else None,
              "small_accuracy_val": search.small_accuracy,
              "big_accuracy_val": search.big_accuracy, "cost_per_1000_predictions": costs}
    if memory is not None:
        by_models = out.routing != MEMORY
        rate = float(out.escalated[by_models].mean()) if by_models.any() else 0.0
        result["memory"] = {"kind": memory.kind, "hit_rate": memory.hit_rate} | (
            memory_verdict(costs, memory.hit_rate, rate))
    return result


def measured_costs(small, big, cascade, x, y, scorefn: str) -> tuple:
    """The cascade's output on the test split, and the time and energy per 1000 predictions
    of small alone, big alone, the cascade and (if it has one) its memory alone, measured on
    that split, with the source."""
    from ..meters import EnergyMeter

    meter = EnergyMeter(interval=0.05).start()
    meter.wait_for_sample(5.0)
    try:
        costs = {name: _per_1000(measure(model, x, meter=meter)[1])
                 for name, model in (("small", small), ("big", big))}
        labels = y if scorefn == "oracle" else None
        out, costs["cascade"] = _cascade_cost(cascade, x, labels, meter)
        if cascade.memory is not None:  # the memory's own work, alone, in a fresh memory
            costs["memory"] = _per_1000(measure_memory(cascade.memory.kind, x, meter=meter,
                                                       capacity=cascade.memory.capacity))
    finally:
        meter.stop()
    return out, costs


def _cascade_cost(cascade, x, labels, meter) -> tuple:
    # Warm-up: every padded batch shape either model can be given (tracing, compiling);
    # the memory must not see x early.
    for model in (cascade.small, cascade.big):
        warm_up(model, x)
    if cascade.memory is not None:
        cascade.memory.keys(x[:1])  # warm-up of the key layout; stores nothing
    t0 = time.perf_counter()
    with meter.window("cascade") as w:
        out = cascade.predict(x, y=labels)
    seconds = time.perf_counter() - t0
    return out, {"seconds": 1000 * seconds / len(x), "joules": 1000 * w.energy_j / len(x),
                 "source": w.source}


def _per_1000(cost) -> dict:
    return {"seconds": 1000 * cost.seconds_per_prediction,
            "joules": 1000 * cost.joules_per_prediction, "source": cost.source}


if __name__ == "__main__":
    sys.exit(main())
