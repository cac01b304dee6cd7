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
