"""Your dataset function's result, made into what a run trains on.

`function(params)` returns one of:

- `(x, y)` NumPy arrays: split by `partitioning` (stratified for classification), then
  preprocessed and augmented like a built-in dataset;
- `{"train": ..., "validation": ..., "test": ...}` where each split is `(x, y)` arrays
  (used as they are), or a `keras.utils.PyDataset` or a `tf.data.Dataset` (under
  TensorFlow) that yields batches. Streamed splits are never loaded whole: the pipeline
  reads one batch to learn the input shape (and the classes of one-hot labels) and
  hands them to `fit` as they are. Add `"num_classes"` where it cannot be inferred
  (integer labels in a stream). Without `"test"` (Keras examples often have only train
  and validation) the run is evaluated on the validation split, and results.json says so
  (`evaluated_on`).

Labels follow `settings.loss` (objective.py): integer class labels 0..num_classes-1 for
classification (the pipeline one-hot encodes arrays for a categorical loss), anything
numeric otherwise. These are the run's rules; `probe.py` calls them before a sweep.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..objective import Objective
from .data import DataError, Splits, outputs, split

SPLITS = ("train", "validation", "test")
NEEDED = ("train", "validation")  # without "test", the validation split is evaluated
# A streamed split decides these itself; they apply only where your function read them.
STREAM_DECIDES = ("batch_size", "preprocessing", "augmentation")


@dataclass
class Streams:
    """Ready-made splits that yield batches (PyDataset or tf.data.Dataset)."""

    train: object
    validation: object
    test: object
    input_shape: tuple
    num_classes: int
    steps_per_epoch: int
    batch_size: int


@dataclass
class Prepared:
    """What a run trains on, before batching.

    Attributes:
        data: Arrays split three ways (a test split without one: the validation arrays), or
            your streams.
        given: Whether your function gave the splits (then `partitioning` does not apply).
        evaluated_on: The split the run is evaluated on: "test", or "validation" where your
            splits have no test split.
        num_classes_given: Whether your dict said "num_classes" (else it is inferred).
        cached: Whether a built-in dataset's splits came from the warm worker's cache
            (run/datacache.py).
    """

    data: Splits | Streams
    given: bool = False
    evaluated_on: str = "test"
    num_classes_given: bool = False
    cached: bool = False


def prepare(given: object, objective: Objective, partitioning: str, seed: int,
            entry: str) -> Prepared:
    """Splits or streams from your function's result.

    Raises:
        DataError: naming `entry`, what it returned and what is allowed.
    """
    if not isinstance(given, dict):
        x, y = _arrays(given, f"{entry}()", objective)
        if objective.classification:
            check_labels(y, None, f"{entry}()")
        return Prepared(split(x, y, partitioning, seed, stratify=objective.classification))
    missing = [k for k in NEEDED if given.get(k) is None]
    if missing:
        raise DataError(f"{entry} returned a dict without {', '.join(missing)}; allowed: "
                        "{'train': ..., 'validation': ..., 'test': ...} (test optional), each "
                        "(x, y) arrays, a keras.utils.PyDataset or a tf.data.Dataset")
    names = [k for k in SPLITS if given.get(k) is not None]
    evaluated_on = "test" if "test" in names else "validation"
    streamed = [k for k in names if _is_stream(given[k])]
    if streamed and len(streamed) < len(names):
        raise DataError(f"{entry}: {', '.join(streamed)} stream(s) batches but the other "
                        "splits are arrays; allowed: all splits of one kind")
    stated = given.get("num_classes") is not None
    if stated:  # 0 was taken for "not given", and the classes inferred without a word
        value = given["num_classes"]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise DataError(f"{entry}: num_classes={value!r} is not valid; allowed: an "
                            "integer >= 1 (the classes, or a regression's outputs per "
                            "sample), or leave it out to have it inferred")
    if streamed:
        return Prepared(_streams(given, objective, entry, evaluated_on), True, evaluated_on,
                        stated)
    parts = {k: _arrays(given[k], f"{entry}()[{k!r}]", objective) for k in names}
    classes = given.get("num_classes") or outputs(
        np.concatenate([y for _, y in parts.values()]), objective.classification)
    if objective.classification:
        for k, (_, y) in parts.items():
            check_labels(y, int(classes) if stated else None, f"{entry}()[{k!r}]")
    (xt, yt), (xv, yv) = parts["train"], parts["validation"]
    xs, ys = parts.get("test", (xv, yv))
    return Prepared(Splits(xt, yt, xv, yv, xs, ys, int(classes)), True, evaluated_on, stated)


def check_labels(y: np.ndarray, num_classes: int | None, what: str) -> None:
    """Class labels are integers 0..num_classes-1 (from 0 where num_classes is inferred as
    the largest label + 1): a label past them would fail deep inside Keras (an IndexError
    from to_categorical) or, negative, wrap around silently.

    Raises:
        DataError: naming `what`, the labels found and the ones allowed.
    """
    if not y.size:
        return
    low, high = int(y.min()), int(y.max())
    if low >= 0 and (num_classes is None or high < num_classes):
        return
    if num_classes is None:
        raise DataError(f"{what}: labels {low}..{high}, some negative; allowed: integer class "
                        "labels 0..n-1")
    outside = int(np.count_nonzero((y < 0) | (y >= num_classes)))
    hint = " (labels counted from 1? use y - 1)" if low == 1 and high == num_classes else ""
    raise DataError(f"{what}: labels {low}..{high}, {outside} of {y.size} outside "
                    f"0..{num_classes - 1}; allowed with num_classes {num_classes}: integer "
                    f"labels 0..{num_classes - 1}{hint}")


def _arrays(pair: object, what: str, objective: Objective) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
        raise DataError(f"{what} is a {type(pair).__name__}; allowed: (x, y) NumPy arrays, a "
                        "dict of them under 'train', 'validation' and 'test', or of "
                        "keras.utils.PyDatasets")
    x, y = np.asarray(pair[0]), np.asarray(pair[1])
    if len(x) != len(y):
        raise DataError(f"{what}: x has {len(x)} samples and y {len(y)}; allowed: one label "
                        "per sample")
    if objective.classification and (y.ndim != 1 or not np.issubdtype(y.dtype, np.integer)):
        raise DataError(f"{what}: y has shape {y.shape} and dtype {y.dtype}; allowed with "
                        f"loss {objective.loss}: one integer class label per sample (or set "
                        "settings.loss for a regression, e.g. mse)")
    if not np.issubdtype(y.dtype, np.number):
        raise DataError(f"{what}: y has dtype {y.dtype}; allowed: numbers")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"{what}: x has dtype {x.dtype}; allowed: a NumPy array of numbers "
                        "(int, float or bool)")
    if np.issubdtype(x.dtype, np.floating) and x.dtype != np.float32:
        x = x.astype("float32")
    return x, (y.astype(np.int64) if objective.classification else y.astype("float32"))


def _is_stream(split_value: object) -> bool:
    import keras

    if isinstance(split_value, keras.utils.PyDataset):
        return True
    return type(split_value).__module__.startswith("tensorflow") and hasattr(
        split_value, "element_spec")


def _streams(given: dict, objective: Objective, entry: str, evaluated_on: str) -> Streams:
    what = f"{entry}()['train']"
    x, y = first_batch(given["train"], what)
    classes = given.get("num_classes")
    if classes is None:
        if objective.one_hot and y.ndim == 2:
            classes = y.shape[1]
        elif objective.classification:
            raise DataError(f"{entry}: the classes of integer labels in a stream cannot be "
                            "known without reading it whole; add 'num_classes' to the dict "
                            "your function returns")
        else:
            classes = outputs(y, classification=False)
    check_stream_labels(y, int(classes), objective, what)
    shape = _shape_of(x)
    return Streams(given["train"], given["validation"], given[evaluated_on], shape,
                   int(classes), steps(given["train"], what), len(y))


def check_stream_labels(y: np.ndarray, num_classes: int, objective: Objective,
                        what: str) -> None:
    """A streamed batch's labels in the form the loss takes: one-hot (batch, num_classes)
    for a categorical loss, class indices 0..num_classes-1 for the sparse one.

    Raises:
        DataError: naming `what`, the labels' form and the form allowed.
    """
    if objective.one_hot and (y.ndim != 2 or y.shape[1] != num_classes):
        raise DataError(f"{what} yields labels of shape {y.shape}; allowed with loss "
                        f"{objective.loss}: one-hot labels (batch, {num_classes}), or set "
                        "settings.loss: sparse_categorical_crossentropy for class indices")
    if objective.classification and not objective.one_hot:
        if y.ndim == 2 and y.shape[1] > 1:
            raise DataError(f"{what} yields labels of shape {y.shape} (one-hot); allowed with "
                            f"loss {objective.loss}: class indices (batch,), or set "
                            "settings.loss: categorical_crossentropy for one-hot labels")
        check_labels(y, num_classes, what)


def first_batch(stream: object, what: str) -> tuple:
    """(x, y) of the stream's first batch, as NumPy; nothing else is read."""
    import keras

    if isinstance(stream, keras.utils.PyDataset):
        batch = stream[0]
    else:
        batch = next(iter(stream.take(1).as_numpy_iterator()), None)
        if batch is None:
            raise DataError(f"{what} is empty")
    if not (isinstance(batch, (tuple, list)) and len(batch) in (2, 3)):
        raise DataError(f"{what} yields {type(batch).__name__}s; allowed: (x, y) or "
                        "(x, y, sample_weight) batches")
    return batch[0], np.asarray(batch[1])


