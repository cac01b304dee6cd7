"""The cascade's checks of what it is given: models, inputs, labels, batch sizes. Each
raises before any model runs or any energy is measured, in the library's template.
A model of several inputs is given them as `Inputs`, row-aligned."""

from __future__ import annotations

from typing import Any, Union

import numpy as np

from ..validation import check_integer, invalid

# What the cascade's functions take as x: one array (or a backend's tensor), or a model's
# several inputs as a list, tuple or dict of arrays.
Given = Union[np.ndarray, list, tuple, dict, Any]

MODEL = ("a Keras model, or an object with predict_on_batch(x) or "
         "predict(x, batch_size=, verbose=) returning class probabilities")


def is_model(model: Any) -> bool:
    """`model` can be asked for predictions, as `cascade.infer` asks it."""
    return callable(getattr(model, "predict_on_batch", None)) or callable(
        getattr(model, "predict", None))


def check_model(name: str, model: Any) -> Any:
    if not is_model(model):
        raise invalid(name, model, MODEL)
    return model


def check_meter(meter: Any) -> None:
    """`meter` is None (one is started for the measurement) or an `EnergyMeter`, which is
    started if it is not running (and left running: it is yours)."""
    from ..meters import EnergyMeter

    if meter is not None and not isinstance(meter, EnergyMeter):
        raise invalid("meter", meter, "an EnergyMeter (e.g. EnergyMeter('auto')), or None "
                      "to measure with one started for the measurement")


def check_batch_size(batch_size: Any) -> int:
    return check_integer("batch_size", batch_size, low=1)


class Inputs:
    """A model's several inputs, row-aligned: the list, tuple or dict of arrays the model
    takes, as NumPy arrays. Indexing takes the same rows of every input, so the cascade
    gathers and pads them as it does one array; `given()` is what the model is handed.

    Example:

    ```python
    x = Inputs({"image": images, "meta": meta})
    x[:32].given()  # {"image": images[:32], "meta": meta[:32]}
    ```
    """

    def __init__(self, parts: "dict | list | tuple") -> None:
        # The container the model takes: a dict, list, tuple or namedtuple (Keras takes each)
        self.kind = dict if isinstance(parts, dict) else (
            type(parts) if isinstance(parts, tuple) else list)
        self.parts = dict(parts) if isinstance(parts, dict) else dict(enumerate(parts))

    def __len__(self) -> int:
        return len(next(iter(self.parts.values())))

    def __getitem__(self, rows) -> "Inputs":
        return self._with({k: v[rows] for k, v in self.parts.items()})

    def padded(self, size: int) -> "Inputs":
        """`size` rows: these, then repeats of the last row."""
        extra = size - len(self)
        return self._with({k: np.concatenate([v, np.repeat(v[-1:], extra, axis=0)])
                           for k, v in self.parts.items()})

    def given(self) -> "dict | list | tuple":
        if self.kind is dict:
            return dict(self.parts)
        values = [self.parts[i] for i in range(len(self.parts))]
        return self.kind(*values) if hasattr(self.kind, "_fields") else self.kind(values)

    def describe(self) -> str:
        return f"<{self.kind.__name__} of {len(self.parts)} inputs>"

    def _with(self, parts: dict) -> "Inputs":
        out = Inputs.__new__(Inputs)
        out.kind, out.parts = self.kind, parts
        return out


def model_input(x: "np.ndarray | Inputs"):
    """What a model is handed for `x`: the array, or the several inputs as it takes them."""
    return x.given() if isinstance(x, Inputs) else x


def several(x: Any, model: Any = None) -> bool:
    """`x` is several inputs: a dict of arrays, or a list or tuple whose first item is an
    array or a backend's tensor with at least one dimension. A list of numbers is one
    array; so is a list of rows (arrays) given to a Keras model of one input, which Keras
    would read as several inputs of one row each."""
    if isinstance(x, dict):
        return True
    if not (isinstance(x, (list, tuple)) and len(x) > 0 and len(getattr(x[0], "shape", ())) > 0):
        return False
    ranks = input_ranks(model)
    # A Keras model of one input: its rows (each one rank below the input) are one array
    return not (ranks is not None and len(ranks) == 1 and len(x[0].shape) == ranks[0] - 1)


def input_ranks(model: Any) -> list[int] | None:
    """The rank (batch axis included) of each input of a built Keras model; None where
    that is not known (a model not yet built, or not a Keras model)."""
    try:
        inputs = getattr(model, "inputs", None)
        return [len(i.shape) for i in inputs] if inputs else None
    except (AttributeError, ValueError, TypeError):  # a subclassed model not yet called
        return None


