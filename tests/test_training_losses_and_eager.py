"""The methods with what plain Keras accepts: a one-unit sigmoid output with labels of
shape (N,), a loss given by its class name, `run_eagerly=True` and several inputs
(faults a hunt found; each fails before its fix)."""

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


@pytest.mark.parametrize("method", ["ranked", "pruned", "gated", "gated-stale"])
@pytest.mark.parametrize("form", ["dict", "list"])
def test_the_methods_take_several_inputs(method, form):
    """With a dict of inputs the ranked and pruned train steps failed at
    `ops.shape(x)[0]`, and with a list the loss was weighted by the number of inputs
    instead of the batch size; gating indexed x itself (and `with_indices` counted the
    inputs, not the samples)."""
    from greenscreen.training import MagnitudePruning, with_indices

    x, y = data(200)  # 200 = 3 batches of 64 and one of 8: the weighting shows
    inputs = {"a": x, "b": x[:, :3]}
    net = two_inputs()
    if form == "list":
        net = keras.Model([net.inputs[0], net.inputs[1]], net.outputs)
        inputs = [inputs["a"], inputs["b"]]
    wrapped = {
        "ranked": lambda: RankedUpdates(net, high_percentage=100, low_percentage=100),
        "pruned": lambda: MagnitudePruning(net, final_sparsity=0.5, end_step=4, frequency=2),
        "gated": lambda: SampleGating(net, target_rate=0.5),
        "gated-stale": lambda: SampleGating(net, target_rate=0.5, scoring="stale",
                                            num_samples=len(y)),
    }[method]()
    if method == "gated-stale":
        indexed = with_indices(inputs)
        assert len(indexed[1]) == len(y)
        inputs = indexed
    wrapped.compile("sgd", "sparse_categorical_crossentropy")
    history = wrapped.fit(inputs, y, epochs=2, batch_size=64, shuffle=False, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    if method.startswith("gated"):
        # 2 epochs of batches 64, 64, 64, 8: sub-batches of 32 and 4 at most
        assert 0 < history.history["samples_trained"][-1] <= 2 * (3 * 32 + 4)
    if method == "gated-stale":
        memory = keras.ops.convert_to_numpy(wrapped.loss_memory.value)
        assert np.all(memory >= 0)  # every sample scored or trained, at its own index


def test_pruning_counts_updates_under_gradient_accumulation():
    """`optimizer.iterations` is a tensor then, not a variable: the step failed reading
    `.value`. The schedule counts updates: 8 batches of 2 accumulated are 4 steps."""
    from greenscreen.training import MagnitudePruning, polynomial_sparsity

    x, y = data(256)
    pruned = MagnitudePruning(model(), final_sparsity=0.5, end_step=8, frequency=2)
    pruned.compile(keras.optimizers.Adam(1e-2, gradient_accumulation_steps=2),
                   "sparse_categorical_crossentropy")
    history = pruned.fit(x, y, epochs=1, batch_size=32, verbose=0)
    expected = polynomial_sparsity(4, 0.0, 0.5, 0, 8)  # 0.4375, not step 8's 0.5
    assert history.history["sparsity"][-1] == pytest.approx(expected, abs=2e-3)


def test_bottom_up_freezing_with_an_ema_optimizer_keeps_the_frozen_layers():
    """TensorFlow built the optimizer at the first step on the top layers' variables
    alone; the EMA's final overwrite of every variable then failed (shape mismatch)."""
    x, y = data()
    net = model()
    before = [v.numpy().copy() for v in net.trainable_variables]
    ranked = RankedUpdates(net, high_percentage=33, low_percentage=33, granularity="layer",
                           freeze="bottom_up")  # the top one of three layers
    ranked.compile(keras.optimizers.Adam(1e-2, use_ema=True),
                   "sparse_categorical_crossentropy")
    history = ranked.fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    after = [v.numpy() for v in net.trainable_variables]
    for old, new in zip(before[:4], after[:4]):  # the two frozen Dense layers
        # their average is m * w + (1 - m) * w: w, but for float32 rounding
        np.testing.assert_allclose(old, new, rtol=1e-5, atol=1e-7)
    assert not np.array_equal(before[4], after[4])


def two_outputs() -> keras.Model:
    inp = keras.Input((5,))
    hidden = keras.layers.Dense(8, activation="relu")(inp)
    return keras.Model(inp, {"cls": keras.layers.Dense(3, activation="softmax", name="cls")(hidden),
                             "reg": keras.layers.Dense(1, name="reg")(hidden)})


@pytest.mark.parametrize("method", ["ranked", "pruned", "gated"])
def test_each_output_s_loss_is_logged_as_keras_logs_it(method):
    """On JAX every method logged cls_loss and reg_loss as 0.0 (the outputs' loss
    trackers were updated inside the gradient's scope and never read back); and gating a
    model of two outputs crashed where `fit` was given `sample_weight` (review)."""
    from greenscreen.training import MagnitudePruning

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype("float32")
    y = {"cls": rng.integers(0, 3, 64), "reg": rng.normal(size=(64, 1)).astype("float32")}
    wrapped = {"ranked": lambda m: RankedUpdates(m, 50, 20),
               "pruned": lambda m: MagnitudePruning(m, 0.5, end_step=4, frequency=2),
               "gated": lambda m: SampleGating(m, target_rate=0.5, selector="random")}[method](
        two_outputs())
    wrapped.compile("adam", {"cls": "sparse_categorical_crossentropy", "reg": "mse"})
    weights = rng.uniform(0.5, 1.5, 64).astype("float32")
    logs = wrapped.fit(x, y, sample_weight=weights, epochs=1, batch_size=16,
                       verbose=0).history
    assert logs["cls_loss"][0] > 0 and logs["reg_loss"][0] > 0
    assert logs["cls_loss"][0] + logs["reg_loss"][0] == pytest.approx(logs["loss"][0],
                                                                       rel=1e-4)


def test_pruning_leaves_a_layer_frozen_after_wrapping_alone_and_prunes_one_unfrozen():
    """Which kernels were pruned was fixed when the model was wrapped: a layer frozen
    before `compile` was pruned all the same (Keras, RankedUpdates and SampleGating leave
    it alone), and one unfrozen after wrapping was never pruned (review)."""
    from greenscreen.training import MagnitudePruning

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 5)).astype("float32"), rng.integers(0, 3, 64)
    inp = keras.Input((5,))
    hidden = keras.layers.Dense(8, activation="relu", name="d1")(inp)
    net = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="d2")(hidden))
    net.get_layer("d2").trainable = False
    pruned = MagnitudePruning(net, 0.5, begin_step=0, end_step=4, frequency=1)
    net.get_layer("d1").trainable = False  # after wrapping, before compile
    net.get_layer("d2").trainable = True
    before = keras.ops.convert_to_numpy(net.get_layer("d1").kernel)
    pruned.compile("adam", "sparse_categorical_crossentropy")
    logs = pruned.fit(x, y, epochs=2, batch_size=16, verbose=0).history
    assert np.array_equal(before, keras.ops.convert_to_numpy(net.get_layer("d1").kernel))
    d2 = keras.ops.convert_to_numpy(net.get_layer("d2").kernel)
    assert np.mean(d2 == 0) == pytest.approx(0.5, abs=0.1)  # pruned once it trains
    assert logs["sparsity"][-1] == pytest.approx(0.5, abs=0.1)  # of what trains


