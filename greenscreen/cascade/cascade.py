"""Cascade: a small model answers; unsure samples go to a big model as one gathered batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_number, invalid
from . import _inputs
from .memory import PredictionMemory
from .scores import NotProbabilities, probabilities
from .scores import score as score_fn

MEMORY, SMALL, BIG = 0, 1, 2


def infer(model, x: "np.ndarray | _inputs.Inputs", batch_size: int = 256) -> np.ndarray:
    """Class probabilities, batch by batch (`x`: one array, or a model's several inputs).
    Keras models go through `predict_on_batch`: `predict` costs ~80 ms of set-up per call
    on a CPU, which would swamp small models.

    A batch is padded to the next power of two (at most `batch_size`) and the padding's
    rows dropped: a compiled backend (JAX, XLA) then compiles a handful of shapes, not one
    per number of escalated samples, each within the measured window.

    Rows are checked and made (n, classes) by `scores.probabilities`: a one-unit sigmoid's
    p(class 1) becomes [1 - p, p]; logits are refused."""
    _inputs.check_batch_size(batch_size)
    if len(x) == 0:
        return np.zeros((0, 2))
    if not hasattr(model, "predict_on_batch"):
        return probabilities(one_output(model.predict(_inputs.model_input(x),
                                                      batch_size=batch_size, verbose=0),
                                        model))
    parts = [_padded(model, x[i:i + batch_size], batch_size)
             for i in range(0, len(x), batch_size)]
    return probabilities(np.concatenate(parts))


def bucket(n: int, batch_size: int) -> int:
    """The padded size of a batch of `n` rows: the next power of two, at most `batch_size`."""
    return min(batch_size, 1 << max(0, n - 1).bit_length())


def buckets(n: int, batch_size: int) -> list[int]:
    """Every padded size a batch of up to `n` rows can have, smallest first: what a
    warm-up traces so that no compilation falls in a measured window."""
    top, sizes, k = min(n, batch_size), set(), 1
    while k < top:
        sizes.add(k)
        k *= 2
    return sorted(sizes | {bucket(max(top, 1), batch_size)})


def _padded(model, rows: "np.ndarray | _inputs.Inputs", batch_size: int) -> np.ndarray:
    n, size = len(rows), bucket(len(rows), batch_size)
    if size > n:  # repeats of the last row: any row will do, its answer is dropped
        rows = rows.padded(size) if isinstance(rows, _inputs.Inputs) else np.concatenate(
            [rows, np.repeat(rows[-1:], size - n, axis=0)])
    return np.asarray(one_output(model.predict_on_batch(_inputs.model_input(rows)),
                                 model))[:n]


def one_output(out, model=None):
    """A model's one output. Several (a dict of outputs, or a list or tuple of arrays, as
    a Keras model of several outputs gives them) are refused before NumPy would try to
    read them as one array; one in a list or dict is that output. A list of probability
    rows is one output; a list of arrays of unequal shapes, or that of a Keras `model`
    with several outputs, is several."""
    if isinstance(out, dict):
        parts = list(out.values())
    elif isinstance(out, (list, tuple)) and out and (
            len(np.shape(out[0])) >= 2 or len(_outputs_of(model)) > 1
            or len({np.shape(o) for o in out}) > 1):
        parts = list(out)
    else:
        return out
    if len(parts) == 1:
        return parts[0]
    raise NotProbabilities(
        f"a cascade needs each model's one output, class probabilities; the model gave "
        f"{len(parts)} outputs. A model with several outputs is not supported: give the "
        "cascade a model of its classifier output (keras.Model(model.inputs, "
        "model.outputs[k]))")


def _outputs_of(model) -> list:
    """A built Keras model's outputs; [] where they are not known."""
    try:
        return list(getattr(model, "outputs", None) or [])
    except (AttributeError, ValueError, TypeError):  # a subclassed model not yet called
        return []


def classes_of(model) -> int | None:
    """How many classes a built Keras model of one output answers (a one-unit sigmoid: 2);
    None where that is not known before it runs."""
    outputs = _outputs_of(model)
    width = outputs[0].shape[-1] if len(outputs) == 1 and outputs[0].shape else None
    return None if width is None else max(int(width), 2)


def check_same_classes(small_classes: int | None, big_classes: int | None) -> None:
    """Both models answer the same classes, where both are known: else one answer would
    be read as another model's class."""
    if small_classes is not None and big_classes is not None and small_classes != big_classes:
        raise NotProbabilities(
            f"the small model answers {small_classes} classes and the big model "
            f"{big_classes}: a cascade needs both to answer the same classes (a one-unit "
            "sigmoid answers 2)")


@dataclass
class CascadeResult:
    predictions: np.ndarray  # class per sample
    routing: np.ndarray  # MEMORY (0), SMALL (1) or BIG (2) per sample: who answered
    escalated: np.ndarray  # bool: the big model was asked

    @property
    def escalation_rate(self) -> float:
        return float(self.escalated.mean()) if len(self.escalated) else 0.0


