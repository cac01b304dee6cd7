"""A Keras model that wraps the user's model and replaces its train step.

`fit`, `evaluate`, `predict` and every callback work as usual; the wrapper
keeps an `epoch` and `epochs` variable up to date (non-trainable Keras
variables, so compiled train steps read them without retracing).
"""

from __future__ import annotations

import keras
import tensorflow as tf


class _EpochTracker(keras.callbacks.Callback):
    def __init__(self, owner: "WrappedModel") -> None:
        super().__init__()
        self.owner = owner

    def on_train_begin(self, logs=None):
        self.owner.epochs.assign(float(self.params.get("epochs") or 1))

    def on_epoch_begin(self, epoch, logs=None):
        self.owner.epoch.assign(float(epoch))


class WrappedModel(keras.Model):
    """Base class: `call` delegates to `model`; subclasses define `train_step`."""

    def __init__(self, model: keras.Model, name: str | None = None) -> None:
        super().__init__(name=name)
        if not model.built:
            raise ValueError(
                f"model={model.name!r} is not valid; allowed: a built model "
                "(start it with keras.Input(...) or call it once on data).")
        self.inner = model
        self.epoch = keras.Variable(0.0, trainable=False, name="epoch")
        self.epochs = keras.Variable(1.0, trainable=False, name="epochs")

    def call(self, inputs, training=None):
        return self.inner(inputs, training=training)

    def fit(self, *args, callbacks=None, **kwargs):
        callbacks = list(callbacks or []) + [_EpochTracker(self)]
        return super().fit(*args, callbacks=callbacks, **kwargs)

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        super().compile(optimizer=optimizer, loss=loss, **kwargs)
        self._loss_arg = loss

    def _gradients(self, x, y, sample_weight, variables):
        """Forward + backward, the Keras 3 way (loss scaling for mixed precision)."""
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                     training=True)
            scaled = self.optimizer.scale_loss(loss)
        return tape.gradient(scaled, variables), y_pred

    def per_sample_loss(self, y, y_pred):
        """The compiled loss without reduction: one value per sample."""
        loss = self._loss_arg
        if isinstance(loss, keras.losses.Loss):
            return loss.call(y, y_pred)
        fn = keras.losses.get(loss)
        if fn is None or isinstance(fn, keras.losses.Loss):
            raise ValueError(f"loss={loss!r} is not valid here; allowed: a loss name "
                             "(e.g. 'sparse_categorical_crossentropy') or a keras Loss")
        return fn(y, y_pred)


def kernels(model: keras.Model) -> list:
    """Weight matrices and convolution kernels (not biases, norms or embeddings' tables)."""
    return [v for v in model.trainable_variables
            if v.path.endswith("kernel") and len(v.shape) >= 2]


def magnitude_threshold(values, k):
    """Smallest t with at least `k` entries of `values` (>= 0) at or below it; -1 if k == 0.

    Found by 24 halvings of [0, max] instead of a sort: XLA on CPU runs tf.sort
    inside a train step about 100x slower than these 24 counting passes.
    """
    lo, hi = tf.zeros([], values.dtype), tf.reduce_max(values)
    for _ in range(24):
        mid = (lo + hi) / 2
        enough = tf.reduce_sum(tf.cast(values <= mid, tf.int32)) >= k
        hi, lo = tf.where(enough, mid, hi), tf.where(enough, lo, mid)
    return tf.where(k > 0, hi, tf.constant(-1.0, values.dtype))
