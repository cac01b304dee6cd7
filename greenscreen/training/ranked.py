"""Ranked ("feature-ranked") weight updates.

granularity="weight": each step, only the top k% most salient entries of each
variable (by |grad| or |grad x weight|) change. The *update* is masked, not
just the gradient: masked entries are restored after the optimizer step, so
Adam's momentum cannot move them. This saves no FLOPs; the full backward pass
still runs. It changes which weights learn, not what a step costs.

granularity="layer": every `rerank_every` steps one full step ranks layers by
mean gradient saliency; the other steps compute gradients only for the top k%
of layers. TensorFlow and XLA then skip the weight-gradient work of the
others, which is real compute saved. Each distinct layer selection is its own
traced function; at most `max_traces` are kept (least recently used first out).

freeze="bottom_up" (layer mode) trains the top k% of layers and freezes the
ones below, without ranking (FreezeOut's policy). The backward pass then stops
at the lowest trainable layer: TensorFlow's tape and `jax.grad` only propagate
towards the variables asked for, so no gradient below it is computed at all.

k decays from `high_percentage` towards `low_percentage`, which it reaches at the
end of the planned epochs, on a "linear" or "exponential" schedule. Logs gain
`update_fraction`. Runs on the TensorFlow and JAX backends.
"""

from __future__ import annotations

import contextlib
import math

import keras
import numpy as np
from keras import ops

from ..choices import FREEZE, GRANULARITY, SALIENCY
from ..validation import check_choice, check_integer, invalid
from .base import WrappedModel, batch_size_of, error_message, top_fraction
from .schedules import check_percentages


