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
import os
import sys
from pathlib import Path

import numpy as np

from .. import validation
from ..datasets import DatasetError
from ..fileio import atomic_write_text, to_jsonable
from ._data import (
    BadModelFile,
    DataMismatch,
    check_data_path,
    check_fits,
    check_model_path,
    check_split,
    load_model,
)
from .cascade import MEMORY, Cascade
from .evaluation import add_duplicates, heterogeneity_matrix, memory_verdict
from .memory import PredictionMemory
from .scores import SCORES, NotProbabilities
from .threshold import find_threshold, measure, measure_memory, timed_work, warm_up

# Defaults of the options that apply to some commands only: left None by the parser, so
# that check_args can tell an option given from one left out.
DEFAULTS = {"scorefn": "difference", "n_threshold_values": 2000, "epochs": 15}


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
        check_split(filepath, y)
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
    p.add_argument("-s", "--scorefn", choices=list(SCORES),
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
    p.add_argument("-n", "--n_threshold_values", type=int,
                   help="number of thresholds tried in [0, 1], at least 2 (default: 2000)")
    p.add_argument("--epochs", type=int,
                   help="epochs of training for each model trained here (default: 15)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the data split and of the models trained here (default: 0)")
    p.add_argument("-e", "--end", choices=["none", "alarm"], default="none",
                   help="at the end: nothing, or a terminal bell (default: none)")
    p.add_argument("--out", help="also write the printed JSON result to this file")
    return p


def check_args(p: argparse.ArgumentParser, args) -> None:
    """Refuses, as argparse does (usage, one line, exit status 2), values that would fail
    late or be ignored; then fills in the defaults left None."""
    try:
        for name in ("threshold", "duplicates", "rotations"):
            value = getattr(args, name)
            if value is not None:
                validation.check_number(name, value, low=0, high=1)
        for name, low in (("n_threshold_values", 2), ("epochs", 1)):
            if getattr(args, name) is not None:
                validation.check_integer(name, getattr(args, name), low=low)
        validation.check_integer("seed", args.seed, low=0, high=2**32 - 1)
        if args.model2 and not args.model1:
            raise ValueError("--model2 needs --model1 (the small model); without --model1 "
                             "both models are trained here")
        if args.models and (args.command != "heterogeneity" or args.model1 or args.model2):
            raise ValueError("--models is for heterogeneity only, without --model1/--model2")
        paths = [("--model1", args.model1), ("--model2", args.model2)]
        for flag, path in paths + [("--models", m) for m in args.models or []]:
            if path is not None:
                check_model_path(path, flag)
        if args.models and len(set(args.models)) < len(args.models):
            raise ValueError("--models names a file twice")
        if args.filepath is not None:
            check_data_path(args.filepath)
        if args.out is not None:
            check_out(args.out)
        check_applies(args)
    except ValueError as exc:
        p.error(str(exc))
    for name, value in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def check_applies(args) -> None:
    """Refuses an option the command would ignore."""
    baseline = args.command == "run" and args.model1 and not args.model2
    given = {"--threshold": args.threshold is not None, "--postcheck": args.postcheck,
             "--memory": args.memory is not None, "--scorefn": args.scorefn is not None,
             "-n": args.n_threshold_values is not None, "--epochs": args.epochs is not None,
             "--duplicates": bool(args.duplicates), "--rotations": bool(args.rotations)}
    unused = {  # option -> why it does not apply here, where it does not
        "--threshold": {"threshold": "threshold searches for it",
                        "heterogeneity": "it is for run"}.get(args.command),
        "--memory": "it is for run" if args.command != "run" else None,
        "--postcheck": "it is for run" if args.command != "run" else None,
        "--scorefn": "heterogeneity scores nothing" if args.command == "heterogeneity" else None,
        "-n": ("heterogeneity tries no threshold" if args.command == "heterogeneity" else
               "--threshold is given" if args.threshold is not None else None),
        "--epochs": "the models are loaded, not trained" if args.model1 or args.models else None,
        "--duplicates": "it is for the test split" if args.command == "threshold" else None,
        "--rotations": "it turns the copies --duplicates adds" if not args.duplicates else None,
    }
    if baseline:
        for flag in ("--threshold", "--memory", "--postcheck", "--scorefn", "-n"):
            unused[flag] = "--model1 alone is a single-model baseline"
    if args.command == "threshold" and args.model1 and not args.model2:
        raise ValueError("threshold needs two models: --model2 with --model1")
    for flag, why in unused.items():
        if given[flag] and why:
            raise ValueError(f"{flag} does not apply to {args.command} here: {why}")


def check_out(path: str) -> None:
    """--out must be a file that can be written: its nearest existing folder writable."""
    out = Path(path)
    if out.is_dir():
        raise validation.invalid("--out", path, "a file path; that is a folder")
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise validation.invalid("--out", path, f"a file in a folder you can write; {folder} "
                                 "is not one")


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    check_args(p, args)
    try:
        result = run(args)
    except (BadModelFile, DatasetError, DataMismatch, NotProbabilities,
            MissingScikitLearn) as exc:  # one line, exit 2
        print(f"greenscreen.cascade: {exc}", file=sys.stderr)
        return 2
    # One text for the screen and --out: NaN (an energy the meter could not give) is null.
    text = json.dumps(to_jsonable(result), indent=2, allow_nan=False)
    print(text)
    if args.command == "run" and args.memory and not result["memory"]["pays"]:
        print(f"greenscreen.cascade: {result['memory']['note']}", file=sys.stderr)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    if args.end == "alarm":
        print("\a", end="", flush=True)
    return 0


def run(args) -> dict:
    x_tr, y_tr, x_va, y_va, x_te, y_te = load_data(args.filepath, args.seed)
    n_classes = int(y_tr.max()) + 1
    x_te, y_te = add_duplicates(x_te, y_te, args.duplicates, args.rotations, args.seed)
    if args.command == "heterogeneity" and args.models:
        models = {name: fitting(load_model(m, "--models"), f"--models {m}", x_te, n_classes)
                  for name, m in zip(model_names(args.models), args.models)}
        return matrix_json(heterogeneity_matrix(models, x_te, y_te))
    if args.model1:
        small = fitting(load_model(args.model1, "--model1"), "--model1", x_te, n_classes)
        big = fitting(load_model(args.model2, "--model2"), "--model2", x_te, n_classes) if (
            args.model2) else None
    else:
        import keras

        keras.utils.set_random_seed(args.seed)
        small, big = train_pair(x_tr, y_tr, n_classes, args.epochs)
    if args.command == "heterogeneity":
        models = {"small": small} | ({"big": big} if big is not None else {})
        return matrix_json(heterogeneity_matrix(models, x_te, y_te))
    if big is None:  # single-model baseline
        probs, cost = measure(small, x_te)
        return {"accuracy": float(np.mean(probs.argmax(1) == y_te)), "cost": cost.__dict__}
    search = find_threshold(small, big, x_va, y_va, args.scorefn, args.n_threshold_values)
    if args.command == "threshold":
        return search.summary()
    threshold = args.threshold if args.threshold is not None else (
        search.best_threshold if search.cheapest_matching_threshold is None
        else search.cheapest_matching_threshold)
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


def fitting(model, name: str, x, n_classes: int):
    check_fits(model, name, x, n_classes)
    return model


def model_names(paths: list[str]) -> list[str]:
    """Each model's name in the matrix: its file's stem, or its path where stems repeat."""
    stems = [Path(m).stem for m in paths]
    return [stem if stems.count(stem) == 1 else m for stem, m in zip(stems, paths)]


def matrix_json(matrix) -> dict:
    """The heterogeneity matrix as {row model: {column model: value}}: json[a][b] is the
    fraction where a is wrong and b right, as matrix.loc[a, b]."""
    return matrix.to_dict(orient="index")


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
    with meter.window("cascade") as w:
        out, seconds = timed_work(lambda: cascade.predict(x, y=labels))
    return out, {"seconds": 1000 * seconds / len(x), "joules": 1000 * w.energy_j / len(x),
                 "source": w.source}


def _per_1000(cost) -> dict:
    return {"seconds": 1000 * cost.seconds_per_prediction,
            "joules": 1000 * cost.joules_per_prediction, "source": cost.source}


if __name__ == "__main__":
    sys.exit(main())
