"""The Keras pieces of a run, one per option: precision, optimizer, learning-rate schedule,
the method's wrapper, compile, quantization, and the checks that a combination can run.
`training.train_run` calls them in order; every option is implemented here on Keras 3.

optimizer_momentum maps to SGD's and RMSprop's `momentum` and to Adam's and
AdamW's `beta_1`. The methods take their settings from config.yaml (each used by
its own method only; defaults in brackets): "ranked" is RankedUpdates with
high_percentage [50] -> low_percentage [20] on percentage_schedule [linear],
ranked_granularity [layer] and ranked_freeze [ranked] (bottom_up: the top layers,
so the backward pass stops early; layer granularity only); "gated" is SampleGating
with target_activation_rate [0.3], warmup_epochs [1], gating_selector
[significance] and gating_scoring [full] (stale: remembered losses, no scoring
pass; the training batches then carry each sample's index); "pruned" is
MagnitudePruning to target_sparsity [0.8] by 70 % of the steps, updating the
masks every pruning_frequency [0.1] epochs.

internal:
- jit_compilation: `compile(jit_compile=True)` (XLA). The other values compile as each
  backend does by default (`jit_compile` below): TensorFlow without XLA, JAX with it.
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
import os
import tempfile

import keras
import numpy as np

from greenscreen.training import (
    MagnitudePruning,
    RankedUpdates,
    SampleGating,
    backend_unsupported,
    strip_pruning,
)

from ..objective import CLASSIFICATION, Objective
from . import reset, rules


def skip_reason(cfg: dict) -> str | None:
    """Why a combination cannot run, or None. Checked before any training.

    What a method needs (its backend, its settings) is asked of the method itself; the
    pipeline's own rules, about precision, augmentation and quantization, are in `rules`
    (no backend needed); JAX's 64-bit mode is checked last.
    """
    method = cfg["method"]
    if method != "standard":
        reason = backend_unsupported(
            f"method {method}", loss_scaling=cfg["precision"] == "global_policy_float16")
        reason = reason or method_incompatibility(cfg)
        if reason:
            return reason
    reason = rules.combination_reason(cfg) or backend_augmentation_reason(cfg)
    if reason:  # before the 64-bit check: these say why
        return reason
    if cfg["precision"] == "float64" and keras.backend.backend() == "jax" and not jax_x64():
        return ("precision float64 needs JAX's 64-bit mode, which is off (JAX would compute "
                "in float32); set JAX_ENABLE_X64=1 to run it")
    return None


def backend_augmentation_reason(cfg: dict) -> str | None:
    """An augmentation the backend cannot run in the run's precision, or None."""
    if (cfg.get("augmentation") in ("mixup", "cutmix") and cfg.get("precision") == "float16"
            and keras.backend.backend() == "torch"):
        import torch

        if not torch.cuda.is_available():  # Keras computes on the GPU where there is one
            return (f"augmentation {cfg['augmentation']} with precision float16 on "
                    "PyTorch's CPU: Keras draws its mixing weights from a Beta distribution, "
                    "whose PyTorch CPU sampler (Dirichlet) has no float16 kernel (CUDA's has)")
    return None


def method_incompatibility(cfg: dict) -> str | None:
    """The method's own answer on the run's settings (config keys named as in config.yaml)."""
    if cfg["method"] == "ranked":
        why = RankedUpdates.incompatibility(granularity=cfg["ranked_granularity"],
                                            freeze=cfg["ranked_freeze"])
        return why and f"ranked_freeze {cfg['ranked_freeze']} with ranked_granularity " \
                       f"{cfg['ranked_granularity']}: {why}"
    if cfg["method"] == "gated":
        why = SampleGating.incompatibility(selector=cfg["gating_selector"],
                                           scoring=cfg["gating_scoring"])
        return why and f"gating_scoring {cfg['gating_scoring']} with gating_selector " \
                       f"{cfg['gating_selector']}: {why}"
    return None


def jax_x64() -> bool:
    import jax

    return bool(jax.config.read("jax_enable_x64"))


