"""Sample gating (Adaptive Sparse Training) with a PI-controlled threshold.

Each step, a cheap inference-mode pass (`training=False`, so BatchNorm
statistics are not updated twice) scores every sample:
    score = 0.7 * loss / mean(loss) + 0.3 * std(x) / mean(std(x)),
divided by the batch maximum and clipped to [0, 1]. A PI controller moves the
threshold so that the EMA of the share of samples scoring at or above it (the
activation rate) tracks `target_rate`.

The trained sub-batch has a fixed size, k = ceil(target_rate * batch), so every
step has static shapes and compiles under XLA and `jax.jit`: the k best-scoring
samples are gathered, and those below the threshold get weight 0 (the others
share the loss equally). If nothing passes, the `min_samples` best are trained.
`selector="random"` trains k random samples: the control arm without which no
savings claim means anything. Runs on the TensorFlow and JAX backends.

`scoring="stale"` drops the scoring pass (Selective Backprop's stale variant,
Jiang et al. 2019): a sample's loss term is the one it had the last time it was
trained or scored, kept per sample index; the input-spread term never changes.
Unseen samples are scored once (a scoring pass runs only for batches that hold
one), and every `refresh_every` epochs one epoch scores every batch afresh. The
data must then carry each sample's index: `fit(with_indices(x), y)`.
"""

from __future__ import annotations

from fractions import Fraction

import keras
import numpy as np
from keras import ops

from ..choices import SCORING, SELECTORS
from ..validation import check_choice, check_integer, invalid
from .base import WrappedModel, batch_size_of, error_message
from .controllers import CONTROLLERS, ASTController, PIController, check_gains

__all__ = ["ASTController", "PIController", "SampleGating", "significance", "with_indices"]


def with_indices(x):
    """`(x, indices)` for `SampleGating(scoring="stale").fit`: sample i carries index i.

    `x` may be a model's several inputs (a list, tuple or dict of arrays): the indices
    count the samples of its first array, not the inputs."""
    first = keras.tree.flatten(x)[0]
    return x, np.arange(len(first), dtype="int32")


def _carries_indices(inputs, model: keras.Model) -> bool:
    """Whether `inputs` is `(x, indices)` rather than the inputs of a two-input model."""
    if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
        return False
    model_inputs = getattr(model, "inputs", None) or ()  # a subclassed model has none
    return isinstance(inputs[0], (tuple, list, dict)) or len(model_inputs) != 2


def _without_indices(x) -> str:
    """The error for stale scoring fed inputs without their indices: what came, what to do."""
    if isinstance(x, (tuple, list, dict)):
        given = f"a {type(x).__name__} of {len(x)} inputs"
    elif hasattr(x, "shape"):
        given = f"one array of shape {tuple(x.shape)}"
    else:
        given = type(x).__name__
    return ("SampleGating(scoring='stale') needs each sample's index with its inputs, "
            f"x = (inputs, indices); got x as {given}. Wrap x with "
            "greenscreen.training.with_indices(x): fit(with_indices(x), y) (a dataset or "
            "generator yields ((x, indices), y)).")


def _check_index_shape(indices) -> None:
    """Raises unless `indices` holds one integer per sample: shape (batch,) or (batch, 1)."""
    dtype, shape = keras.backend.standardize_dtype(indices.dtype), tuple(indices.shape)
    if "int" not in dtype or len(shape) not in (1, 2) or shape[1:] not in ((), (1,)):
        raise ValueError(
            "SampleGating(scoring='stale') reads x as (inputs, indices), one integer index "
            f"per sample; got indices of dtype {dtype} and shape {shape}. Wrap x with "
            "greenscreen.training.with_indices(x): fit(with_indices(x), y).")


