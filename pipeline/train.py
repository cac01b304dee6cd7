"""Turn one configuration into a trained, measured run: every option implemented on Keras 3.

optimizer_momentum maps to SGD's and RMSprop's `momentum` and to Adam's and
AdamW's `beta_1`. method "ranked" is RankedUpdates in layer mode (50 -> 20 %),
"gated" is SampleGating (target rate 0.3, one warm-up epoch), "pruned" is
MagnitudePruning to 80 % sparsity by 70 % of the steps.

internal:
- jit_compilation: `compile(jit_compile=True)` (XLA).
- post_quantization: after training, `model.quantize("int8")` (Keras quantizes
  Dense/EinsumDense/Embedding kernels to int8); the quantized model's test
  accuracy and saved-weights size are recorded next to the float ones.
- pre_quantization: before training, `model.quantize("float8")`: Keras 3's
  FP8 training, in which Dense/EinsumDense layers run their matmuls through
  float8 quantize-dequantize with delayed scaling, forward and backward. Conv
  layers are not quantized: Keras 3 offers no quantized training for them.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from greenscreen.training import MagnitudePruning, RankedUpdates, SampleGating, strip_pruning

from . import models
from .data import Splits


class RunSkipped(Exception):
    """This combination of options cannot work; the message says why."""


def unsupported(cfg: dict) -> str | None:
    """Why a combination cannot run, or None. Checked before any training."""
    if cfg["method"] == "gated" and cfg["internal"] == "jit_compilation":
        return ("method gated gathers a data-dependent sub-batch, which XLA (jit_compilation) "
                "cannot compile; SampleGating(buckets=...) with drop_remainder batches can")
    if cfg["method"] != "standard" and cfg["internal"] == "pre_quantization":
        return (f"method {cfg['method']} wraps the model's train step, which float8 "
                "quantized training (pre_quantization) does not support")
    return None


def set_precision(precision: str) -> str:
    """Sets Keras's global dtype state; returns the dtype the data should have."""
    keras.config.set_dtype_policy("float32")
    keras.config.set_floatx("float32")
    if precision in ("float16", "float64"):
        keras.config.set_floatx(precision)
        keras.config.set_dtype_policy(precision)
        return precision
    if precision == "global_policy_float16":
        keras.config.set_dtype_policy("mixed_float16")
    elif precision == "mixed_bfloat16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    return "float32"


def learning_rate(cfg: dict, steps_per_epoch: int, epochs: int):
    lr, total = cfg["lr"], max(1, steps_per_epoch * epochs)
    schedules = keras.optimizers.schedules
    return {
        "constant": lambda: lr,
        "exponential": lambda: schedules.ExponentialDecay(lr, steps_per_epoch, decay_rate=0.9),
        "polynomial": lambda: schedules.PolynomialDecay(lr, total, end_learning_rate=lr / 100),
        "cosine": lambda: schedules.CosineDecay(lr, total),
    }[cfg["lr_schedule"]]()


def optimizer(cfg: dict, lr) -> keras.optimizers.Optimizer:
    m = cfg["optimizer_momentum"]
    return {
        "SGD": lambda: keras.optimizers.SGD(lr, momentum=m),
        "RMSProp": lambda: keras.optimizers.RMSprop(lr, momentum=m),
        "Adam": lambda: keras.optimizers.Adam(lr, beta_1=m),
        "AdamW": lambda: keras.optimizers.AdamW(lr, beta_1=m),
    }[cfg["optimizer"]]()