class RankedUpdates(WrappedModel):
    """Wraps a built model so each step updates only its most salient weights or layers.

    Args:
        model: A built Keras model.
        high_percentage, low_percentage: k at the first epoch and at the end of the
            planned epochs, in (0, 100]: epoch e of E trains at the schedule's value
            at e / E (`update_percentage`), so the last epoch, e = E - 1, is one
            step above `low_percentage` (50 -> 20 over 5 epochs: 50, 44, 38, 32, 26).
        schedule: "linear" or "exponential".
        saliency: "gradient" (|g|) or "grad_x_weight" (|g * w|).
        granularity: "weight" or "layer".
        rerank_every: Steps between layer re-rankings (layer mode), an integer >= 1.
        max_traces: Traced functions kept for layer selections (layer mode), an
            integer >= 1.
        freeze: Which layers a layer-mode step trains: "ranked" (the most salient
            k%) or "bottom_up" (the top k% in model order; the backward pass stops
            at the lowest of them).

    Example:

    ```python
    ranked = RankedUpdates(model, high_percentage=50, low_percentage=20,
                           granularity="layer")
    ranked.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    ranked.fit(x, y, epochs=5)            # logs gain `update_fraction`
    ```
    """

    def __init__(self, model: keras.Model, high_percentage: float = 50.0,
                 low_percentage: float = 20.0, schedule: str = "linear",
                 saliency: str = "gradient", granularity: str = "weight",
                 rerank_every: int = 50, max_traces: int = 8, freeze: str = "ranked",
                 name: str | None = None) -> None:
        reason = self.incompatibility(
            high_percentage=high_percentage, low_percentage=low_percentage, schedule=schedule,
            saliency=saliency, granularity=granularity, rerank_every=rerank_every,
            max_traces=max_traces, freeze=freeze)
        if reason is not None:
            raise ValueError(reason)
        super().__init__(model, name=name, max_modes=max_traces)
        self.high, self.low, self.schedule = high_percentage, low_percentage, schedule
        self.saliency, self.granularity = saliency, granularity
        self.rerank_every, self.max_traces, self.freeze = rerank_every, max_traces, freeze
        self.update_fraction = keras.Variable(high_percentage / 100, dtype="float32",
                                              trainable=False, name="update_fraction")
        if not model.trainable_variables:
            raise invalid("model", model.name, "a model with trainable variables to rank")
        self.groups = _layer_groups(model.trainable_variables)
        # One slot per layer that has variables, trainable now or not: a layer unfrozen
        # after wrapping is ranked from the next `compile`.
        self.layer_saliency = keras.Variable(
            np.zeros(len(_layer_groups(model.variables)), "float32"), trainable=False,
            name="layer_saliency")
        self.traced_gradients: dict = {}  # layer selection -> variables differentiated

    @staticmethod
    def incompatibility(*, high_percentage: float = 50.0, low_percentage: float = 20.0,
                        schedule: str = "linear", saliency: str = "gradient",
                        granularity: str = "weight", rerank_every: int = 50,
                        max_traces: int = 8, freeze: str = "ranked") -> str | None:
        """Why these settings cannot run, or None; needs no model.

        The constructor raises `ValueError` with this very message, so a sweep can
        skip an impossible combination before it builds anything.

        Args:
            high_percentage, low_percentage, schedule, saliency, granularity,
            rerank_every, max_traces, freeze: As for the constructor (same defaults).

        Returns:
            The first reason, in the library's template ("name=value is not valid;
            allowed: ..."), or None.

        Example:

        >>> RankedUpdates.incompatibility(granularity="weight", freeze="bottom_up")
        "freeze='bottom_up' is not valid with granularity='weight'; allowed: granularity='layer' (a whole layer is frozen or trained)."
        """  # noqa: E501
        return error_message(
            _check_settings, high_percentage=high_percentage, low_percentage=low_percentage,
            schedule=schedule, saliency=saliency, granularity=granularity,
            rerank_every=rerank_every, max_traces=max_traces, freeze=freeze)

    def percentage(self):
        frac = ops.clip(self.epoch / ops.maximum(self.epochs, 1.0), 0.0, 1.0)
        if self.schedule == "linear":
            return self.high - (self.high - self.low) * frac
        return self.high * (self.low / self.high) ** frac

    def _saliency(self, grad, var):
        return ops.abs(grad * var) if self.saliency == "grad_x_weight" else ops.abs(grad)

    # -- weight granularity -------------------------------------------------
    def _weight_step(self, x, y, sample_weight):
        variables = self.trainable_variables
        grads, y_pred, loss = self.gradients(x, y, sample_weight, variables)
        # A variable the loss does not reach has no gradient on TensorFlow (None): it is
        # left as it is, as Keras's own step leaves it.
        reached = [(g, v) for g, v in zip(grads, variables) if g is not None]
        grads, variables = [g for g, _ in reached], [v for _, v in reached]
        keep = self.percentage() / 100.0
        masks = [top_fraction(self._saliency(g, v), keep) for g, v in zip(grads, variables)]
        before = [ops.copy(v.value) for v in variables]
        self.optimizer.apply([g * ops.cast(m, g.dtype) for g, m in zip(grads, masks)],
                             variables)
        for var, old, mask in zip(variables, before, masks):
            var.assign(ops.where(mask, var.value, old))
        self.update_fraction.assign(keep)
        return y_pred, loss

    # -- layer granularity ----------------------------------------------------
    def _layer_step(self, x, y, sample_weight):
        chosen = range(len(self.groups)) if self.mode is None else self.mode
        variables = [v for i in chosen for v in self.groups[i][1]]
        self.traced_gradients[self.mode] = len(variables)
        grads, y_pred, loss = self.gradients(x, y, sample_weight, variables)
        if self.mode is None:
            scores, start = [], 0
            for _, group in self.groups:
                part = [ops.mean(self._saliency(g, v)) for g, v in
                        zip(grads[start:start + len(group)], group) if g is not None]
                scores.append(ops.sum(ops.stack(part)) / len(part) if part  # not reached:
                              else ops.zeros((), "float32"))  # no saliency
                start += len(group)
            unused = self.layer_saliency.shape[0] - len(scores)  # layers frozen now
            self.layer_saliency.assign(ops.pad(ops.stack(scores), [[0, unused]]))
        self.optimizer.apply(grads, variables)
        self.update_fraction.assign(len(chosen) / len(self.groups))
        return y_pred, loss

    def method_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        step = self._weight_step if self.granularity == "weight" else self._layer_step
        y_pred, loss = step(x, y, sample_weight)
        self.track_loss(loss, batch_size_of(x))
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        # A tensor, not the variable: on TensorFlow, run_eagerly=True could not log a variable
        logs["update_fraction"] = ops.copy(self.update_fraction.value)
        return logs

    def on_epoch_start(self, epoch: int) -> None:
        if self.freeze == "bottom_up":  # k follows the schedule; no ranking steps
            self.use_mode(self.select_layers())

    def select_layers(self) -> tuple:
        """The top k% of layers: by the saliency measured at the last full step, or, with
        freeze="bottom_up", the last k% in model order."""
        k = max(1, math.ceil(float(self.percentage()) / 100 * len(self.groups)))
        if self.freeze == "bottom_up":
            return tuple(range(len(self.groups) - k, len(self.groups)))
        saliency = keras.ops.convert_to_numpy(self.layer_saliency)[:len(self.groups)]
        order = np.argsort(-np.asarray(saliency))
        return tuple(sorted(int(i) for i in order[:k]))

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        """Keras's `compile`. The layers ranked are those trainable now, as a plain Keras
        model trains the layers trainable when it is compiled: a layer unfrozen (or
        frozen) after wrapping counts from here."""
        super().compile(optimizer=optimizer, loss=loss, **kwargs)
        self.groups = _layer_groups(self.inner.trainable_variables)
        self.traced_gradients = {}

    def fit(self, *args, callbacks=None, **kwargs):
        if self.granularity == "layer":
            callbacks = list(callbacks or []) + [_LayerRanker(self)]
            self._build_optimizer_for_every_variable()
        return super().fit(*args, callbacks=callbacks, **kwargs)

    def _build_optimizer_for_every_variable(self) -> None:
        """Builds the optimizer on all trainable variables before a step updates a subset.

        TensorFlow builds it at the first step otherwise, on the variables that step
        applies: with freeze="bottom_up" only the top layers', and then `use_ema` failed at
        the end of `fit`, overwriting every variable with averages kept for a few."""
        if self.optimizer is None or self.optimizer.built:
            return
        strategy = getattr(self, "distribute_strategy", None)  # TensorFlow's trainer only
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            self.optimizer.build(self.trainable_variables)


def _check_settings(high_percentage, low_percentage, schedule, saliency, granularity,
                    rerank_every, max_traces, freeze) -> None:
    check_percentages(high_percentage, low_percentage, schedule)
    check_choice("saliency", saliency, SALIENCY)
    check_choice("granularity", granularity, GRANULARITY)
    check_choice("freeze", freeze, FREEZE)
    if freeze == "bottom_up" and granularity != "layer":
        raise ValueError(f"freeze='bottom_up' is not valid with granularity={granularity!r}; "
                         "allowed: granularity='layer' (a whole layer is frozen or trained).")
    check_integer("rerank_every", rerank_every, low=1)
    check_integer("max_traces", max_traces, low=1)


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
        if owner.freeze == "bottom_up":
            return
        if self.step % owner.rerank_every == 0:
            owner.use_mode(None)
        elif owner.mode is None:
            # `self.model` brings the JAX state back into the variables, so the
            # saliency of the ranking step just run can be read.
            self.model.use_mode(self.model.select_layers())


def _layer_groups(variables: list) -> list:
    """`variables` grouped by the layer that owns them, in model order."""
    groups: dict = {}
    for var in variables:
        groups.setdefault(var.path.rsplit("/", 1)[0], []).append(var)
    return list(groups.items())