class Cascade:
    """Two heterogeneous models in sequence.

    Args:
        small, big: Keras models (or anything with `predict_on_batch(x)` or
            `predict(x, batch_size=, verbose=)` returning class probabilities).
        score: "maxp", "difference", "entropy" or "oracle" (needs labels).
        threshold: Escalate unless the small model's score reaches this, in [0, 1]
            (a NaN score, from a model that diverged, is escalated).
        postcheck: Accept the big model's answer only if its score on its own
            output is higher than the small model's score; otherwise the small
            model's answer stands (a bool).
        memory: A `PredictionMemory`, or None.

    Example:

    ```python
    cascade = Cascade(small, big, score="difference", threshold=0.3)
    result = cascade.predict(x_test, batch_size=256)
    print(result.escalation_rate, (result.predictions == y_test).mean())
    ```
    """

    def __init__(self, small, big, score: str = "difference", threshold: float = 0.5,
                 postcheck: bool = False, memory: PredictionMemory | None = None) -> None:
        score_fn(score, np.full((1, 2), 0.5), np.zeros(1))  # validates the name
        check_number("threshold", threshold, low=0, high=1)
        _inputs.check_model("small", small)
        _inputs.check_model("big", big)
        if not isinstance(postcheck, (bool, np.bool_)):  # check_choice took 1 for True
            raise invalid("postcheck", postcheck, "True or False")
        check_same_classes(classes_of(small), classes_of(big))
        if memory is not None and not isinstance(memory, PredictionMemory):
            raise invalid("memory", memory, "a PredictionMemory (e.g. "
                          "PredictionMemory('dhash')) or None")
        self.small, self.big, self.score = small, big, score
        self.threshold, self.postcheck, self.memory = threshold, postcheck, memory

    def predict(self, x: _inputs.Given, batch_size: int = 256, y: np.ndarray | None = None,
                ) -> CascadeResult:
        """Each sample's class and who gave it.

        Args:
            x: One array of samples (a backend's tensor is converted), or a model's
                several inputs: a list, tuple or dict of arrays, one row per sample in
                each, as the models take them (both models take the same inputs).
            batch_size: Samples given to the small model at once, an integer >= 1.
            y: The labels, needed by score="oracle" only: one class per sample
                (one-hot rows are read as their class).
        """
        _inputs.check_batch_size(batch_size)
        x = _inputs.samples("x", x, model=self.small)
        if self.score == "oracle" and y is None:
            raise invalid("y", None, "the labels, one class per sample, with score='oracle' "
                          "(it scores the small model's answer against them)")
        if self.memory is not None and isinstance(x, _inputs.Inputs):
            raise invalid("x", x.describe(), "one array of images while the cascade has a "
                          "memory (PredictionMemory keys one image a sample); "
                          "memory=None for models of several inputs")
        n = len(x)
        if y is not None:
            y = _inputs.labels("y", y, n)
        preds = np.zeros(n, dtype=int)
        routing = np.full(n, SMALL, dtype=int)
        escalated = np.zeros(n, dtype=bool)
        for start in range(0, n, batch_size):
            idx = np.arange(start, min(start + batch_size, n))
            self._batch(x, y, idx, preds, routing, escalated, batch_size)
        return CascadeResult(preds, routing, escalated)

    def _batch(self, x, y, idx, preds, routing, escalated, batch_size: int) -> None:
        keys = None
        if self.memory is not None:  # each key is computed once, for the batch at once
            keys, known = self.memory.lookup_batch(x[idx])
            hit = np.array([p is not None for p in known], dtype=bool)
            preds[idx[hit]] = [p for p in known if p is not None]
            routing[idx[hit]] = MEMORY
            idx, keys = idx[~hit], [k for k, h in zip(keys, hit) if not h]
        if len(idx) == 0:
            return
        small_p = infer(self.small, x[idx], batch_size)
        labels = None if y is None else y[idx]
        s_small = score_fn(self.score, small_p, labels)
        preds[idx] = np.argmax(small_p, axis=1)
        unsure = ~(s_small >= self.threshold)  # a NaN score is not confident: escalated
        if unsure.any():
            up = idx[unsure]
            big_p = infer(self.big, x[up], batch_size)  # the escalated rows, gathered
            check_same_classes(small_p.shape[1], big_p.shape[1])
            escalated[up] = True
            # A NaN row of the big model (it diverged) is no answer: argmax read it as
            # class 0. The small model's answer stands there.
            accept = ~np.isnan(big_p).any(axis=1)
            if self.postcheck:
                big_labels = None if y is None else y[up]
                s_big, s_up = score_fn(self.score, big_p, big_labels), s_small[unsure]
                accept &= (s_big > s_up) | (np.isnan(s_up) & ~np.isnan(s_big))
            preds[up[accept]] = np.argmax(big_p[accept], axis=1)
            routing[up[accept]] = BIG
        if self.memory is not None:
            self.memory.add_keys(keys, preds[idx])