@pytest.mark.parametrize("method", ["ranked", "pruned", "gated"])
def test_each_output_is_logged_under_its_name(method):
    """Two outputs with the same loss: the wrapper had no output names, so Keras logged
    one `sparse_categorical_crossentropy_loss` (the other output's lost) and `accuracy`,
    `accuracy_1` instead of a_loss, b_loss, a_accuracy, b_accuracy (review)."""
    from greenscreen.training import MagnitudePruning

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 5)).astype("float32"), rng.integers(0, 3, 64)
    inp = keras.Input((5,))
    hidden = keras.layers.Dense(8, activation="relu")(inp)
    net = keras.Model(inp, [keras.layers.Dense(3, activation="softmax", name=n)(hidden)
                            for n in ("a", "b")])
    wrapped = {"ranked": lambda m: RankedUpdates(m, 100, 100),
               "pruned": lambda m: MagnitudePruning(m, 0.5, end_step=4, frequency=2),
               "gated": lambda m: SampleGating(m, target_rate=0.5, selector="random")}[method](
        net)
    wrapped.compile("adam", ["sparse_categorical_crossentropy"] * 2,
                    metrics=[["accuracy"], ["accuracy"]])
    logs = wrapped.fit(x, [y, y], epochs=1, batch_size=16, verbose=0).history
    assert {"a_loss", "b_loss", "a_accuracy", "b_accuracy"} <= set(logs), sorted(logs)
    assert logs["a_loss"][0] + logs["b_loss"][0] == pytest.approx(logs["loss"][0], rel=1e-4)


def test_a_pruned_fit_that_raises_raises_its_own_error():
    """A layer unfrozen between two fits without compiling again: on JAX Keras's step
    raises "Unknown variable" and leaves the variables without values; the masks applied
    after the fit then raised a TypeError in its place (review). TensorFlow trains on
    with the step it traced."""
    from greenscreen.training import MagnitudePruning

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 5)).astype("float32"), rng.integers(0, 3, 64)
    inp = keras.Input((5,))
    hidden = keras.layers.Dense(8, activation="relu", name="d1")(inp)
    net = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(hidden))
    pruned = MagnitudePruning(net, 0.5, end_step=4, frequency=2)
    net.get_layer("d1").trainable = False
    pruned.compile("adam", "sparse_categorical_crossentropy")
    pruned.fit(x, y, epochs=1, batch_size=16, verbose=0)
    net.get_layer("d1").trainable = True  # and no compile
    try:
        pruned.fit(x, y, epochs=1, batch_size=16, verbose=0)
    except ValueError as exc:  # Keras's own, as a plain model raises it
        assert "variable" in str(exc).lower()