def _check_index_range(indices, num_samples: int) -> None:
    """Raises unless every index is in [0, num_samples): the stale memory's rows."""
    indices = np.asarray(indices)
    _check_index_shape(indices)
    if indices.size and (indices.min() < 0 or indices.max() >= num_samples):
        raise ValueError(
            f"num_samples={num_samples} but the data has {len(indices)} samples, with "
            f"indices {indices.min()} to {indices.max()}: stale scoring keeps one loss per "
            f"sample at its index, so every index must be in [0, {num_samples}); construct "
            "SampleGating with num_samples=len(x) and fit(with_indices(x), y).")


def significance(per_sample_loss, x):
    """The AST score, normalised to [0, 1] within the batch.

    With several inputs the spread term is the mean over inputs of each input's
    spread relative to its batch mean (one input: exactly the study's term)."""
    relative = []
    for array in keras.tree.flatten(x):
        axes = tuple(range(1, len(array.shape)))
        spread = ops.std(ops.cast(array, "float32"), axis=axes)
        relative.append(spread / (ops.mean(spread) + 1e-8))
    loss = ops.cast(per_sample_loss, "float32")
    score = 0.7 * loss / (ops.mean(loss) + 1e-8) + 0.3 * sum(relative) / len(relative)
    return ops.clip(score / (ops.max(score) + 1e-8), 0.0, 1.0)


def _check_one_row_per_sample(model: keras.Model) -> None:
    """Gating scores and weights whole samples: a model whose output is per timestep or
    per pixel ((batch, steps, classes), (batch, H, W, classes)) is refused here rather
    than at its first step. (A subclassed model's outputs are seen only then.)"""
    try:
        shapes = [tuple(o.shape) for o in keras.tree.flatten(model.outputs)]
    except (AttributeError, ValueError, TypeError):  # a subclassed model: no `outputs`
        return
    deep = [s for s in shapes if len(s) > 2]
    if deep:
        raise invalid("model", f"<{model.name}: output shaped {deep[0]}>",
                      "a model with one output row per sample, (batch, classes) or "
                      "(batch, 1): SampleGating trains a share of the samples, so per-"
                      "timestep or per-pixel outputs are not supported")


def _take(structure, slots):
    """The rows `slots` of every array of `structure` (one array or several inputs)."""
    return keras.tree.map_structure(lambda a: ops.take(a, slots, axis=0), structure)


