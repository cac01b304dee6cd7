"""Your dataset function's result, made into what a run trains on.

`function(params)` returns one of:

- `(x, y)` NumPy arrays: split by `partitioning` (stratified for classification), then
  preprocessed and augmented like a built-in dataset;
- `{"train": ..., "validation": ..., "test": ...}` where each split is `(x, y)` arrays
  (used as they are), or a `keras.utils.PyDataset` or a `tf.data.Dataset` (under
  TensorFlow) that yields batches. Streamed splits are never loaded whole: the pipeline
  reads one batch to learn the input shape (and the classes of one-hot labels) and
  hands them to `fit` as they are. Add `"num_classes"` where it cannot be inferred
  (integer labels in a stream).

Labels follow `settings.loss` (objective.py): integer class labels for classification
(the pipeline one-hot encodes arrays for a categorical loss), anything numeric otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..objective import Objective
from .data import DataError, Splits, outputs, split

SPLITS = ("train", "validation", "test")
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


def prepare(given: object, objective: Objective, partitioning: str, seed: int,
            entry: str) -> tuple[Splits | Streams, bool]:
    """Splits or streams from your function's result; True when you gave the splits."""
    if not isinstance(given, dict):
        x, y = _arrays(given, f"{entry}()", objective)
        return split(x, y, partitioning, seed, stratify=objective.classification), False
    missing = [k for k in SPLITS if k not in given]
    if missing:
        raise DataError(f"{entry} returned a dict without {', '.join(missing)}; allowed: "
                        "{'train': ..., 'validation': ..., 'test': ...}, each (x, y) arrays, "
                        "a keras.utils.PyDataset or a tf.data.Dataset")
    streamed = [k for k in SPLITS if _is_stream(given[k])]
    if streamed and len(streamed) < len(SPLITS):
        raise DataError(f"{entry}: {', '.join(streamed)} stream(s) batches but the other "
                        "splits are arrays; allowed: all three splits of one kind")
    if streamed:
        return _streams(given, objective, entry), True
    parts = [_arrays(given[k], f"{entry}()[{k!r}]", objective) for k in SPLITS]
    (xt, yt), (xv, yv), (xs, ys) = parts
    classes = given.get("num_classes") or outputs(np.concatenate([y for _, y in parts]),
                                                  objective.classification)
    return Splits(xt, yt, xv, yv, xs, ys, int(classes)), True


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
    if np.issubdtype(x.dtype, np.floating) and x.dtype != np.float32:
        x = x.astype("float32")
    return x, (y.astype(np.int64) if objective.classification else y.astype("float32"))


def _is_stream(split_value: object) -> bool:
    import keras

    if isinstance(split_value, keras.utils.PyDataset):
        return True
    return type(split_value).__module__.startswith("tensorflow") and hasattr(
        split_value, "element_spec")


def _streams(given: dict, objective: Objective, entry: str) -> Streams:
    x, y = first_batch(given["train"], f"{entry}()['train']")
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
    if objective.one_hot and y.ndim != 2:
        raise DataError(f"{entry}()['train'] yields labels of shape {y.shape}; allowed with "
                        f"loss {objective.loss}: one-hot labels (batch, classes), or set "
                        "settings.loss: sparse_categorical_crossentropy for class indices")
    shape = _shape_of(x)
    return Streams(given["train"], given["validation"], given["test"], shape, int(classes),
                   steps(given["train"], f"{entry}()['train']"), len(y))


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
    by reading it once (batch by batch) where TensorFlow does not know it."""
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
        n = int(stream.reduce(0, lambda count, _: count + 1))
    return n


def _shape_of(x) -> tuple:
    if isinstance(x, dict):
        return {k: tuple(np.shape(v)[1:]) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return tuple(tuple(np.shape(v)[1:]) for v in x)
    return tuple(np.shape(x)[1:])
