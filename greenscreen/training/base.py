"""A Keras model that wraps the user's model and replaces its train step.

`fit`, `evaluate`, `predict` and every callback work as usual; the wrapper
keeps an `epoch` and `epochs` variable up to date (non-trainable Keras
variables, so compiled train steps read them without retracing).

A method subclass writes `method_step(data)` once, statefully, in `keras.ops`;
`_steps` runs it inside the active backend's train step, and `self.gradients`
is the only backend-specific call it makes.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Callable

import keras
from keras import ops

from ..validation import invalid
from . import _steps

SUPPORTED_BACKENDS = ("tensorflow", "jax")


def backend_unsupported(method: str = "This method", *, backend: str | None = None,
                        loss_scaling: bool = False) -> str | None:
    """Why a training method cannot run on a Keras backend, or None; needs no model.

    The methods' one place for this rule: their constructors (and `compile`, for
    loss scaling) raise `NotImplementedError` with the same message.

    Args:
        method: What the message names, e.g. "RankedUpdates" or "method ranked".
        backend: A Keras backend name; default: the active one.
        loss_scaling: Whether training uses float16 loss scaling (the
            "mixed_float16" dtype policy or a `keras.optimizers.LossScaleOptimizer`).

    Returns:
        The reason, or None when the method runs there.

    Example:

    >>> backend_unsupported("RankedUpdates", backend="torch")  # doctest: +ELLIPSIS
    "RankedUpdates runs on the Keras backends tensorflow, jax; KERAS_BACKEND is 'torch'. ..."
    """
    backend = keras.backend.backend() if backend is None else backend
    if backend not in SUPPORTED_BACKENDS:
        return (f"{method} runs on the Keras backends {', '.join(SUPPORTED_BACKENDS)}; "
                f"KERAS_BACKEND is {backend!r}. Set KERAS_BACKEND=jax or tensorflow before "
                "importing keras (the callbacks, SMICallback included, work on every backend).")
    if loss_scaling and backend == "jax":
        # LossScaleOptimizer.apply() assigns inside ops.cond: that leaks tracers in a JAX step.
        return (f"{method} on JAX does not support float16 loss scaling (the 'mixed_float16' "
                "dtype policy or a LossScaleOptimizer): Keras's LossScaleOptimizer updates its "
                "state inside a conditional that the method's train step cannot trace; use "
                "'mixed_bfloat16', which needs no loss scaling, or the tensorflow backend")
    return None


def error_message(check: Callable[..., None], **settings) -> str | None:
    """The message of the ValueError `check(**settings)` raises, or None: how a method's
    `incompatibility` reuses the checks its constructor makes."""
    try:
        check(**settings)
    except ValueError as exc:
        return str(exc)
    return None


class _EpochTracker(keras.callbacks.Callback):
    def __init__(self, owner: "WrappedModel") -> None:
        super().__init__()
        self.owner = owner

    def on_train_begin(self, logs=None):
        self.owner.epochs.assign(float(self.params.get("epochs") or 1))

    def on_epoch_begin(self, epoch, logs=None):
        self.owner.epoch.assign(float(epoch))
        self.owner.on_epoch_start(epoch)


class WrappedModel(keras.Model):
    """Base class: `call` delegates to `model`; subclasses define `method_step`.

    A subclass whose step has several shapes (a layer selection, a warm-up
    epoch on full batches) calls `use_mode(key)`: each mode is its own traced
    train function, at most `max_modes` of them kept (least recently used out),
    so every step is a static-shape program that XLA and `jax.jit` compile.
    """

    def __init__(self, model: keras.Model, name: str | None = None,
                 max_modes: int = 8) -> None:
        reason = backend_unsupported(type(self).__name__)
        if reason is not None:
            raise NotImplementedError(reason)
        self._step = _steps.for_backend()
        super().__init__(name=name)
        if not isinstance(model, keras.layers.Layer) or not model.built:
            shown = model.name if isinstance(model, keras.layers.Layer) else (
                None if model is None else type(model).__name__)
            raise invalid("model", shown, "a built model (start it with "
                          "keras.Input(...) or call it once on data)")
        self.inner = model
        # Its outputs' names, which Keras logs each output's loss and metrics under
        # ("a_loss"): without them it named them after the loss, and two outputs with the
        # same loss logged one
        self.output_names = getattr(model, "output_names", None)
        # Built as its model is: BackupAndRestore (and load_weights) refuse an unbuilt
        # model, and TensorFlow's trainer would build this one only at the first step.
        self.built = True
        self.epoch = keras.Variable(0.0, dtype="float32", trainable=False, name="epoch")
        self.epochs = keras.Variable(1.0, dtype="float32", trainable=False, name="epochs")
        self.mode = None
        self.max_modes = max_modes
        self._functions: OrderedDict = OrderedDict()

    def call(self, inputs, training=None):
        return self.inner(inputs, training=training)

    def fit(self, *args, callbacks=None, **kwargs):
        callbacks = list(callbacks or [])
        for callback in callbacks:  # before training, not at the first epoch's end
            if isinstance(callback, keras.callbacks.ModelCheckpoint) and \
                    not callback.save_weights_only:
                raise ValueError(self._not_saved_whole(
                    "ModelCheckpoint(save_weights_only=False)", "pass save_weights_only=True "
                    "(the weights, which load_weights restores into a model wrapped alike)"))
        return super().fit(*args, callbacks=callbacks + [_EpochTracker(self)], **kwargs)

    def get_config(self) -> dict:
        raise NotImplementedError(self._not_saved_whole(
            "get_config(), so save() and ModelCheckpoint", "save its weights (save_weights) "
            "or the trained model itself (`.inner`, after strip_pruning for pruning)"))

    def _not_saved_whole(self, what: str, instead: str) -> str:
        """Why this wrapper cannot be saved as a whole model, and what to do instead."""
        return (f"{what}: a {type(self).__name__} cannot be saved as a whole .keras model "
                f"(its training method's state is not serialisable); {instead}")

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        super().compile(optimizer=optimizer, loss=loss, **kwargs)
        reason = backend_unsupported(type(self).__name__, loss_scaling=isinstance(
            self.optimizer, keras.optimizers.LossScaleOptimizer))
        if reason is not None:
            raise NotImplementedError(reason)
        self._loss_arg = loss
        self._functions.clear()

    def train_step(self, *args):
        return self._step.train_step(self, *args)

    def method_step(self, data):
        raise NotImplementedError

    def on_epoch_start(self, epoch: int) -> None:
        """Hook for a subclass that switches modes at epoch boundaries."""

    def gradients(self, x, y, sample_weight, variables):
        """Forward + backward on the active backend: (gradients, y_pred, unscaled loss)."""
        return self._step.gradients(self, x, y, sample_weight, variables)

    def track_loss(self, loss, batch_size) -> None:
        # Keras's own trainers feed the "loss" entry of the logs this way.
        self._loss_tracker.update_state(loss, sample_weight=batch_size)

    def use_mode(self, mode) -> None:
        """Installs the train function traced for `mode`, tracing it the first time."""
        self.mode = mode
        if mode in self._functions:
            self._functions.move_to_end(mode)
        else:
            self.train_function = None
            # A distinct callable per mode: jax.jit caches traces by function, and the
            # bound method `self.train_step` compares equal across modes, so without
            # this every mode would silently reuse the first mode's trace.
            self.train_step = functools.partial(type(self).train_step, self)
            self.make_train_function(force=True)
            self._functions[mode] = self.train_function
            while len(self._functions) > self.max_modes + 1:
                self._functions.popitem(last=False)
        self.train_function = self._functions[mode]

    def per_sample_loss(self, y, y_pred):
        """The compiled loss without reduction: one value per sample. Labels and outputs
        are brought to one rank first, as the compiled loss does (a `Dense(1)` output with
        labels of shape (N,)): called bare, a loss function refused them."""
        loss = self._loss_arg
        fn = loss if isinstance(loss, keras.losses.Loss) else keras.losses.get(loss)
        if not callable(fn):
            raise ValueError(f"loss={loss!r} is not valid here; allowed: a loss name or "
                             "class name (e.g. 'sparse_categorical_crossentropy'), a keras "
                             "Loss or a loss function")
        y, y_pred = same_rank(y, y_pred)
        return fn.call(y, y_pred) if isinstance(fn, keras.losses.Loss) else fn(y, y_pred)


def same_rank(y, y_pred):
    """Keras's rule for a loss's labels and outputs whose ranks differ by one: the side
    with a last axis of size 1 loses it, or the rank-1 side gains one (so (N,) labels
    meet (N, 1) outputs as (N, 1)). Keras keeps the rule private
    (`squeeze_or_expand_to_same_rank`)."""
    rank_y, rank_pred = len(y.shape), len(y_pred.shape)
    if rank_y == rank_pred + 1 and y.shape[-1] == 1:
        if rank_pred == 1:
            return y, ops.expand_dims(y_pred, -1)
        return ops.squeeze(y, -1), y_pred
    if rank_pred == rank_y + 1 and y_pred.shape[-1] == 1:
        if rank_y == 1:
            return ops.expand_dims(y, -1), y_pred
        return y, ops.squeeze(y_pred, -1)
    return y, y_pred


def batch_size_of(x):
    """The batch size of `x`: an array, or a model's several inputs (a list, tuple or
    dict of arrays), whose first array it reads; `ops.shape(x)[0]` failed on a dict and
    gave a list's length. A Python int where the shape is static (every backend's
    arrays, a traced tensor of known batch), so that a size worked out from it (gating's
    sub-batch) is static too; else a tensor (TensorFlow, a batch of None when traced)."""
    first = keras.tree.flatten(x)[0]
    return first.shape[0] if first.shape[0] is not None else ops.shape(first)[0]


def kernels(model: keras.Model, frozen: bool = False) -> list:
    """Weight matrices and convolution kernels (not biases, norms or embeddings' tables):
    the trainable ones, or with `frozen` those of layers frozen now too."""
    return [v for v in (model.weights if frozen else model.trainable_variables)
            if v.path.endswith("kernel") and len(v.shape) >= 2]


def magnitude_threshold(values, k):
    """Smallest t with at least `k` entries of `values` (>= 0) at or below it; -1 if k == 0.

    Found by 24 halvings of [0, max] instead of a sort: XLA on CPU runs a sort
    inside a train step about 100x slower than these 24 counting passes, and
    the loop has a static length, so it compiles on every backend.
    """
    lo, hi = ops.zeros((), values.dtype), ops.max(values)
    for _ in range(24):
        mid = (lo + hi) / 2
        enough = ops.sum(ops.cast(values <= mid, "int32")) >= k
        hi, lo = ops.where(enough, mid, hi), ops.where(enough, lo, mid)
    return ops.where(k > 0, hi, ops.cast(-1.0, values.dtype))


def top_fraction(score, keep):
    """Boolean mask of (about) the `keep` fraction of entries with the highest score.

    At most ceil(keep * n) entries are kept: the others are the entries at or
    below a bisection threshold, as in `magnitude_threshold` (ties at the
    threshold drop out together, so a few fewer may be kept).
    """
    # Tied to `keep` (traced in a train step): a score XLA can fold to a constant (JAX's
    # gradient of a variable the loss does not reach is a constant zero) failed to compile
    # on CPU ("Unknown MLIR failure") when the bisection was folded with it.
    flat = ops.reshape(score, (-1,)) + ops.cast(keep, score.dtype) * 0
    n = int(flat.shape[0])
    kept = ops.clip(ops.cast(ops.ceil(keep * n), "int32"), 1, n)
    return score > magnitude_threshold(flat, n - kept)
