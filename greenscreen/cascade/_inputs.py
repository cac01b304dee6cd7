"""The cascade's checks of what it is given: models, inputs, labels, batch sizes. Each
raises before any model runs or any energy is measured, in the library's template."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..validation import check_integer, invalid

MODEL = ("a Keras model, or an object with predict_on_batch(x) or "
         "predict(x, batch_size=, verbose=) returning class probabilities")


def check_model(name: str, model: Any) -> Any:
    """`model` can be asked for predictions, as `cascade.infer` asks it."""
    if not callable(getattr(model, "predict_on_batch", None)) and not callable(
            getattr(model, "predict", None)):
        raise invalid(name, model, MODEL)
    return model


def check_batch_size(batch_size: Any) -> int:
    return check_integer("batch_size", batch_size, low=1)


def samples(name: str, x: Any, empty: bool = True) -> np.ndarray:
    """`x` as one NumPy array of samples (a backend's tensor is converted); several
    inputs (a list, tuple or dict of arrays) are refused: the cascade gathers the
    escalated rows of one array."""
    if isinstance(x, dict) or (isinstance(x, (list, tuple)) and len(x) > 0
                               and hasattr(x[0], "shape")):
        raise invalid(name, f"<{type(x).__name__} of inputs>",
                      "one array of samples (NumPy, or a backend's tensor); models with "
                      "several inputs (a list, tuple or dict of arrays) are not supported")
    try:
        x = np.asarray(x)
    except (TypeError, ValueError, RuntimeError) as exc:  # e.g. a GPU tensor
        raise invalid(name, f"<{type(x).__name__}>", "one array of samples that NumPy can "
                      f"read (np.asarray failed: {exc}); move it to the CPU first") from None
    if x.ndim == 0 or x.dtype == object:
        raise invalid(name, f"<{type(x).__name__} {x.dtype} shaped {x.shape}>",
                      "one array of samples, one row per sample")
    if not empty and len(x) == 0:
        raise invalid(name, "<an empty array>", "at least one sample")
    return x


def labels(name: str, y: Any, n: int) -> np.ndarray:
    """One class per sample, (n,): (n, 1) columns are flattened and one-hot rows
    (n, classes) become their class.

    Raises:
        ValueError: not one label per sample of the `n`.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        y = np.argmax(y, axis=1)  # one-hot (or class probabilities): the class
    elif y.ndim == 2 or (y.ndim == 0 and n == 1):
        y = y.reshape(-1)
    if y.ndim != 1 or len(y) != n:
        raise invalid(name, f"<labels shaped {y.shape}>",
                      f"one class per sample: {n} labels, shaped ({n},), ({n}, 1) or "
                      f"one-hot ({n}, classes)")
    return y
