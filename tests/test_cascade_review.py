"""Faults of the inference cascade found by a read-only review: a big model's NaN rows, two
models answering different classes, a first output of rank 1, datasets and iterators as
x, the threshold search's memory and its `at`, and the memory verdict's provenance."""

import keras
import numpy as np
import pytest

from greenscreen.cascade import Cascade, find_threshold
from greenscreen.cascade.evaluation import memory_verdict
from greenscreen.cascade.scores import NotProbabilities

ALL_BACKENDS = pytest.mark.backends("tensorflow", "jax", "torch")
X = np.random.default_rng(0).random((64, 8)).astype("float32")
Y = np.arange(64) % 10


def dense(classes: int, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(classes, "softmax")])


class Rows:
    """A user's model (not Keras) that answers fixed probability rows, in order."""

    def __init__(self, rows):
        self.rows = np.asarray(rows, dtype="float64")

    def predict_on_batch(self, x):
        return np.resize(self.rows, (len(x), self.rows.shape[1]))


class BySample:
    """A user's model (not Keras) that answers row x of its rows for input x."""

    def __init__(self, rows):
        self.rows = np.asarray(rows, dtype="float64")

    def predict_on_batch(self, x):
        return self.rows[np.asarray(x)[:, 0].astype(int)]


@ALL_BACKENDS
def test_a_big_model_s_nan_rows_keep_the_small_model_s_answer():
    """A diverged big model's NaN rows were read by argmax as class 0, without a word,
    and counted as right wherever the label was 0."""
    small = dense(10)
    diverged = keras.Sequential([dense(10, seed=1), keras.layers.Lambda(lambda z: z * np.nan)])
    alone = Cascade(small, small, threshold=0.0).predict(X).predictions
    result = Cascade(small, diverged, threshold=1.0).predict(X)
    assert result.escalated.all() and (result.predictions == alone).all()
    search = find_threshold(small, diverged, X, Y, n_values=3)
    assert search.big_accuracy == 0.0  # no NaN row is an answer
    assert search.accuracy.tolist() == [search.small_accuracy] * 3


def test_models_answering_different_classes_are_refused():
    with pytest.raises(NotProbabilities, match="small model answers 10 classes and the big "
                                               "model 3"):
        Cascade(dense(10), dense(3))
    with pytest.raises(NotProbabilities, match="10 classes and the big model 3"):
        find_threshold(dense(10), dense(3), X, Y, n_values=3)
    # Models that say their classes only when they answer: refused at the first escalation
    with pytest.raises(NotProbabilities, match="small model answers 2 classes and the big "
                                               "model 10"):
        Cascade(Rows([[0.5, 0.5]]), Rows(np.full((1, 10), 0.1)), threshold=1.0).predict(X)


def test_a_model_whose_first_output_is_rank_one_is_several_outputs():
    inputs = keras.Input((8,))
    first = keras.layers.Reshape(())(keras.layers.Dense(1)(inputs))
    two = keras.Model(inputs, [first, keras.layers.Dense(10, activation="softmax")(inputs)])
    with pytest.raises(NotProbabilities, match="the model gave 2 outputs"):
        Cascade(two, dense(10)).predict(X)


def test_datasets_and_iterators_as_x_are_named_and_refused():
    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return X[16 * i:16 * (i + 1)]

    cascade = Cascade(dense(10), dense(10, seed=1))
    for given, name in ((Batches(), "Batches"), ((b for b in [X]), "generator"),
                        (iter([X]), "list_iterator")):
        with pytest.raises(ValueError, match=f"x='<{name}>' is not valid; allowed: one array "
                                             "of samples.*iterator of batches"):
            cascade.predict(given)


@pytest.mark.parametrize("threshold", [float("nan"), 7, "0.5"])
def test_a_threshold_off_the_grid_is_refused_by_at(threshold):
    search = find_threshold(Rows([[0.6, 0.4]]), Rows([[0.1, 0.9]]), X[:8], Y[:8] % 2,
                            n_values=11)
    with pytest.raises(ValueError, match="threshold=.* is not valid"):
        search.at(threshold)


