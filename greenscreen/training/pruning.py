"""Gradual magnitude pruning for Keras 3 models (Zhu & Gupta, 2017).

tensorflow-model-optimization cannot prune Keras 3 models; this does it with
Keras 3 alone. Every `frequency` steps between `begin_step` and `end_step` the
smallest-magnitude weights of each kernel are masked so that the kernel's
sparsity follows s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3; after every
optimizer step the masks are applied again, so pruned weights stay zero even
though the optimizer's momentum would move them.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile

import keras
import numpy as np
from keras import ops

from ..validation import invalid
from .base import WrappedModel, batch_size_of, error_message, kernels, magnitude_threshold
from .schedules import check_sparsity_schedule


class MagnitudePruning(WrappedModel):
    """Wraps a built model; train it with `fit` as usual, then `strip_pruning`.

    Args:
        model: A built Keras model.
        final_sparsity: Target fraction of zero weights per kernel, in [0, 1).
        initial_sparsity: Sparsity at `begin_step`, in [0, `final_sparsity`].
        begin_step, end_step: Optimizer steps over which sparsity ramps up: integers
            with 0 <= begin_step < end_step (Python's or NumPy's; no floats, no inf).
            With `gradient_accumulation_steps`, an optimizer step is one update (as
            `optimizer.iterations` counts them), not one batch.
        frequency: Optimizer steps between mask updates, an integer >= 1. The masks
            are also updated at `end_step`, so the kernels reach `final_sparsity`
            there whatever the frequency.

    Example:

    ```python
    pruned = MagnitudePruning(model, final_sparsity=0.9, end_step=2000)
    pruned.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    pruned.fit(x, y, epochs=10)           # logs gain `sparsity`
    plain = strip_pruning(pruned)         # an ordinary Keras model
    ```
    """

    def __init__(self, model: keras.Model, final_sparsity: float = 0.9,
                 initial_sparsity: float = 0.0, begin_step: int = 0, end_step: int = 1000,
                 frequency: int = 100, name: str | None = None) -> None:
        reason = self.incompatibility(
            final_sparsity=final_sparsity, initial_sparsity=initial_sparsity,
            begin_step=begin_step, end_step=end_step, frequency=frequency)
        if reason is not None:
            raise ValueError(reason)
        super().__init__(model, name=name)
        self.final_sparsity, self.initial_sparsity = final_sparsity, initial_sparsity
        self.begin_step, self.end_step, self.frequency = begin_step, end_step, frequency
        # Every kernel, a frozen layer's too: which are pruned is decided when the step is
        # traced (`compile`), as Keras decides what trains, so a layer frozen after
        # wrapping is left alone and one unfrozen is pruned.
        self.pruned = kernels(model, frozen=True)
        if not self.pruned:  # frozen ones count: unfrozen, they are pruned
            raise invalid("model", model.name, "a model with at least one weight matrix or "
                          "convolution kernel to prune (Dense, Conv, ...)")
        self.masks = [keras.Variable(np.ones(v.shape, dtype=v.dtype), trainable=False,
                                     name=f"mask_{i}") for i, v in enumerate(self.pruned)]

    @staticmethod
    def incompatibility(*, final_sparsity: float = 0.9, initial_sparsity: float = 0.0,
                        begin_step: int = 0, end_step: int = 1000,
                        frequency: int = 100) -> str | None:
        """Why these settings cannot run, or None; needs no model.

        The constructor raises `ValueError` with this very message.

        Args:
            final_sparsity, initial_sparsity, begin_step, end_step, frequency: As for
                the constructor (same defaults).

        Returns:
            The first reason, in the library's template ("name=value is not valid;
            allowed: ..."), or None.
        """
        return error_message(
            check_sparsity_schedule, initial_sparsity=initial_sparsity,
            final_sparsity=final_sparsity, begin_step=begin_step, end_step=end_step,
            frequency=frequency)

    def target_sparsity(self, step):
        t = ops.cast(step, "float32")
        frac = ops.clip((t - self.begin_step) / (self.end_step - self.begin_step), 0, 1)
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * (1 - frac) ** 3

    def _new_masks(self, step) -> list:
        sparsity = self.target_sparsity(step)
        masks = []
        for var, mask in zip(self.pruned, self.masks):
            if not var.trainable:  # frozen: its mask as it was (read when traced)
                masks.append(mask.value)
                continue
            magnitude = ops.reshape(ops.abs(var.value), (-1,))
            k = ops.cast(ops.round(sparsity * int(magnitude.shape[0])), "int32")
            masks.append(ops.cast(ops.abs(var.value) > magnitude_threshold(magnitude, k),
                                  mask.dtype))
        return masks

    def apply_masks(self):
        for var, mask in self._prunable():
            var.assign(var.value * ops.cast(mask.value, var.dtype))

    def _prunable(self) -> list:
        """(kernel, mask) of each kernel that trains now: a frozen layer is left alone."""
        return [(var, mask) for var, mask in zip(self.pruned, self.masks) if var.trainable]

    def fit(self, *args, **kwargs):
        """Keras's `fit`; the masks are applied again when it ends: with an optimizer's
        `use_ema`, Keras overwrites the weights with their moving averages as fit ends,
        which the masks never touched, and every pruned weight came back."""
        try:
            result = super().fit(*args, **kwargs)
        except BaseException:
            # Not over the fit's own error: a JAX fit that raised leaves the variables
            # without values, and masking them then raised a TypeError in its place.
            with contextlib.suppress(Exception):
                self.apply_masks()
            raise
        self.apply_masks()
        return result

    def sparsity(self):
        """Fraction of pruned (masked) entries over the kernels that train now."""
        masks = [m for _, m in self._prunable()]
        zeros = sum(ops.sum(1.0 - ops.cast(m.value, "float32")) for m in masks)
        total = float(sum(int(np.prod(m.shape)) for m in masks))
        return zeros / total if total else ops.zeros((), "float32")

    def method_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.trainable_variables
        grads, y_pred, loss = self.gradients(x, y, sample_weight, variables)
        self.optimizer.apply(grads, variables)
        # A tensor, not a variable, under gradient accumulation (Keras counts the updates
        # then as its micro-steps // gradient_accumulation_steps): read it either way.
        step = ops.convert_to_tensor(self.optimizer.iterations)
        due = ops.logical_and(step >= self.begin_step, step <= self.end_step)
        # Every `frequency` steps, and at `end_step` itself: without it a schedule whose
        # length is not a multiple of `frequency` stopped short of final_sparsity, and
        # one shorter than `frequency` never pruned at all.
        on_beat = ops.logical_or((step - self.begin_step) % self.frequency == 0,
                                 step == self.end_step)
        due = ops.logical_and(due, on_beat)
        # The branch returns the masks instead of assigning them, so it is a pure
        # function that both tf.cond and lax.cond can take.
        new = ops.cond(due, lambda: self._new_masks(step), lambda: [m.value for m in self.masks])
        for mask, value in zip(self.masks, new):
            mask.assign(value)
        self.apply_masks()
        self.track_loss(loss, batch_size_of(x))
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        logs["sparsity"] = self.sparsity()
        return logs


def strip_pruning(model: MagnitudePruning) -> keras.Model:
    """Returns the plain inner model, masks applied, with no pruning machinery."""
    if not isinstance(model, MagnitudePruning):
        raise invalid("model", type(model).__name__, "a MagnitudePruning")
    model.apply_masks()
    return model.inner


def weights_gzip_bytes(model: keras.Model) -> int:
    """Size of the model's saved weights (`.weights.h5`) after gzip, in bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.weights.h5")
        model.save_weights(path)
        with open(path, "rb") as fh:
            return len(gzip.compress(fh.read(), compresslevel=9, mtime=0))