def set_precision(precision: str) -> str:
    """Sets Keras's global dtype state; returns the dtype the data should have."""
    keras.config.set_dtype_policy("float32")
    keras.config.set_floatx("float32")
    if precision in ("float16", "float64"):
        keras.config.set_floatx(precision)
        keras.config.set_dtype_policy(precision)
        reset.set_for_run("floatx", precision)  # ours: no reason to retire a warm worker
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


def wrap(cfg: dict, model: keras.Model, steps_per_epoch: int, epochs: int,
         num_samples: int) -> keras.Model:
    """The model wrapped for the run's method, with the method's settings from config.yaml."""
    method, total = cfg["method"], max(2, steps_per_epoch * epochs)
    if method == "ranked":
        return RankedUpdates(model, cfg["high_percentage"], cfg["low_percentage"],
                             schedule=cfg["percentage_schedule"],
                             granularity=cfg["ranked_granularity"], rerank_every=20,
                             freeze=cfg["ranked_freeze"])
    if method == "gated":
        stale = cfg["gating_scoring"] == "stale"
        return SampleGating(model, target_rate=cfg["target_activation_rate"],
                            selector=cfg["gating_selector"], warmup_epochs=cfg["warmup_epochs"],
                            scoring=cfg["gating_scoring"],
                            num_samples=num_samples if stale else None)
    if method == "pruned":
        # At most the run's steps: a pruning_frequency of more epochs than the run has put
        # the first mask update after its last step, and the run trained unpruned.
        frequency = max(1, round(min(cfg["pruning_frequency"] * steps_per_epoch, total)))
        # The ramp ends on a mask update (about 70 % of the way), so the run reaches
        # target_sparsity whatever the frequency.
        end = max(1, round(0.7 * total / frequency)) * frequency
        return MagnitudePruning(model, final_sparsity=cfg["target_sparsity"], end_step=end,
                                frequency=frequency)
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


def compile_model(model: keras.Model, cfg: dict, steps_per_epoch: int, epochs: int,
                  objective: Objective = CLASSIFICATION) -> None:
    """Compiles with the run's optimizer, learning-rate schedule, momentum and XLA choice,
    the task's loss and the metrics its objective needs."""
    model.compile(optimizer(cfg, learning_rate(cfg, steps_per_epoch, epochs)),
                  objective.loss, metrics=objective.compile_metrics,
                  jit_compile=jit_compile(cfg["internal"]))


def jit_compile(internal: str) -> "bool | str":
    """Keras's `jit_compile` for a run's `internal` option.

    `jit_compilation` is XLA on every backend. Otherwise TensorFlow runs `tf.function`
    graphs without XLA (False), the option's baseline. On JAX, XLA is how Keras runs a
    step at all: `jit_compile=False` there runs every operation eagerly, a debugging
    mode that compiles each operation for each new shape (a digits run took several
    times as long), so JAX keeps Keras's default ("auto": `jax.jit`). PyTorch: False,
    as Keras's default there (no `torch.compile`).
    """
    if internal == "jit_compilation":
        return True
    return "auto" if keras.backend.backend() == "jax" else False


def evaluate(model: keras.Model, test_ds) -> dict:
    """Every compiled metric on the test split, as {"test_loss": ..., "test_accuracy": ...}."""
    return {f"test_{name}": float(value)
            for name, value in model.evaluate(test_ds, verbose=0, return_dict=True).items()}


def post_quantize(model: keras.Model, test_ds, objective: Objective = CLASSIFICATION) -> dict:
    net = plain(model)
    before = weights_bytes(net)
    net.quantize("int8")
    # As the baseline compiles: Keras's own default ("auto") is XLA on a TensorFlow GPU
    net.compile(loss=objective.loss, metrics=objective.compile_metrics,
                jit_compile=jit_compile("None"))
    metrics = evaluate(net, test_ds)
    return {"quantized_test_accuracy": metrics.get("test_accuracy"),
            "quantized_test_loss": metrics["test_loss"],
            "weights_bytes_float": before, "weights_bytes_int8": weights_bytes(net)}