def test_the_threshold_search_counts_as_the_cascade_predicts_without_a_big_matrix():
    """The search counted a thresholds x samples matrix (2 GB at 500 000 samples); it now
    counts from the sorted scores, and every threshold's accuracy and escalation rate is
    still what `Cascade.predict` gives there, ties and NaN scores included."""
    rng = np.random.default_rng(1)
    small_rows = rng.dirichlet([1, 1, 1], 200)
    small_rows[:10] = [0.5, 0.25, 0.25]  # maxp ties at thresholds of the grid
    small_rows[10:20] = [0.7, 0.2, 0.1]
    small_rows[20:25] = np.nan  # a NaN score escalates
    big_rows = rng.dirichlet([1, 1, 1], 200)
    y = rng.integers(0, 3, 200)
    small, big, x = BySample(small_rows), BySample(big_rows), np.arange(200)[:, None]
    for name in ("maxp", "difference", "entropy", "oracle"):  # oracle: a NaN row is wrong
        search = find_threshold(small, big, x, y, score=name, n_values=21, batch_size=64)
        for t, acc, rate in zip(search.thresholds, search.accuracy, search.escalation_rate):
            result = Cascade(small, big, score=name, threshold=float(t)).predict(
                x, batch_size=64, y=y)
            assert rate == pytest.approx(result.escalation_rate), (name, t)
            assert acc == pytest.approx((result.predictions == y).mean()), (name, t)


def test_the_memory_verdict_names_its_provenance_and_weighs_no_estimate_with_a_measurement():
    measured = {"joules": 2.0, "seconds": 1.0, "source": "measured:nvml-counter"}
    costs = {"small": dict(measured, joules=0.2), "big": measured,
             "memory": dict(measured, joules=0.01)}
    verdict = memory_verdict(costs, 0.1, 0.2)
    assert verdict["compared_in"] == "joules" and verdict["source"] == "measured:nvml-counter"
    assert "(measured:nvml-counter)" in verdict["note"] and "modelled" in verdict["saving"]
    mixed = dict(costs, memory={"joules": 0.01, "seconds": 0.5, "source": "estimated:cpu-time"})
    verdict = memory_verdict(mixed, 0.1, 0.2)
    assert verdict["compared_in"] == "seconds" and verdict["source"] is None


def test_one_sample_without_its_batch_axis_and_a_squeezed_sigmoid_are_named():
    """Both reached the backend (whose message differed by backend), or were told "a
    model with several outputs is not supported"."""
    with pytest.raises(ValueError, match=r"x='<array shaped \(8,\)>' is not valid; allowed: "
                                         r"samples shaped \(8,\) with the batch axis first"):
        Cascade(dense(10), dense(10, seed=1)).predict(X[0])
    with pytest.raises(ValueError, match="x_val='<array shaped"):
        find_threshold(dense(10), dense(10, seed=1), X[0], Y[:8], n_values=3)
    with pytest.raises(NotProbabilities, match=r"one number per sample: a one-unit sigmoid"):
        Cascade(Squeezed(), Squeezed()).predict(X)


def test_samples_keras_reshapes_itself_still_pass():
    """A review of the shape check above: (n, 28, 28) for an input of (28, 28, 1), which
    Keras takes, was refused; only one sample without its batch axis is."""
    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(
        keras.layers.Flatten()(inputs)))
    images = np.random.default_rng(0).random((6, 4, 4)).astype("float32")
    assert len(Cascade(model, model, threshold=0.5).predict(images).predictions) == 6
    with pytest.raises(ValueError, match="one sample: x"):
        Cascade(model, model).predict(images[0][..., None])


class Squeezed:
    """A one-unit sigmoid whose output lost its last axis: (n,)."""

    def predict_on_batch(self, x):
        return np.full(len(x), 0.7)