def sub_batch_size(batch, rate: float):
    """k = ceil(rate * batch), at least 1: a Python int when the batch size is static.

    In integers, with the rate as a fraction (denominator at most 10^4), so that k is the
    same whether the batch is static (JAX) or a tensor (TensorFlow's last, partial
    batch): in float32, 0.3 x 100 was 30.000001, which ceil made 31."""
    ratio = Fraction(rate).limit_denominator(10**4)
    num, den = ratio.numerator, ratio.denominator
    if isinstance(batch, int):
        return max(1, -(-batch * num // den))
    batch = ops.cast(batch, "int32")  # batch x num stays below 2^31 up to 214k samples
    return ops.maximum(1, (batch * num + den - 1) // den)


class SampleGating(WrappedModel):
    """Trains each step only on the samples that matter most (or, as a control, random ones).

    Args:
        model: A built Keras model.
        target_rate: Share of samples to train on, in (0, 1].
        selector: "significance" (PI-controlled threshold) or "random".
        warmup_epochs: Full-batch epochs before gating starts, an integer >= 0.
        controller: "pi" (positional PI with anti-windup, the default) or "ast"
            (the AST study's incremental form, `ASTController`).
        kp, ki: The controller's gains, finite and >= 0 (a positive error, too many
            samples passing, must raise the threshold; 0 switches a term off);
            None takes the chosen controller's defaults.
        ema: The controller's EMA coefficient (the weight of the old value), in
            [0, 1); None takes the chosen controller's default.
        min_samples: Best-scoring samples trained when nothing passes the threshold,
            an integer >= 1.
        seed: Seed of the random selection (and of the fallback's tie-breaking).
        scoring: "full" (a scoring pass every step) or "stale" (remembered losses;
            needs `num_samples` and `fit(with_indices(x), y)`).
        num_samples: Size of the training set (stale scoring keeps one loss each),
            an integer >= 1, or None (needed by `scoring="stale"`). Every index
            given with x must lie in [0, num_samples). `fit` checks this on arrays
            before training; the indices a `tf.data.Dataset`, generator or
            `PyDataset` yields are not checked (reading them would cost a host
            transfer per step): one out of range fails the step on TensorFlow on
            CPU, while JAX goes on, silently mixing up remembered losses. Inputs
            without indices, or indices that are not one integer per sample,
            raise `ValueError` at the first step, whatever the data source.
        refresh_every: Stale scoring: every this many gated epochs, one epoch
            scores afresh (0: never); an integer >= 0.

    Integers may be Python's or NumPy's (`np.int64(2)`); floats such as 2.5 or 2.0
    are refused for them, as bools are.

    Logs `activation_rate` (this step's share passing the threshold, or k/batch
    for random selection), `threshold` and `samples_trained` (cumulative).
    `loss` is the trained sub-batch's loss; `accuracy`-style metrics come from
    the scoring pass over the whole batch (random selection: the sub-batch).

    Example:

    ```python
    gated = SampleGating(model, target_rate=0.3, warmup_epochs=1)
    gated.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    gated.fit(x, y, epochs=5, batch_size=128)   # logs gain `activation_rate`, ...
    ```
    """

    def __init__(self, model: keras.Model, target_rate: float = 0.3,
                 selector: str = "significance", warmup_epochs: int = 0,
                 kp: float | None = None, ki: float | None = None, ema: float | None = None,
                 min_samples: int = 2, seed: int | None = None, controller: str = "pi",
                 scoring: str = "full", num_samples: int | None = None,
                 refresh_every: int = 0, name: str | None = None) -> None:
        reason = self.incompatibility(
            target_rate=target_rate, selector=selector, warmup_epochs=warmup_epochs,
            min_samples=min_samples, controller=controller, scoring=scoring,
            refresh_every=refresh_every, kp=kp, ki=ki, ema=ema)
        if reason is not None:
            raise ValueError(reason)
        check_integer("num_samples", num_samples, low=1, allow_none=True)
        if scoring == "stale" and num_samples is None:
            raise ValueError(f"scoring='stale' needs selector='significance' and num_samples, "
                             f"the training set's size; got num_samples={num_samples!r}")
        _check_one_row_per_sample(model)
        super().__init__(model, name=name)
        self.scoring, self.refresh_every, self.num_samples = scoring, refresh_every, num_samples
        # Stale scoring's memory: the last loss of each sample, -1 while unseen.
        self.loss_memory = keras.Variable(
            ops.full((num_samples if scoring == "stale" else 1,), -1.0), dtype="float32",
            trainable=False, name="loss_memory")
        self.target_rate, self.selector = target_rate, selector
        self.warmup_epochs, self.min_samples = warmup_epochs, min_samples
        gains = {k: v for k, v in (("kp", kp), ("ki", ki), ("ema", ema)) if v is not None}
        self.controller = CONTROLLERS[controller](target_rate, **gains)
        self.controller_state = self.controller.variables  # tracked: part of the JAX state
        self.samples_trained = keras.Variable(0.0, dtype="float32", trainable=False,
                                              name="samples_trained")
        self.seed_generator = keras.random.SeedGenerator(seed)

    @staticmethod
    def incompatibility(*, target_rate: float = 0.3, selector: str = "significance",
                        warmup_epochs: int = 0, min_samples: int = 2, controller: str = "pi",
                        scoring: str = "full", refresh_every: int = 0,
                        kp: float | None = None, ki: float | None = None,
                        ema: float | None = None) -> str | None:
        """Why these settings cannot run, or None; needs no model (nor data).

        The constructor raises `ValueError` with this very message, so a sweep can
        skip an impossible combination before it builds anything. (With
        `scoring="stale"` the constructor also needs `num_samples`, the size of the
        data, which is not a setting.)

        Args:
            target_rate, selector, warmup_epochs, min_samples, controller, scoring,
            refresh_every, kp, ki, ema: As for the constructor (same defaults).

        Returns:
            The first reason, in the library's template ("name=value is not valid;
            allowed: ..."), or None.

        Example:

        >>> SampleGating.incompatibility(selector="random", scoring="stale")
        "scoring='stale' is not valid with selector='random'; allowed: selector='significance' (stale scoring remembers significance scores)."
        """  # noqa: E501
        return error_message(
            _check_settings, target_rate=target_rate, selector=selector,
            warmup_epochs=warmup_epochs, min_samples=min_samples, controller=controller,
            scoring=scoring, refresh_every=refresh_every, kp=kp, ki=ki, ema=ema)

    def call(self, inputs, training=None):
        # Keras calls the model on a training batch's x to build its metrics (JAX), and
        # users may predict on with_indices(x): both carry the indices, the model needs x.
        if self.scoring == "stale" and _carries_indices(inputs, self.inner):
            inputs = inputs[0]
        return super().call(inputs, training=training)

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        if self.selector == "significance" and isinstance(loss, (dict, list, tuple)):
            raise invalid("loss", loss, "one loss with selector='significance', which scores "
                          "each sample by it; a model of several outputs trains with "
                          "selector='random'")
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def fit(self, *args, **kwargs):
        """Keras's `fit`. With `scoring="stale"`, arrays are checked before training:
        x must carry its indices, each in [0, num_samples) (see the class's Args)."""
        x = args[0] if args else kwargs.get("x")
        if self.scoring == "stale":
            if _carries_indices(x, self.inner):
                if isinstance(x[1], list) or hasattr(x[1], "__array__"):  # not a generator
                    _check_index_range(x[1], self.num_samples)
            elif hasattr(x, "__array__"):  # an array: a dataset's structure is seen at its step
                raise ValueError(_without_indices(x))
        return super().fit(*args, **kwargs)

    def on_epoch_start(self, epoch: int) -> None:
        gated = epoch - self.warmup_epochs
        mode = "warmup" if gated < 0 else "gated"
        if (self.scoring == "stale" and mode == "gated" and self.refresh_every
                and gated > 0 and gated % self.refresh_every == 0):
            mode = "refresh"  # one epoch of fresh scores for every sample
        if mode != self.mode:
            self.use_mode(mode)  # full batches and sub-batches are two static shapes

    def _scores(self, x, y, idx):
        """(significance per sample, the scoring pass's predictions or None)."""
        if self.scoring == "full" or self.mode == "refresh":
            y_pred = self(x, training=False)
            losses = ops.cast(self.per_sample_loss(y, y_pred), "float32")
            if idx is not None:
                self._remember(idx, losses)
            return significance(losses, x), y_pred
        remembered = ops.take(self.loss_memory.value, idx)
        unseen = remembered < 0
        fresh = ops.cond(ops.any(unseen), lambda: ops.cast(
            self.per_sample_loss(y, self(x, training=False)), "float32"), lambda: remembered)
        losses = ops.where(unseen, fresh, remembered)
        self._remember(idx, losses)  # the unseen are scored once
        return significance(losses, x), None

    def _remember(self, idx, losses) -> None:
        self.loss_memory.assign(ops.scatter_update(
            self.loss_memory.value, ops.expand_dims(idx, 1), ops.cast(losses, "float32")))

    def _choose(self, x, y, k, idx=None):
        """(indices of the k slots, weight 0/1 per slot, activation rate, scoring output)."""
        batch = batch_size_of(x)
        noise = keras.random.uniform((batch,), dtype="float32", seed=self.seed_generator)
        if self.selector == "random":
            slots = ops.top_k(noise, k, sorted=False)[1]
            rate = ops.cast(k, "float32") / ops.cast(batch, "float32")
            return slots, ops.ones((k,), "float32"), rate, None
        scores, y_pred = self._scores(x, y, idx)
        passed = ops.cast(scores >= self.controller.threshold.value, "float32")
        # Best first; the noise only breaks ties (e.g. scores clipped to 1).
        slots = ops.top_k(scores + 1e-6 * noise, k, sorted=True)[1]
        weight = ops.take(passed, slots)
        fallback = ops.cast(ops.arange(k) < self.min_samples, "float32")
        weight = ops.where(ops.sum(passed) > 0, weight, fallback)
        return slots, weight, ops.mean(passed), y_pred

    def _train_on(self, x, y, sample_weight, slots, weight):
        """One optimizer step on the gathered slots; returns (samples trained, y_pred, loss)."""
        sub_x, sub_y = _take(x, slots), _take(y, slots)
        trained = ops.sum(weight)
        # The mean over the trained samples, whatever k: weights sum to k.
        sub_w = weight * ops.cast(ops.shape(weight)[0], "float32") / ops.maximum(trained, 1.0)
        if sample_weight is not None:  # one per output where y is several: Keras spreads it
            sub_w = keras.tree.map_structure(
                lambda w: sub_w * ops.cast(ops.take(w, slots, axis=0), "float32"), sample_weight)
        variables = self.trainable_variables
        grads, sub_pred, loss = self.gradients(sub_x, sub_y, sub_w, variables)
        self.optimizer.apply(grads, variables)
        return trained, (sub_x, sub_y, sub_pred, sub_w), loss

    def method_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        idx = None
        if self.scoring == "stale":
            if not _carries_indices(x, self.inner):  # the structure is known when traced
                raise ValueError(_without_indices(x))
            x, idx = x  # fit(with_indices(x), y)
            _check_index_shape(idx)
            idx = ops.cast(ops.reshape(idx, (-1,)), "int32")
        batch = batch_size_of(x)
        if self.mode == "warmup":
            slots, weight = ops.arange(batch), ops.ones((batch,), "float32")
            rate, y_pred = ops.ones((), "float32"), None
        else:
            slots, weight, rate, y_pred = self._choose(
                x, y, sub_batch_size(batch, self.target_rate), idx)
        trained, sub, loss = self._train_on(x, y, sample_weight, slots, weight)
        if idx is not None:  # the trained samples' losses, from the step's own forward pass
            self._remember(ops.take(idx, slots), self.per_sample_loss(sub[1], sub[2]))
        if self.selector == "significance" and self.mode != "warmup":
            self.controller.update(rate)
        self.samples_trained.assign(self.samples_trained.value + trained)
        self.track_loss(loss, trained)
        # Metrics reuse a pass already made: the scoring pass (whole batch, before
        # the update) or the trained sub-batch.
        if y_pred is None:
            x, y, y_pred, sample_weight = sub
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        # Tensors, not the variables: on TensorFlow, run_eagerly=True could not log them
        logs.update(activation_rate=rate,
                    threshold=ops.copy(self.controller.threshold.value),
                    samples_trained=ops.copy(self.samples_trained.value))
        return logs


def _check_settings(target_rate, selector, warmup_epochs, min_samples, controller, scoring,
                    refresh_every, kp, ki, ema) -> None:
    check_gains(target_rate, **{k: v for k, v in (("kp", kp), ("ki", ki), ("ema", ema))
                                if v is not None})
    check_choice("selector", selector, SELECTORS)
    check_integer("warmup_epochs", warmup_epochs, low=0)
    check_integer("min_samples", min_samples, low=1)
    check_choice("controller", controller, CONTROLLERS)
    check_choice("scoring", scoring, SCORING)
    check_integer("refresh_every", refresh_every, low=0)
    if scoring == "stale" and selector != "significance":
        raise ValueError(f"scoring='stale' is not valid with selector={selector!r}; allowed: "
                         "selector='significance' (stale scoring remembers significance "
                         "scores).")
