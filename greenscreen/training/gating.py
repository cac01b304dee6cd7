"""Sample gating (Adaptive Sparse Training) with a PI-controlled threshold.

Each step, a cheap inference-mode pass (`training=False`, so BatchNorm
statistics are not updated twice) scores every sample:
    score = 0.7 * loss / mean(loss) + 0.3 * std(x) / mean(std(x)),
divided by the batch maximum and clipped to [0, 1]. Samples scoring at least
`threshold` are gathered, and forward and backward run on that sub-batch only.
A PI controller moves the threshold so the EMA of the activation rate tracks
`target_rate`. `selector="random"` picks samples at random at the target rate:
the control arm without which no savings claim means anything.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from .._validation import check_choice, check_number
from ._base import WrappedModel

SELECTORS = ("significance", "random")


class PIController:
    """Threshold controller with EMA-smoothed input and conditional-integration anti-windup.

    error = ema(rate) - target (too many samples -> positive -> raise threshold);
    threshold = clip(base + kp * error + ki * integral, 0, 1). The integral only
    accumulates while the output is not saturated in the error's direction.
    State lives in non-trainable Keras variables.
    """

    def __init__(self, target_rate: float, kp: float = 0.5, ki: float = 0.05,
                 ema: float = 0.9, base: float = 0.5, integral_limit: float = 20.0) -> None:
        self.target, self.kp, self.ki, self.ema_coef = target_rate, kp, ki, ema
        self.base, self.limit = base, integral_limit
        self.threshold = keras.Variable(base, trainable=False, name="threshold")
        self.rate_ema = keras.Variable(target_rate, trainable=False, name="rate_ema")
        self.integral = keras.Variable(0.0, trainable=False, name="integral")

    def update(self, rate):
        ema = self.ema_coef * self.rate_ema + (1.0 - self.ema_coef) * ops.cast(rate, "float32")
        error = ema - self.target
        trial = ops.clip(self.integral + error, -self.limit, self.limit)
        raw = self.base + self.kp * error + self.ki * trial
        winding = ops.logical_or(ops.logical_and(raw > 1.0, error > 0),
                                 ops.logical_and(raw < 0.0, error < 0))
        integral = ops.where(winding, self.integral, trial)
        self.rate_ema.assign(ema)
        self.integral.assign(integral)
        self.threshold.assign(ops.clip(self.base + self.kp * error + self.ki * integral, 0., 1.))
        return self.threshold


def significance(per_sample_loss, x):
    """The AST score, normalised to [0, 1] within the batch."""
    axes = tuple(range(1, len(x.shape)))
    spread = ops.std(ops.cast(x, "float32"), axis=axes)
    loss = ops.cast(per_sample_loss, "float32")
    score = 0.7 * loss / (ops.mean(loss) + 1e-8) + 0.3 * spread / (ops.mean(spread) + 1e-8)
    return ops.clip(score / (ops.max(score) + 1e-8), 0.0, 1.0)


class SampleGating(WrappedModel):
    """Trains each step only on the samples that matter most (or, as a control, random ones).

    Args:
        model: A built Keras model.
        target_rate: Share of samples to train on, in (0, 1].
        selector: "significance" (PI-controlled threshold) or "random".
        warmup_epochs: Full-batch epochs before gating starts.
        kp, ki, ema: PI gains and the EMA coefficient of the measured rate.
        min_samples: Random samples trained when nothing passes the threshold.
        buckets: If set (e.g. 4), the sub-batch size is rounded up to one of
            `buckets` fixed sizes (batch_size / 2**i) and filled with the
            next-best samples, so XLA (`jit_compile=True`) compiles a bounded
            set of shapes. Needs `batch_size` and full batches
            (`drop_remainder=True`).
        batch_size: The training batch size, for `buckets`.

    Logs `activation_rate` (this step), `threshold` and `samples_trained`.
    `loss` is the trained sub-batch's loss; `accuracy`-style metrics come from
    the scoring pass over the whole batch (random selection: the sub-batch).
    """

    def __init__(self, model: keras.Model, target_rate: float = 0.3,
                 selector: str = "significance", warmup_epochs: int = 0, kp: float = 0.5,
                 ki: float = 0.05, ema: float = 0.9, min_samples: int = 2,
                 buckets: int | None = None, batch_size: int | None = None,
                 name: str | None = None) -> None:
        check_number("target_rate", target_rate, low=0, high=1, low_open=True)
        check_choice("selector", selector, SELECTORS)
        check_number("warmup_epochs", warmup_epochs, low=0)
        check_number("min_samples", min_samples, low=1)
        check_number("buckets", buckets, low=1, allow_none=True)
        if buckets is not None:
            check_number("batch_size", batch_size, low=1)
            check_choice("selector (with buckets)", selector, ["significance"])
        super().__init__(model, name=name)
        self.target_rate, self.selector = target_rate, selector
        self.warmup_epochs, self.min_samples = warmup_epochs, min_samples
        self.buckets, self.batch_size = buckets, batch_size
        self.controller = PIController(target_rate, kp, ki, ema)
        self.samples_trained = keras.Variable(0.0, trainable=False, name="samples_trained")

    def _select(self, x, y):
        """Returns a mask over the batch, the ranking scores, and the scoring pass's output."""
        batch = tf.shape(x)[0]
        noise = tf.random.uniform([batch])
        if self.selector == "random":
            chosen, scores, y_pred = noise < self.target_rate, noise, None
        else:
            y_pred = self(x, training=False)
            scores = significance(self.per_sample_loss(y, y_pred), x)
            chosen = scores >= self.controller.threshold
        # Nothing passed: train a few random samples rather than skip the step.
        fallback = tf.argsort(noise) < self.min_samples
        chosen = tf.cond(tf.reduce_any(chosen), lambda: chosen, lambda: fallback)
        warm = self.epoch < float(self.warmup_epochs)
        return tf.logical_or(chosen, warm), scores, y_pred

    def _train_on(self, x, y, sample_weight, idx):
        sub_x, sub_y = tf.gather(x, idx), tf.gather(y, idx)
        sub_w = None if sample_weight is None else tf.gather(sample_weight, idx)
        variables = self.trainable_variables
        grads, sub_pred = self._gradients(sub_x, sub_y, sub_w, variables)
        self.optimizer.apply(grads, variables)
        return tf.cast(tf.shape(idx)[0], tf.float32), (sub_x, sub_y, sub_pred, sub_w)

    def _bucketed(self, x, y, sample_weight, chosen, scores):
        sizes = sorted({max(1, self.batch_size // 2**i) for i in range(self.buckets)})
        wanted = tf.reduce_sum(tf.cast(chosen, tf.int32))
        index = tf.reduce_sum(tf.cast(tf.constant(sizes) < wanted, tf.int32))
        ranked = tf.where(chosen, scores + 2.0, scores)  # chosen first, then next-best

        def branch(k):
            return lambda: self._train_on(x, y, sample_weight, tf.math.top_k(ranked, k).indices)[0]

        return tf.switch_case(index, [branch(k) for k in sizes])

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        chosen, scores, y_pred = self._select(x, y)
        if self.buckets:
            trained = self._bucketed(x, y, sample_weight, chosen, scores)
        else:
            trained, sub = self._train_on(x, y, sample_weight, tf.where(chosen)[:, 0])
        rate = tf.reduce_mean(tf.cast(chosen, tf.float32))
        if self.selector == "significance":
            self.controller.update(rate)
        self.samples_trained.assign_add(trained)
        # Metrics reuse a pass already made: the scoring pass (whole batch, before
        # the update) or, for random selection, the trained sub-batch.
        if y_pred is None:
            x, y, y_pred, sample_weight = sub
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        logs.update(activation_rate=rate, threshold=self.controller.threshold,
                    samples_trained=self.samples_trained)
        return logs
