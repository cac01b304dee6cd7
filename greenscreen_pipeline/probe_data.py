"""What the probe checks in your data beyond the run's own rules, its one-line account, and
the hints its messages add (a misspelt params or dict key).

A run meets these too late: values that are not finite, a class that never occurs in the
train split; for streamed splits, their first batches by the run's rules. Split from
probe.py, which calls them (`probe._read`).
"""

from __future__ import annotations

import numpy as np

from greenscreen.validation import nearest

from .objective import Objective

CHUNK = 4096  # samples scanned at once for non-finite values (memory stays small)


def data_mistakes(prepared, objective: Objective, name: str) -> list[str]:
    """What the run's rules let pass but a run would meet too late: values that are not
    finite, a class that never occurs in the train split; for streams, their first batches
    by the run's rules."""
    from .run import user_data

    if isinstance(prepared.data, user_data.Streams):
        return _stream_mistakes(prepared, objective, name)
    mistakes = not_finite_mistakes(prepared, name)
    if objective.classification:
        mistakes += _missing_classes(prepared, name)
    return mistakes


def not_finite_mistakes(prepared, name: str) -> list[str]:
    """Each array split's x or y that holds NaN or infinite values, in words; a run asks
    too (`training.read_data`), for a configuration the probe did not try, before it
    trains an epoch into a NaN loss that reads as "diverged"."""
    from .run import user_data

    if isinstance(prepared.data, user_data.Streams):
        return []
    mistakes = []
    for split, x, y in _splits(prepared):
        what = f"{name}()" + (f"[{split!r}]" if prepared.given else f" ({split} split)")
        for part, values in (("x", x), ("y", y)):
            bad = non_finite(values)
            if bad:
                mistakes.append(f"{what}: {part} holds {bad} value(s) that are NaN or "
                                "infinite; allowed: finite numbers")
    return mistakes


def _splits(prepared) -> list[tuple[str, object, np.ndarray]]:
    s = prepared.data
    splits = [("train", s.x_train, s.y_train), ("validation", s.x_val, s.y_val)]
    if prepared.evaluated_on == "test":  # else the test arrays are the validation ones
        splits.append(("test", s.x_test, s.y_test))
    return splits


def non_finite(values) -> int:
    """How many values are NaN or infinite, scanned in chunks; 0 for integers and for
    images read from disk batch by batch (they are decoded bytes, always finite)."""
    if not isinstance(values, np.ndarray) or not np.issubdtype(values.dtype, np.floating):
        return 0
    return sum(int(values[i:i + CHUNK].size - np.count_nonzero(np.isfinite(values[i:i + CHUNK])))
               for i in range(0, len(values), CHUNK))


def _missing_classes(prepared, name: str) -> list[str]:
    y, n = prepared.data.y_train, prepared.data.num_classes
    missing = sorted(set(range(n)) - {int(c) for c in np.unique(y)})
    if not missing:
        return []
    low, high = int(y.min()), int(y.max())
    how = "your 'num_classes'" if prepared.num_classes_given else "the largest label + 1"
    hint = " (labels counted from 1? use y - 1)" if missing == [0] and low == 1 else ""
    listed = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
    where = f"{name}()['train']" if prepared.given else f"{name}() (train split)"
    return [f"{where}: class(es) {listed} of 0..{n - 1} never occur in the train split "
            f"(labels {low}..{high}; {n} classes from {how}); allowed: every class "
            f"0..{n - 1} in the train split{hint}"]


def _stream_mistakes(prepared, objective: Objective, name: str) -> list[str]:
    from .run import user_data
    from .run.data import DataError

    s, mistakes = prepared.data, []
    splits = {"train": s.train, "validation": s.validation}
    if prepared.evaluated_on == "test":
        splits["test"] = s.test
    for split, stream in splits.items():
        what = f"{name}()[{split!r}]"
        try:
            x, y = user_data.first_batch(stream, what)
            if objective.classification:
                user_data.check_stream_labels(y, s.num_classes, objective, what)
        except DataError as exc:
            mistakes.append(str(exc))
            continue
        if isinstance(x, np.ndarray) and len(x) != len(y):
            mistakes.append(f"{what}: its first batch has {len(x)} x and {len(y)} y; allowed: "
                            "one label per sample")
        for part, values in (("x", x), ("y", y)):
            bad = non_finite(values)
            if bad:
                mistakes.append(f"{what}: the first batch's {part} holds {bad} value(s) that "
                                "are NaN or infinite; allowed: finite numbers")
    return mistakes


def describe(prepared, objective: Objective, name: str, cfg: dict) -> str:
    """One line: what the dataset function gave and what was checked."""
    from .run import user_data

    s = prepared.data
    no_test = ("; no test split: runs are evaluated on the validation split"
               if prepared.evaluated_on == "validation" else "")
    if isinstance(s, user_data.Streams):
        return (f"{name}(params): streamed splits, {s.steps_per_epoch} train batches of "
                f"{s.batch_size}, input {s.input_shape}, {s.num_classes} "
                f"{'classes' if objective.classification else 'output(s)'}; first batch of "
                f"each split finite, labels fit {objective.loss}{no_test}")
    sizes = "/".join(str(len(x)) for _, x, _ in _splits(prepared))
    how = "your splits" if prepared.given else f"split by partitioning {cfg['partitioning']}"
    labels = (f"labels 0..{s.num_classes - 1}, every class in the train split"
              if objective.classification else f"{s.num_classes} target value(s) per sample")
    dtype = getattr(s.x_train, "dtype", "images")
    return (f"{name}(params): {sizes} samples ({how}); x {dtype} {s.input_shape}, finite; "
            f"{labels}{no_test}")


def params_hint(exc: BaseException, params) -> str:
    """For a KeyError of a key your function asked `params` for and it has not: the
    nearest key it has."""
    key = exc.args[0] if isinstance(exc, KeyError) and exc.args else None
    if not isinstance(key, str) or key not in params.read or dict.__contains__(params, key):
        return ""
    near = nearest(key, list(params))
    return (f"; params has no {key!r}" + (f"; did you mean {near!r}?" if near else
            " (its keys: the configuration's dimensions, run, seed and epochs)"))


DICT_KEYS = ("train", "validation", "test", "num_classes")


def dict_hint(given: object, cutoff: float = 0.6) -> str:
    """'; your dict has 'valdation': did you mean 'validation'?' for keys near known ones."""
    if not isinstance(given, dict):
        return ""
    hints = [f"your dict has {k!r}: did you mean {near!r}?" for k in given
             if k not in DICT_KEYS and (near := nearest(k, [n for n in DICT_KEYS
                                                             if n not in given], cutoff))]
    return "".join(f"; {h}" for h in hints)


def unread_keys(given: object, name: str) -> list[str]:
    """A dict key near 'test' or 'num_classes' that are missing: no run stops at it, but a
    misspelt 'test' makes every run evaluated on the validation split."""
    if not isinstance(given, dict):
        return []
    found = [(k, near) for k in given if k not in DICT_KEYS for near, cutoff in
             (("test", 0.7), ("num_classes", 0.85)) if near not in given
             and nearest(k, [near], cutoff)]
    return [f"{name}() returned a dict with key {k!r}, which the pipeline does not read; "
            f"did you mean {near!r}? allowed keys: {', '.join(DICT_KEYS)}" for k, near in found]
