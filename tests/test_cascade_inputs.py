"""A cascade of models that take several inputs: a list, tuple or dict of arrays, row-aligned,
gathered and padded as one array is."""

import keras
import numpy as np
import pytest

from greenscreen.cascade import Cascade, PredictionMemory, add_duplicates, find_threshold
from greenscreen.cascade.cascade import BIG, SMALL
from greenscreen.cascade.threshold import measure_memory

ALL_BACKENDS = pytest.mark.backends("tensorflow", "jax", "torch")


def two_input_average():
    """A real two-input Keras model whose output is the mean of its inputs' rows: given
    probability rows in both, it answers their average, so the routing is known."""
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    return keras.Model([a, b], keras.layers.Average()([a, b]))


def two_input_constant(cls):
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    dense = keras.layers.Dense(3)
    out = dense(keras.layers.Concatenate()([a, b]))
    bias = np.zeros(3)
    bias[cls] = 1.0
    dense.set_weights([np.zeros((6, 3)), bias])
    return keras.Model([a, b], out)


def one_input_passthrough():
    return keras.Sequential([keras.Input((3,)), keras.layers.Activation("linear")])


def rows(seed, n=37):
    """n probability rows of 3 classes, float32."""
    p = np.random.default_rng(seed).random((n, 3)) + 0.05
    return (p / p.sum(axis=1, keepdims=True)).astype("float32")


@ALL_BACKENDS
@pytest.mark.parametrize("form", ["list", "tuple", "dict"])
def test_a_cascade_of_two_input_models_routes_as_one_of_their_averaged_rows(form):
    """37 samples in batches of 8 (a padded last batch, escalations gathered and padded):
    the same predictions, routing and escalations as a one-input cascade on the rows the
    two-input model computes."""
    a, b = rows(0), rows(1)
    given = {"list": [a, b], "tuple": (a, b), "dict": {"a": a, "b": b}}[form]
    several = Cascade(two_input_average(), two_input_constant(2), "difference", 0.3)
    one = Cascade(one_input_passthrough(), two_input_constant(2), "difference", 0.3)
    got = several.predict(given, batch_size=8)
    # The big model of the one-input cascade is asked the same rows' class: it answers 2
    # whatever it is given, so one cascade's reference is the averaged rows themselves.
    one.big = one_input_constant(2)
    want = one.predict((a + b) / 2, batch_size=8)
    assert got.routing.tolist() == want.routing.tolist()
    assert got.predictions.tolist() == want.predictions.tolist()
    assert 0 < got.escalation_rate < 1
    assert set(got.routing.tolist()) == {SMALL, BIG}


def one_input_constant(cls):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    bias = np.zeros(3)
    bias[cls] = 1.0
    model.layers[0].set_weights([np.zeros((3, 3)), bias])
    return model


def test_find_threshold_measures_two_input_models():
    a, b = rows(2, 40), rows(3, 40)
    y = np.argmax(a + b, axis=1)  # the small model is always right
    search = find_threshold(two_input_average(), two_input_constant(0), {"a": a, "b": b}, y,
                            n_values=11)
    assert search.small_accuracy == 1.0
    assert search.escalation_rate[0] == 0.0 and search.escalation_rate[-1] == 1.0
    assert search.best_threshold == 0.0  # never escalating is as accurate and cheapest


def test_inputs_of_unequal_lengths_and_several_inputs_with_a_memory_are_clear_errors():
    a, b = rows(4, 10), rows(5, 9)
    cascade = Cascade(two_input_average(), two_input_constant(0), "maxp", 0.5)
    with pytest.raises(ValueError, match=r"x='<dict of 2 inputs>' is not valid; allowed: "
                                         r"the same number of samples in every input; rows "
                                         r"per input: 'a': 10, 'b': 9"):
        cascade.predict({"a": a, "b": b})
    with pytest.raises(ValueError, match=r"x='<dict of 0 inputs>' is not valid; allowed: "
                                         r"one array of samples, or at least one input"):
        cascade.predict({})
    with pytest.raises(ValueError, match=r"x\['b'\]=.* is not valid"):
        cascade.predict({"a": a, "b": np.float32(1.0)})
    remembering = Cascade(two_input_average(), two_input_constant(0), "maxp", 0.5,
                          memory=PredictionMemory("dhash"))
    with pytest.raises(ValueError, match="memory=None for models of several inputs"):
        remembering.predict([a, a])
    for refuse in (lambda: measure_memory("dhash", [a, a]),
                   lambda: add_duplicates([a, a], np.zeros(10), duplicates=0.5)):
        with pytest.raises(ValueError, match="several inputs .* are not supported here"):
            refuse()
