"""Training and evaluation batches as Keras `PyDataset`s: one data path for every backend.

Batches are NumPy arrays with one-hot labels, so nothing here needs TensorFlow.
Augmentation runs Keras preprocessing layers on each training batch (MixUp and
CutMix mix the labels too). The layers compute in Keras's global float type,
because they draw their random numbers in it (float16 and float64 runs
included), and the batch is handed back in the training dtype. The training
order is reshuffled every epoch from a seeded generator, and a batch's random
draws are a function of the seed and the batch's number in the run (not of the
order in which batches are asked for), so a run is a function of its seed, and a
resumed run (`ArrayBatches.start_at`) trains on the batches an uninterrupted one has.
"""

from __future__ import annotations

import math
import threading

import keras
import numpy as np

from .data import Splits


class ArrayBatches(keras.utils.PyDataset):
    """Batches of (x, one-hot y), optionally shuffled and augmented.

    `x` is an array, or an `ImageFiles` that decodes each batch from disk, its files
    decoded by several threads at once (`greenscreen.datasets.DECODERS`).
    With `indices`, a batch is `((x, sample indices), y)`: the form
    `SampleGating(scoring="stale")` trains on (`greenscreen.training.with_indices`).
    """

    def __init__(self, x, y: np.ndarray, num_classes: int, batch_size: int,
                 dtype: str, shuffle_seed: int | None = None, augment=None,
                 indices: bool = False, one_hot: bool = True) -> None:
        # One reader, Keras's own order: with `workers` > 1, Keras's enqueuer reads ahead
        # across an epoch's end, so a fit epoch mixed two epochs' shuffles and dropped
        # batches (a different few each time). An image folder's files are decoded in
        # parallel within each batch instead (`ImageFiles`).
        super().__init__(workers=1)
        self.x, self.batch_size, self.dtype, self.indices = x, batch_size, dtype, indices
        # Class indices for a categorical loss; a sparse loss's indices or a regression's
        # targets as they are.
        self.y = (keras.utils.to_categorical(y, num_classes).astype(dtype) if one_hot else
                  y if np.issubdtype(y.dtype, np.integer) else y.astype(dtype))
        self.augment = augment
        self.rng = None if shuffle_seed is None else np.random.default_rng(shuffle_seed)
        self.order = np.arange(len(x))
        self.epoch = -1  # on_epoch_end below starts epoch 0
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        x, y = self.x[rows].astype(self.dtype), self.y[rows]
        if self.augment is not None:
            # MixUp and CutMix blend pairs: a blended sample's loss is remembered under the
            # index of the sample it was blended into. With one reader, Keras calls
            # on_epoch_end only between epochs (and once as fit starts), so the epoch
            # counted here is the batch's own.
            x, y = self.augment(x, y, self.epoch * len(self) + index)
        return ((x, rows.astype("int32")), y) if self.indices else (x, y)

    def start_at(self, epoch: int) -> None:
        """Orders and numbers the batches from fit epoch `epoch` (0-based) on, as an
        uninterrupted run has them there: a run resumed from its checkpoint (or a parked
        run resumed at its rung) trains on the batches it would have had without the stop.
        (Keras's fit calls `on_epoch_end` once as it starts, so fit epoch k reads this
        object's epoch k + 1, in a fresh fit and in a resumed one alike.)
        """
        if epoch < self.epoch:
            raise ValueError(f"epoch={epoch!r} is not valid; allowed: >= {self.epoch}, the "
                             "epoch these batches are at")
        while self.epoch < epoch:  # the shuffle's permutations are drawn one after another
            self.on_epoch_end()

    def on_epoch_end(self) -> None:
        self.epoch += 1
        if self.rng is not None:
            self.order = self.rng.permutation(len(self.x))


def datasets(splits: Splits, cfg: dict, dtype: str, seed: int, one_hot: bool = True) -> tuple:
    """(train, validation, test) batches; only the training split is shuffled and augmented.
    `one_hot`: the labels are class indices a categorical loss wants one-hot."""
    n, size = splits.num_classes, cfg["batch_size"]
    augment = None if cfg["augmentation"] == "None" else augmenter(cfg["augmentation"], seed,
                                                                     dtype)
    stale = cfg["method"] == "gated" and cfg["gating_scoring"] == "stale"
    return (ArrayBatches(splits.x_train, splits.y_train, n, size, dtype, seed, augment,
                         indices=stale, one_hot=one_hot),
            ArrayBatches(splits.x_val, splits.y_val, n, size, dtype, one_hot=one_hot),
            ArrayBatches(splits.x_test, splits.y_test, n, size, dtype, one_hot=one_hot))


# Seed counters a layer may use on one batch: far more than one call draws (a flip,
# rotation or translation draws once or twice, MixUp and CutMix three times).
DRAWS_PER_CALL = 16
LAYERS_PER_BATCH = 4