def steps(stream: object, what: str) -> int:
    """Batches per epoch: len() of a PyDataset; a tf.data.Dataset's cardinality, counted
    by reading it once (batch by batch, `counted`) where TensorFlow does not know it."""
    import keras

    if isinstance(stream, keras.utils.PyDataset):
        n = stream.num_batches
        if n is None:
            raise DataError(f"{what} has no length (an infinite PyDataset); allowed: a "
                            "PyDataset with __len__, so that an epoch ends")
        return int(n)
    import tensorflow as tf

    n = int(stream.cardinality())
    if n == tf.data.INFINITE_CARDINALITY:
        raise DataError(f"{what} repeats forever; allowed: a finite tf.data.Dataset (an "
                        "epoch is one pass)")
    if n == tf.data.UNKNOWN_CARDINALITY:
        n = counted(stream, what)
    return n


# Batches counted in a stream of unknown length before it is taken as one that never ends
# (a generator that loops forever). Counted in Python, a generator's batches of 32 x 16
# read at 1 600 to 1 800 a second here (2-core VM), tensor slices' at 6 000: an endless
# generator is refused after about ten minutes, which Ctrl-C cuts short.
MOST_COUNTED = 1_000_000


def counted(stream, what: str, most: int = MOST_COUNTED) -> int:
    """A tf.data.Dataset's batches, read once. In Python, batch by batch: Ctrl-C and
    SIGTERM are heard between two (`Dataset.reduce` ran as one native operation, which
    no signal handler interrupted, forever on an endless generator). More than `most`
    batches: refused as a stream that does not end."""
    n = 0
    for n, _ in enumerate(stream, start=1):
        if n > most:
            raise DataError(
                f"{what} did not end after {most:,} batches (a generator that loops "
                "forever?); allowed: a finite tf.data.Dataset, an epoch being one pass. One "
                "of known length is not counted: "
                "dataset.apply(tf.data.experimental.assert_cardinality(n))")
    return n


def _shape_of(x) -> tuple:
    if isinstance(x, dict):
        return {k: tuple(np.shape(v)[1:]) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return tuple(tuple(np.shape(v)[1:]) for v in x)
    return tuple(np.shape(x)[1:])