def datasets(splits: Splits, cfg: dict, dtype: str, seed: int):
    """tf.data pipelines with one-hot labels (MixUp/CutMix mix labels too)."""
    n = splits.num_classes

    def pipe(x, y, train: bool):
        ds = tf.data.Dataset.from_tensor_slices((x.astype(dtype), keras.utils.to_categorical(
            y, n).astype(dtype)))
        if train:
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(cfg["batch_size"])
        if train and cfg["augmentation"] != "None":
            with float32_scope():  # tf.data traces the map function right here
                ds = ds.map(augmenter(cfg["augmentation"], seed, dtype),
                            num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    return (pipe(splits.x_train, splits.y_train, True), pipe(splits.x_val, splits.y_val, False),
            pipe(splits.x_test, splits.y_test, False))


@contextlib.contextmanager
def float32_scope():
    """Keras's global float type and dtype policy set to float32 for the block, then restored.

    Augmentation layers sample random numbers in the global float type; under the
    float16/float64/mixed precisions that clashes with their float32 images."""
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy("float32")
    try:
        yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


def augmenter(kind: str, seed: int, dtype: str):
    """Augmentation in the input pipeline. It always computes in float32 (CutMix builds
    integer ranges that float16 cannot hold) and hands the training dtype back."""
    if kind == "random":
        layers = [keras.layers.RandomFlip("horizontal", seed=seed, dtype="float32"),
                  keras.layers.RandomRotation(0.05, seed=seed, dtype="float32"),
                  keras.layers.RandomTranslation(0.1, 0.1, seed=seed, dtype="float32")]

        def apply(x, y):
            x = tf.cast(x, "float32")
            for layer in layers:
                x = layer(x, training=True)
            return tf.cast(x, dtype), y
    else:
        cls = keras.layers.MixUp if kind == "mixup" else keras.layers.CutMix
        layer = cls(seed=seed, dtype="float32")

        def apply(x, y):
            out = layer({"images": tf.cast(x, "float32"), "labels": tf.cast(y, "float32")},
                        training=True)
            return tf.cast(out["images"], dtype), tf.cast(out["labels"], dtype)

    return apply


def wrap(method: str, model: keras.Model, total_steps: int) -> keras.Model:
    if method == "ranked":
        return RankedUpdates(model, 50, 20, granularity="layer", rerank_every=20)
    if method == "gated":
        return SampleGating(model, target_rate=0.3, warmup_epochs=1)
    if method == "pruned":
        return MagnitudePruning(model, final_sparsity=0.8, end_step=max(2, int(0.7 * total_steps)),
                                frequency=max(1, total_steps // 20))
    return model


def plain(model: keras.Model) -> keras.Model:
    """The user's model without a training wrapper."""
    if isinstance(model, MagnitudePruning):
        return strip_pruning(model)
    return getattr(model, "inner", model)


def weights_bytes(model: keras.Model) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.weights.h5")
        model.save_weights(path)
        return os.path.getsize(path)


def build_and_compile(cfg: dict, splits: Splits, epochs: int):
    """Returns (model to fit, plain model, parameter count, FLOPs per train step, steps/epoch)."""
    steps = math.ceil(len(splits.x_train) / cfg["batch_size"])
    net = models.build(cfg["model"], splits.input_shape, splits.num_classes, cfg)
    if cfg["internal"] == "pre_quantization":
        net.quantize("float8")
    model = wrap(cfg["method"], net, steps * epochs)
    model.compile(optimizer(cfg, learning_rate(cfg, steps, epochs)), "categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=cfg["internal"] == "jit_compilation")
    flops = models.train_step_flops(net, cfg["batch_size"])
    return model, net, int(net.count_params()), flops, steps


def post_quantize(model: keras.Model, test_ds) -> dict:
    net = plain(model)
    before = weights_bytes(net)
    net.quantize("int8")
    net.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    loss, acc = net.evaluate(test_ds, verbose=0)
    return {"quantized_test_accuracy": float(acc), "quantized_test_loss": float(loss),
            "weights_bytes_float": before, "weights_bytes_int8": weights_bytes(net)}


def finite(history: keras.callbacks.History) -> None:
    """A NaN or infinite loss fails the run, naming the epoch."""
    for epoch, loss in enumerate(history.history.get("loss", [])):
        if not np.isfinite(loss):
            raise FloatingPointError(f"loss became {loss} in epoch {epoch + 1}")
