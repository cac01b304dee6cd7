"""The methods with what plain Keras accepts: a one-unit sigmoid output with labels of
shape (N,), a loss given by its class name, and `run_eagerly=True` (faults a hunt found;
each fails before its fix)."""

import keras
import numpy as np
import pytest
from test_training import data, model

from greenscreen.training import RankedUpdates, SampleGating

pytestmark = pytest.mark.backends("tensorflow", "jax")


def binary_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((12,)), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(1, activation="sigmoid")])


@pytest.mark.parametrize("loss", ["binary_crossentropy", "BinaryCrossentropy",
                                  keras.losses.BinaryCrossentropy()])
def test_gating_trains_a_one_unit_output_on_labels_of_rank_one(loss):
    """Called bare, the loss function refused (N,) labels against (N, 1) outputs ("must
    have the same rank"), and a class name was refused as not a loss name."""
    x, y = data()
    gated = SampleGating(binary_model(), target_rate=0.5)
    gated.compile("adam", loss)
    history = gated.fit(x, y.astype("float32"), epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    y_pred = gated.predict(x[:16], verbose=0)
    per_sample = keras.ops.convert_to_numpy(gated.per_sample_loss(
        keras.ops.convert_to_tensor(y[:16].astype("float32")), y_pred))
    keras_own = keras.losses.BinaryCrossentropy(reduction=None)(y[:16].astype("float32"),
                                                                 y_pred)
    assert per_sample.shape == (16,)
    np.testing.assert_allclose(per_sample, keras.ops.convert_to_numpy(keras_own),
                               rtol=1e-5)


@pytest.mark.parametrize("method", ["ranked", "gated"])
def test_the_methods_train_with_run_eagerly(method):
    """On TensorFlow their logs held the variables themselves (update_fraction, threshold,
    samples_trained), which Keras's eager loop cannot pass on: AttributeError in fit."""
    x, y = data()
    wrapped = (RankedUpdates(model()) if method == "ranked"
               else SampleGating(model(), target_rate=0.5))
    wrapped.compile("adam", "sparse_categorical_crossentropy", run_eagerly=True)
    history = wrapped.fit(x, y, epochs=1, batch_size=64, verbose=0)
    logged = "update_fraction" if method == "ranked" else "samples_trained"
    assert np.isfinite(history.history[logged][0]) and history.history[logged][0] > 0


def two_inputs(seed=0):
    keras.utils.set_random_seed(seed)
    a, b = keras.Input((12,), name="a"), keras.Input((3,), name="b")
    joined = keras.layers.Concatenate()([keras.layers.Dense(8, activation="relu")(a), b])
    return keras.Model({"a": a, "b": b}, keras.layers.Dense(2, activation="softmax")(joined))


@pytest.mark.parametrize("method", ["ranked", "pruned"])
@pytest.mark.parametrize("form", ["dict", "list"])
def test_ranked_and_pruned_models_take_several_inputs(method, form):
    """With a dict of inputs their train step failed at `ops.shape(x)[0]`; with a list
    the loss was weighted by the number of inputs instead of the batch size."""
    from greenscreen.training import MagnitudePruning

    x, y = data(200)  # 200 = 3 batches of 64 and one of 8: the weighting shows
    inputs = {"a": x, "b": x[:, :3]}
    net = two_inputs()
    if form == "list":
        net = keras.Model([net.inputs[0], net.inputs[1]], net.outputs)
        inputs = [inputs["a"], inputs["b"]]
    wrapped = (RankedUpdates(net, high_percentage=100, low_percentage=100)
               if method == "ranked" else MagnitudePruning(net, final_sparsity=0.5,
                                                          end_step=4, frequency=2))
    wrapped.compile("sgd", "sparse_categorical_crossentropy")
    history = wrapped.fit(inputs, y, epochs=1, batch_size=64, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])