class Diverged(FloatingPointError):
    """The run's loss became NaN or infinite: the run failed, its process is sound."""


def finite(history: keras.callbacks.History, start: int = 0) -> None:
    """A NaN or infinite loss fails the run, naming the epoch (counted from the run's
    first: `start` is the epoch this attempt resumed from)."""
    for epoch, loss in enumerate(history.history.get("loss", []), start=start + 1):
        if not np.isfinite(loss):
            raise Diverged(f"loss became {loss} in epoch {epoch}")


# logs.csv's columns that are not a figure of an epoch's training (results.json's history)
NOT_CURVES = ("epoch", "t_start", "t_end", "attempt")


def whole_history(history: keras.callbacks.History, logged, start: int) -> dict:
    """Each figure's values over the run's epochs: the earlier attempts' from `logged`
    (logs.csv as a DataFrame, each epoch once), then this attempt's `history` from epoch
    `start` on. results.json held this attempt's epochs alone after a resume (none where
    the stop came after the last epoch's checkpoint)."""
    import pandas as pd

    curves = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    if start == 0 or logged is None or logged.empty:
        return curves
    earlier = logged[logged["epoch"] < start].drop_duplicates("epoch", keep="last")
    earlier = earlier.sort_values("epoch")
    names = list(curves) or [c for c in earlier.columns if c not in NOT_CURVES
                             and pd.api.types.is_numeric_dtype(earlier[c])]
    return {name: ([float(v) for v in pd.to_numeric(earlier[name], errors="coerce")]
                   if name in earlier else [float("nan")] * len(earlier))
            + curves.get(name, []) for name in names}


def confusion_matrix(model, batches, num_classes: int) -> list[list[int]]:
    """counts[true class][predicted class] over `batches` (one-hot or class-index labels):
    our `ArrayBatches`, your `PyDataset` or your `tf.data.Dataset`, batch by batch."""
    counts, size = np.zeros((num_classes, num_classes), dtype=np.int64), None
    with baseline_compiled(model):
        for batch in each_batch(batches):
            x, y = batch[0], np.asarray(batch[1])
            size = size or len(y)
            scores = keras.ops.convert_to_numpy(model.predict_on_batch(padded(x, size)))
            predicted = np.argmax(scores[:len(y)], axis=-1)
            true = np.argmax(y, axis=-1) if y.ndim == 2 else y.reshape(-1).astype(np.int64)
            np.add.at(counts, (true, predicted), 1)
    return counts.tolist()


def padded(x, size: int):
    """`x` with repeats of its last row up to `size` rows, where it is one array: the last,
    shorter batch then runs the program compiled for the others, where it cost a trace and
    compile of its own (0.1 to 1 s a run on JAX, RESULTS.md). Repeats, not zeros: a row of
    any dtype (text too), and one the model already takes. Other inputs as they are."""
    if not isinstance(x, np.ndarray) or len(x) >= size or len(x) == 0:
        return x
    return np.concatenate([x, np.repeat(x[-1:], size - len(x), axis=0)])


@contextlib.contextmanager
def baseline_compiled(model: keras.Model):
    """Predicts as the backend's baseline compiles (`jit_compile(None)`), whatever the run
    trained with: the confusion matrix's one pass over the test split is not worth an XLA
    program of its own. On TensorFlow a run with `internal: jit_compilation` spent 0.5 to
    0.7 s a run compiling one (RESULTS.md); on JAX the baseline is XLA already. The model's
    own setting, and a predict function made under it, are put back afterwards."""
    trained_with, kept = model.jit_compile, model.predict_function
    baseline = jit_compile("None")
    if baseline == "auto" or bool(baseline) == bool(trained_with):
        yield
        return
    model.jit_compile, model.predict_function = baseline, None
    try:
        yield
    finally:
        model.jit_compile, model.predict_function = trained_with, kept


def each_batch(batches):
    """The batches of a PyDataset (by index) or of a tf.data.Dataset (as NumPy)."""
    if isinstance(batches, keras.utils.PyDataset):
        return (batches[i] for i in range(len(batches)))
    return batches.as_numpy_iterator()