def seed_state(seed: int, batch: int, layer: int, dtype: str) -> np.ndarray:
    """The seed state (Keras's `SeedGenerator` state: seed, counter) of augmentation layer
    `layer` on batch `batch` of a run (epoch x batches per epoch + index): each batch and
    layer draws from its own counters, whatever ran before it."""
    counter = (batch * LAYERS_PER_BATCH + layer) * DRAWS_PER_CALL % 2**31
    return np.array([seed % 2**31, counter], dtype=dtype)


def augmenter(kind: str, seed: int, dtype: str):
    """A function (x, y, batch) -> (x, y) on NumPy batches, through Keras preprocessing
    layers; `batch` is the batch's number in the run (epoch x batches per epoch + index).

    A batch's draws depend on the seed and `batch` alone: each layer's seed state is set
    to `seed_state(seed, batch, layer)` before its call, so batches asked for in any order
    (Keras's first look at the data, threads, a resumed run) draw what they draw in a run
    read in order, and the flip, rotation and translation draw from counters of their own.
    One batch at a time, since a layer's seed state is shared."""
    to_numpy, work, one_at_a_time = keras.ops.convert_to_numpy, keras.config.floatx(), \
        threading.Lock()

    def seeded(layers, batch: int) -> None:
        for number, layer in enumerate(layers):
            state = layer.generator.state
            state.assign(seed_state(seed, batch, number, state.dtype))

    if kind == "random":
        layers = [keras.layers.RandomFlip("horizontal", seed=seed, dtype=work),
                  keras.layers.RandomRotation(0.05, seed=seed, dtype=work),
                  keras.layers.RandomTranslation(0.1, 0.1, seed=seed, dtype=work)]

        def apply(x, y, batch: int):
            x = x.astype(work)
            with one_at_a_time:
                seeded(layers, batch)
                for layer in layers:
                    x = layer(x, training=True)
            return to_numpy(x).astype(dtype), y
    else:
        cls = keras.layers.MixUp if kind == "mixup" else keras.layers.CutMix
        layer = cls(seed=seed, dtype=work)
        mix = compiled_on_jax(layer) if keras.backend.backend() == "jax" else (
            lambda images, labels: layer({"images": images, "labels": labels}, training=True))

        def apply(x, y, batch: int):
            # One target per sample (a regression's) as a column: Keras mixes labels of
            # shape (batch, n), and mixed a (batch,) vector into a (batch, batch) matrix.
            shape = y.shape
            x, y = x.astype(work), y.astype(work).reshape(len(y), -1)
            with one_at_a_time:
                seeded([layer], batch)
                out = mix(x, y)
            return (to_numpy(out["images"]).astype(dtype),
                    to_numpy(out["labels"]).astype(dtype).reshape(shape))

    return apply


# (layer class, its settings, float type) -> its compiled call: one per worker process, so
# that a warm worker's later runs reuse the compiled programs (JAX keeps them per function)
# instead of compiling them again. The seed is left out of the key: it only starts the seed
# state, which each run passes in and out, so a run's draws do not depend on what its
# worker ran before. (The settings are read one by one: `get_config` imports TensorFlow.)
PROGRAMS: dict[tuple, object] = {}


def compiled_on_jax(layer):
    """MixUp's or CutMix's call as one `jax.jit` program per batch shape, the layer's seed
    state passed in and out (`keras.StatelessScope`): the same draws as the eager call.
    Called eagerly, JAX compiles each of the layer's operations for each new shape, about
    2 s a shape in a fresh process before the first step of a run and again for its last,
    shorter batch; one program at XLA's optimisation level 0 compiles in about 1 s and
    runs each batch faster than the eager calls (benchmarks/augment_compile.py,
    RESULTS.md). Level 0 on CPU only: on a GPU it is unmeasured, so XLA's default applies
    there. (The random flips, rotations and translations stay eager: compiled, a
    CIFAR-10 batch took longer.)"""
    key = (type(layer).__name__, getattr(layer, "alpha", None), getattr(layer, "factor", None),
           getattr(layer, "data_format", None), keras.config.floatx())
    if key not in PROGRAMS:
        PROGRAMS[key] = _stateless_program(layer)
    program, state = PROGRAMS[key], layer.generator.state

    def mix(images, labels):
        out, next_state = program(images, labels, state.value)
        state.assign(next_state)
        return out

    return mix


def _stateless_program(template):
    """(images, labels, seed state) -> (the layer's output, the next seed state), jitted."""
    import jax

    state = template.generator.state

    def stateless(images, labels, seed_state):
        with keras.StatelessScope(state_mapping=[(state, seed_state)]) as scope:
            out = template({"images": images, "labels": labels}, training=True)
            return out, scope.get_current_value(state)

    if jax.default_backend() != "cpu":
        return jax.jit(stateless)
    try:
        return jax.jit(stateless, compiler_options={"xla_backend_optimization_level": 0})
    except TypeError:  # JAX before 0.4.36 has no compiler_options: XLA's default level
        return jax.jit(stateless)