def samples(name: str, x: Any, empty: bool = True, inputs: bool = True,
            model: Any = None) -> "np.ndarray | Inputs":
    """`x` as one NumPy array of samples (a backend's tensor is converted), or, where
    `inputs`, several inputs (a list, tuple or dict of arrays, one row per sample in each)
    as `Inputs` (which pass as they are). `model`, where given, settles a list of arrays:
    a Keras model of one input is given a list of rows as one array."""
    if isinstance(x, Inputs) and inputs:
        return x
    if several(x, model) or isinstance(x, Inputs):
        if not inputs:
            what = x.describe() if isinstance(x, Inputs) else f"<{type(x).__name__} of inputs>"
            raise invalid(name, what,
                          "one array of samples (NumPy, or a backend's tensor); several "
                          "inputs (a list, tuple or dict of arrays) are not supported here")
        return _several(name, x, empty)
    return fitting(name, one_array(name, x, empty), model)


def fitting(name: str, x: np.ndarray, model: Any) -> np.ndarray:
    """`x`, refused where it is one sample of a built Keras model of one input, without
    its batch axis: that reached the backend, whose message differed by backend and named
    no argument. Any other shape passes to the model as before (Keras adds or drops a
    trailing axis of 1 itself: (n, 28, 28) for an input of (28, 28, 1))."""
    try:
        given = getattr(model, "input_shape", None)
    except (AttributeError, ValueError, TypeError):  # a subclassed model not yet called
        return x
    if not isinstance(given, tuple) or not given or x.ndim != len(given) - 1:
        return x
    if all(want is None or want == got for want, got in zip(given[1:], x.shape)):
        raise invalid(name, f"<array shaped {x.shape}>", f"samples shaped "
                      f"{tuple(given[1:])} with the batch axis first, (n, "
                      f"{', '.join(map(str, given[1:]))}) (one sample: x[None])")
    return x


def one_array(name: str, x: Any, empty: bool = True) -> np.ndarray:
    """`x` as one NumPy array of samples (a list of rows or a backend's tensor too)."""
    if _batches(x):  # NumPy would read one as an object, or its batches as samples
        raise invalid(name, f"<{type(x).__name__}>", "one array of samples, one row per "
                      "sample: a dataset, generator or other iterator of batches is not "
                      "read here (concatenate its batches into one array first)")
    try:
        x = np.asarray(x)
    except (TypeError, ValueError, RuntimeError) as exc:  # e.g. a GPU tensor
        raise invalid(name, f"<{type(x).__name__}>", "one array of samples that NumPy can "
                      f"read (np.asarray failed: {exc}); a tensor on a GPU, or one that "
                      "needs gradients, is read once moved to the CPU or detached") from None
    if x.ndim == 0 or x.dtype == object:
        raise invalid(name, f"<{type(x).__name__} {x.dtype} shaped {x.shape}>",
                      "one array of samples, one row per sample")
    if not empty and len(x) == 0:
        raise invalid(name, "<an empty array>", "at least one sample")
    return x


def _batches(x: Any) -> bool:
    """`x` hands out batches rather than holding samples: a Keras PyDataset, a tf.data
    Dataset (by its module, so that TensorFlow is not imported to ask), or an iterator."""
    import keras

    return (isinstance(x, keras.utils.PyDataset) or iter_once(x)
            or type(x).__module__.startswith("tensorflow.python.data"))


def iter_once(x: Any) -> bool:
    """A generator or other one-pass iterator (iter(x) is x)."""
    try:
        return iter(x) is x
    except TypeError:
        return False


def _several(name: str, x: "dict | list | tuple", empty: bool) -> Inputs:
    keys = list(x) if isinstance(x, dict) else range(len(x))
    if not keys:
        raise invalid(name, f"<{type(x).__name__} of 0 inputs>",
                      "one array of samples, or at least one input")
    parts = {k: one_array(f"{name}[{k!r}]", x[k], empty) for k in keys}
    rows = {k: len(v) for k, v in parts.items()}
    if len(set(rows.values())) > 1:
        raise invalid(name, f"<{type(x).__name__} of {len(parts)} inputs>",
                      "the same number of samples in every input; rows per input: "
                      + ", ".join(f"{k!r}: {n}" for k, n in rows.items()))
    if isinstance(x, dict):
        return Inputs({k: parts[k] for k in keys})
    values = [parts[k] for k in keys]
    return Inputs(type(x)(*values) if hasattr(x, "_fields") else type(x)(values))


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
