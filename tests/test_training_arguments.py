"""Bad arguments to the training methods raise at construction, in the library's template;
stale scoring's data (its indices) is checked before or at the first step.

The template is greenscreen.validation's: "name=value is not valid; allowed: ...".
"""

import math

import keras
import numpy as np
import pytest

from greenscreen.training import (
    ASTController,
    MagnitudePruning,
    PIController,
    RankedUpdates,
    SampleGating,
    with_indices,
)
from greenscreen.validation import check_integer, check_number

pytestmark = pytest.mark.backends("tensorflow", "jax")

INTEGER_FROM_0 = "allowed: an integer in [0, inf)."
INTEGER_FROM_1 = "allowed: an integer in [1, inf)."
GAIN = "allowed: a number in [0, inf)."


def model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((12,)), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(2, activation="softmax")])


def data(n=64):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 12)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32")


def stale(num_samples):
    gated = SampleGating(model(), target_rate=0.5, scoring="stale", num_samples=num_samples)
    gated.compile("adam", "sparse_categorical_crossentropy")
    return gated


# -- the helper -------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [0, 7, np.int64(7), np.int32(7), np.uint8(7), 10 ** 400])
def test_check_integer_takes_python_and_numpy_integers(value):
    assert check_integer("n", value, low=0) is value


@pytest.mark.parametrize("value", [1.5, 2.0, np.float64(2.0), True, np.bool_(True), "3", None,
                                   math.nan, math.inf])
def test_check_integer_refuses_floats_bools_and_the_rest(value):
    with pytest.raises(ValueError) as raised:
        check_integer("n", value, low=0)
    assert str(raised.value) == f"n={value!r} is not valid; {INTEGER_FROM_0}"


def test_check_integer_tells_its_interval_as_check_number_does():
    with pytest.raises(ValueError, match=r"^n=3 is not valid; allowed: an integer in \(3, 9\]"
                                         r" or None\.$"):
        check_integer("n", 3, low=3, low_open=True, high=9, allow_none=True)
    assert check_integer("n", None, allow_none=True) is None
    with pytest.raises(ValueError, match=r"allowed: a number in \[0, inf\)\.$"):
        check_number("x", math.inf, low=0, high=math.inf, high_open=True)


# -- constructor arguments ----------------------------------------------------------------------

BAD = [
    (SampleGating, {"warmup_epochs": 1.5}, f"warmup_epochs=1.5 is not valid; {INTEGER_FROM_0}"),
    (SampleGating, {"warmup_epochs": True}, f"warmup_epochs=True is not valid; {INTEGER_FROM_0}"),
    (SampleGating, {"min_samples": 2.5}, f"min_samples=2.5 is not valid; {INTEGER_FROM_1}"),
    (SampleGating, {"scoring": "stale", "refresh_every": 0.5},
     f"refresh_every=0.5 is not valid; {INTEGER_FROM_0}"),
    (SampleGating, {"kp": "x"}, f"kp='x' is not valid; {GAIN}"),
    (SampleGating, {"kp": -0.5}, f"kp=-0.5 is not valid; {GAIN}"),
    (SampleGating, {"kp": math.inf}, f"kp=inf is not valid; {GAIN}"),
    (SampleGating, {"ki": -1.0}, f"ki=-1.0 is not valid; {GAIN}"),
    (SampleGating, {"ki": -1.0, "controller": "ast"}, f"ki=-1.0 is not valid; {GAIN}"),
    (SampleGating, {"ema": 1.5}, "ema=1.5 is not valid; allowed: a number in [0, 1)."),
    (SampleGating, {"ema": 1.0, "controller": "ast"},
     "ema=1.0 is not valid; allowed: a number in [0, 1)."),
    (RankedUpdates, {"granularity": "layer", "rerank_every": 2.5},
     f"rerank_every=2.5 is not valid; {INTEGER_FROM_1}"),
    (RankedUpdates, {"granularity": "layer", "max_traces": 1.5},
     f"max_traces=1.5 is not valid; {INTEGER_FROM_1}"),
    (MagnitudePruning, {"frequency": 2.5}, f"frequency=2.5 is not valid; {INTEGER_FROM_1}"),
    (MagnitudePruning, {"begin_step": 1.5}, f"begin_step=1.5 is not valid; {INTEGER_FROM_0}"),
    (MagnitudePruning, {"end_step": math.inf},
     "end_step=inf is not valid; allowed: an integer in (0, inf)."),
    (MagnitudePruning, {"begin_step": 100, "end_step": 100},
     "end_step=100 is not valid; allowed: an integer in (100, inf)."),
]


@pytest.mark.parametrize("method, settings, message", BAD)
def test_bad_arguments_raise_at_construction_in_the_template(method, settings, message):
    with pytest.raises(ValueError) as raised:
        method(model(), **settings)
    assert str(raised.value) == message
    assert method.incompatibility(**settings) == message  # one rule, one message


