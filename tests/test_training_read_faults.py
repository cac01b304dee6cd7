"""What a read of the training methods found: pruned weights back after an EMA optimizer's
fit, a layer unfrozen after wrapping never trained, variables with no gradient, a
sub-batch one sample larger on TensorFlow's partial batch, and models the methods cannot
train accepted until their first step."""

import keras
import numpy as np
import pytest

from greenscreen.training import MagnitudePruning, RankedUpdates, SampleGating
from greenscreen.training.gating import sub_batch_size

pytestmark = pytest.mark.backends("tensorflow", "jax")


def data(n=256):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 12)).astype("float32")
    return x, (x[:, :3].sum(axis=1) > 0).astype("int32")


def mlp(*hidden):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((12,)),
                             *[keras.layers.Dense(h, activation="relu") for h in hidden],
                             keras.layers.Dense(2, activation="softmax")])


def test_pruned_weights_stay_zero_after_a_fit_with_an_ema_optimizer():
    x, y = data()
    pruned = MagnitudePruning(mlp(32), final_sparsity=0.8, end_step=16, frequency=4)
    pruned.compile(keras.optimizers.Adam(1e-2, use_ema=True), "sparse_categorical_crossentropy")
    pruned.fit(x, y, epochs=3, batch_size=32, verbose=0)
    for kernel, mask in zip(pruned.pruned, pruned.masks):
        kernel, mask = keras.ops.convert_to_numpy(kernel), keras.ops.convert_to_numpy(mask)
        assert (mask == 0).sum() > 0 and (kernel[mask == 0] == 0).all()


def test_a_layer_unfrozen_after_wrapping_is_ranked_and_trained_from_the_next_compile():
    x, y = data()
    net = mlp(32, 32)
    net.layers[0].trainable = False  # the base frozen first, as in transfer learning
    ranked = RankedUpdates(net, high_percentage=100, low_percentage=100, granularity="layer")
    ranked.compile("adam", "sparse_categorical_crossentropy")
    ranked.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert len(ranked.groups) == 2
    net.layers[0].trainable = True  # then unfrozen and compiled again to fine-tune
    ranked.compile("adam", "sparse_categorical_crossentropy")
    before = keras.ops.convert_to_numpy(net.layers[0].kernel).copy()
    ranked.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert len(ranked.groups) == 3
    assert not np.array_equal(before, keras.ops.convert_to_numpy(net.layers[0].kernel))


class WithAnUnusedLayer(keras.Model):
    """A subclassed model with a built layer its `call` never uses: no gradient reaches it."""

    def __init__(self):
        super().__init__()
        self.a = keras.layers.Dense(8, activation="relu")
        self.b = keras.layers.Dense(2, activation="softmax")
        self.unused = keras.layers.Dense(3)

    def build(self, shape):
        self.a.build(shape)
        self.b.build((None, 8))
        self.unused.build(shape)

    def call(self, x):
        return self.b(self.a(x))


@pytest.mark.parametrize("granularity", ["weight", "layer"])
def test_ranked_updates_train_a_model_with_a_variable_no_gradient_reaches(granularity):
    x, y = data(128)
    keras.utils.set_random_seed(0)
    model = WithAnUnusedLayer()
    model(x[:2])
    unused = keras.ops.convert_to_numpy(model.unused.kernel).copy()
    ranked = RankedUpdates(model, granularity=granularity, rerank_every=2)
    ranked.compile("adam", "sparse_categorical_crossentropy")
    history = ranked.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert np.array_equal(unused, keras.ops.convert_to_numpy(model.unused.kernel))


def test_the_sub_batch_is_ceil_of_rate_times_batch_on_a_partial_batch_too():
    """150 samples in batches of 100 and 50 at a rate of 0.3: 30 + 15 samples trained,
    on every backend (TensorFlow's partial batch has a dynamic size, and took 31)."""
    x, y = data(150)
    gating = SampleGating(mlp(), target_rate=0.3, selector="random")
    gating.compile("sgd", "sparse_categorical_crossentropy")
    history = gating.fit(x, y, epochs=1, batch_size=100, verbose=0)
    assert history.history["samples_trained"] == [45.0]


@pytest.mark.parametrize("batch, rate, k", [(100, 0.3, 30), (50, 0.3, 15), (7, 0.57, 4),
                                            (3, 0.01, 1)])
def test_the_sub_batch_size_of_a_batch_tensor_is_that_of_the_same_batch_as_an_int(
        batch, rate, k):
    assert sub_batch_size(batch, rate) == k
    tensor = keras.ops.convert_to_tensor(batch, "int32")
    assert int(keras.ops.convert_to_numpy(sub_batch_size(tensor, rate))) == k


@pytest.mark.parametrize("make, said", [
    (lambda: MagnitudePruning(keras.Sequential([keras.Input((3,), dtype="int32"),
                                                keras.layers.Embedding(10, 2)])),
     "at least one weight matrix or convolution kernel"),
    (lambda: RankedUpdates(frozen(mlp()), granularity="layer"), "trainable variables to rank"),
    (lambda: SampleGating(keras.Sequential([keras.Input((5, 4)), keras.layers.Dense(2)])),
     "output shaped \\(None, 5, 2\\).*one output row per sample"),
])
def test_a_model_a_method_cannot_train_is_refused_at_construction(make, said):
    with pytest.raises(ValueError, match=said):
        make()


def frozen(model):
    model.trainable = False
    return model


def test_significance_gating_refuses_a_loss_per_output_at_compile():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, {"c": keras.layers.Dense(2, activation="softmax")(hidden),
                                 "r": keras.layers.Dense(1)(hidden)})
    with pytest.raises(ValueError, match="loss=.* is not valid.*selector='random'"):
        SampleGating(model).compile("adam", {"c": "sparse_categorical_crossentropy",
                                             "r": "mse"})
