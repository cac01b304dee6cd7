"""Ranked ("feature-ranked") weight updates.

granularity="weight": each step, only the top k% most salient entries of each
variable (by |grad| or |grad x weight|) change. The *update* is masked, not
just the gradient: masked entries are restored after the optimizer step, so
Adam's momentum cannot move them. This saves no FLOPs; the full backward pass
still runs. It changes which weights learn, not what a step costs.

granularity="layer": every `rerank_every` steps one full step ranks layers by
mean gradient saliency; the other steps compute gradients only for the top k%
of layers. TensorFlow then skips the weight-gradient work of the others, which
is real compute saved. Each distinct layer selection is its own traced
function; at most `max_traces` are kept (least recently used first out).

k decays from `high_percentage` to `low_percentage` over the planned epochs on
a "linear" or "exponential" schedule. Logs gain `update_fraction`.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import keras
import numpy as np
import tensorflow as tf

from .._validation import check_choice, check_number
from ._base import WrappedModel
from .schedules import check_percentages

SALIENCY = ("gradient", "grad_x_weight")
GRANULARITY = ("weight", "layer")


class RankedUpdates(WrappedModel):
    """Wraps a built model so each step updates only its most salient weights or layers.

    Args:
        model: A built Keras model.
        high_percentage, low_percentage: k at the first and the last epoch, in (0, 100].
        schedule: "linear" or "exponential".
        saliency: "gradient" (|g|) or "grad_x_weight" (|g * w|).
        granularity: "weight" or "layer".
        rerank_every: Steps between layer re-rankings (layer mode).
        max_traces: Traced functions kept for layer selections (layer mode).
    """

    def __init__(self, model: keras.Model, high_percentage: float = 50.0,
                 low_percentage: float = 20.0, schedule: str = "linear",
                 saliency: str = "gradient", granularity: str = "weight",
                 rerank_every: int = 50, max_traces: int = 8, name: str | None = None) -> None:
        check_percentages(high_percentage, low_percentage, schedule)
        check_choice("saliency", saliency, SALIENCY)
        check_choice("granularity", granularity, GRANULARITY)
        check_number("rerank_every", rerank_every, low=1)
        check_number("max_traces", max_traces, low=1)
        super().__init__(model, name=name)
        self.high, self.low, self.schedule = high_percentage, low_percentage, schedule
        self.saliency, self.granularity = saliency, granularity
        self.rerank_every, self.max_traces = rerank_every, max_traces
        self.update_fraction = keras.Variable(high_percentage / 100, trainable=False,
                                              name="update_fraction")
        self.groups = _layer_groups(model)
        self.layer_saliency = keras.Variable(np.zeros(len(self.groups), "float32"),
                                             trainable=False, name="layer_saliency")
        self.mode: tuple | None = None  # None: full step that re-ranks layers
        self.traced_gradients: dict = {}
        self._functions: OrderedDict = OrderedDict()

    def percentage(self):
        frac = tf.clip_by_value(self.epoch / tf.maximum(self.epochs, 1.0), 0.0, 1.0)
        if self.schedule == "linear":
            return self.high - (self.high - self.low) * frac
        return self.high * (self.low / self.high) ** frac

    def _saliency(self, grad, var):
        return tf.abs(grad * var) if self.saliency == "grad_x_weight" else tf.abs(grad)

    # -- weight granularity -------------------------------------------------
    def _weight_step(self, x, y, sample_weight):
        variables = self.trainable_variables
        grads, y_pred = self._gradients(x, y, sample_weight, variables)
        keep = self.percentage() / 100.0
        masks = [_top_fraction(self._saliency(g, v), keep) for g, v in zip(grads, variables)]
        before = [tf.identity(v) for v in variables]
        self.optimizer.apply([g * tf.cast(m, g.dtype) for g, m in zip(grads, masks)], variables)
        for var, old, mask in zip(variables, before, masks):
            var.assign(tf.where(mask, var, old))
        self.update_fraction.assign(keep)
        return y_pred

    # -- layer granularity ----------------------------------------------------
    def _layer_step(self, x, y, sample_weight):
        chosen = range(len(self.groups)) if self.mode is None else self.mode
        variables = [v for i in chosen for v in self.groups[i][1]]
        self.traced_gradients[self.mode] = len(variables)
        grads, y_pred = self._gradients(x, y, sample_weight, variables)
        if self.mode is None:
            scores, start = [], 0
            for _, group in self.groups:
                part = [self._saliency(g, v) for g, v in
                        zip(grads[start:start + len(group)], group)]
                scores.append(tf.add_n([tf.reduce_mean(p) for p in part]) / len(part))
                start += len(group)
            self.layer_saliency.assign(tf.stack(scores))
        self.optimizer.apply(grads, variables)
        self.update_fraction.assign(len(chosen) / len(self.groups))
        return y_pred

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        step = self._weight_step if self.granularity == "weight" else self._layer_step
        y_pred = step(x, y, sample_weight)
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        logs["update_fraction"] = self.update_fraction
        return logs

    # -- switching traced functions (layer mode) -------------------------------
    def use_mode(self, mode: tuple | None) -> None:
        """Installs the train function for a layer selection (None: the full re-ranking step)."""
        self.mode = mode
        if mode in self._functions:
            self._functions.move_to_end(mode)
        else:
            self.train_function = None
            self.make_train_function(force=True)
            self._functions[mode] = self.train_function
            while len(self._functions) > self.max_traces + 1:
                self._functions.popitem(last=False)
        self.train_function = self._functions[mode]

    def select_layers(self) -> tuple:
        """The top k% of layers by the saliency measured at the last full step."""
        k = max(1, math.ceil(float(self.percentage()) / 100 * len(self.groups)))
        order = np.argsort(-np.asarray(self.layer_saliency.numpy()))
        return tuple(sorted(int(i) for i in order[:k]))

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        self._functions.clear()

    def fit(self, *args, callbacks=None, **kwargs):
        if self.granularity == "layer":
            callbacks = list(callbacks or []) + [_LayerRanker(self)]
        return super().fit(*args, callbacks=callbacks, **kwargs)


class _LayerRanker(keras.callbacks.Callback):
    def __init__(self, owner: RankedUpdates) -> None:
        super().__init__()
        self.owner = owner

    def on_train_begin(self, logs=None):
        self.step = 0
        self.owner.use_mode(None)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        owner = self.owner
        if self.step % owner.rerank_every == 0:
            owner.use_mode(None)
        elif owner.mode is None:
            owner.use_mode(owner.select_layers())


def _layer_groups(model: keras.Model) -> list:
    """Trainable variables grouped by the layer that owns them, in model order."""
    groups: OrderedDict = OrderedDict()
    for var in model.trainable_variables:
        groups.setdefault(var.path.rsplit("/", 1)[0], []).append(var)
    return list(groups.items())


def _top_fraction(score, keep):
    """Boolean mask of the `keep` fraction of entries with the highest score."""
    flat = tf.reshape(score, [-1])
    n = tf.size(flat)
    k = tf.clip_by_value(tf.cast(tf.math.ceil(keep * tf.cast(n, tf.float32)), tf.int32), 1, n)
    threshold = tf.sort(flat, direction="DESCENDING")[k - 1]
    return score >= threshold