@pytest.mark.parametrize("settings, message", [
    ({"num_samples": -5}, "num_samples=-5 is not valid; allowed: an integer in [1, inf) or None."),
    ({"num_samples": 2.5, "scoring": "stale"},
     "num_samples=2.5 is not valid; allowed: an integer in [1, inf) or None."),
])
def test_num_samples_is_a_positive_integer_whatever_the_scoring(settings, message):
    with pytest.raises(ValueError) as raised:
        SampleGating(model(), **settings)
    assert str(raised.value) == message


def test_a_model_that_is_not_one_is_told_in_the_template():
    with pytest.raises(ValueError, match=r"^model=None is not valid; allowed: a built model"):
        SampleGating(None)
    with pytest.raises(ValueError, match=r"^model='str' is not valid; allowed: a built model"):
        MagnitudePruning("model.keras")


@pytest.mark.parametrize("make", [
    lambda: PIController(0.3, ki=-0.1), lambda: PIController(0.3, ema=1.0),
    lambda: ASTController(0.1, kp=-0.001)])
def test_controllers_refuse_the_gains_sample_gating_refuses(make):
    with pytest.raises(ValueError, match="is not valid; allowed: a number in"):
        make()


def test_valid_arguments_stay_valid():
    i = np.int64
    SampleGating(model(), target_rate=np.float32(0.3), warmup_epochs=i(1), min_samples=i(2),
                 kp=0.0, ki=0, ema=0.0, scoring="stale", num_samples=i(64), refresh_every=i(2))
    SampleGating(model(), kp=np.float32(0.2), ki=1, ema=np.float64(0.5), controller="ast")
    RankedUpdates(model(), high_percentage=i(50), granularity="layer", rerank_every=i(3),
                  max_traces=i(2))
    MagnitudePruning(model(), begin_step=i(2), end_step=i(40), frequency=i(4))
    assert PIController(0.3, kp=0, ki=0).kp == 0


# -- stale scoring's data -------------------------------------------------------------------------

def test_stale_scoring_fed_arrays_without_indices_says_to_wrap_them():
    x, y = data()
    with pytest.raises(ValueError) as raised:
        stale(len(x)).fit(x, y, epochs=1, batch_size=16, verbose=0)
    message = str(raised.value)
    assert "got x as one array of shape (64, 12)" in message
    assert "Wrap x with greenscreen.training.with_indices(x)" in message


def test_stale_scoring_fed_a_dataset_without_indices_fails_its_first_step_clearly():
    import tensorflow as tf

    x, y = data()
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    with pytest.raises(ValueError, match=r"needs each sample's index with its inputs.*"
                                         r"with_indices\(x\)"):
        stale(len(x)).fit(batches, epochs=1, shuffle=False, verbose=0)
    wrong = tf.data.Dataset.from_tensor_slices(((x, x), y)).batch(16)  # not indices
    with pytest.raises(ValueError, match=r"one integer index per sample; got indices of "
                                         r"dtype float32 and shape \((16|None), 12\)"):
        stale(len(x)).fit(wrong, epochs=1, shuffle=False, verbose=0)


@pytest.mark.parametrize("as_keyword", [False, True])
def test_stale_scoring_refuses_indices_beyond_num_samples_before_training(as_keyword):
    x, y = data()
    gated = stale(40)
    with pytest.raises(ValueError) as raised:
        if as_keyword:
            gated.fit(x=with_indices(x), y=y, epochs=1, batch_size=16, verbose=0)
        else:
            gated.fit(with_indices(x), y, epochs=1, batch_size=16, verbose=0)
    message = str(raised.value)
    assert message.startswith("num_samples=40 but the data has 64 samples, with indices 0 to 63")
    assert "num_samples=len(x)" in message
    assert float(keras.ops.convert_to_numpy(gated.samples_trained)) == 0  # nothing trained


def test_stale_scoring_refuses_negative_or_non_integer_indices():
    x, y = data()
    with pytest.raises(ValueError, match=r"indices -1 to 62: .*in \[0, 64\)"):
        stale(64).fit((x, np.arange(-1, 63)), y, epochs=1, batch_size=16, verbose=0)
    with pytest.raises(ValueError, match=r"got indices of dtype float64 and shape \(64,\)"):
        stale(64).fit((x, np.arange(64.0)), y, epochs=1, batch_size=16, verbose=0)


def test_stale_scoring_trains_on_indexed_arrays_and_numpy_sizes():
    x, y = data()
    gated = stale(np.int64(len(x)))
    gated.fit(with_indices(x), y, epochs=1, batch_size=16, verbose=0)
    assert float(keras.ops.convert_to_numpy(gated.samples_trained)) > 0
