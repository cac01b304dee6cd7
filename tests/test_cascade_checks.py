"""What a read of the cascade found: one meter and one provenance for the threshold's
joules, a list of rows is one array for a model of one input, namedtuples of inputs, and
one clear error, before any model runs, for labels, models, predictions, meters, seeds,
outputs and model files it cannot take."""

import collections
import subprocess
import sys

import keras
import numpy as np
import pytest
from test_cascade_faults import run_cli

from greenscreen.cascade import Cascade, add_duplicates, find_threshold, heterogeneity_matrix
from greenscreen.cascade.scores import NotProbabilities
from greenscreen.cascade.threshold import measure
from greenscreen.meters import EnergyMeter

ALL_BACKENDS = pytest.mark.backends("tensorflow", "jax", "torch")


class Counting:
    """A model (predict_on_batch) that answers fixed probability rows and counts its calls."""

    def __init__(self, row):
        self.row, self.calls = np.asarray(row, dtype=float), 0

    def predict_on_batch(self, x):
        self.calls += 1
        return np.tile(self.row, (len(x), 1))


def softmax_model(features=4, classes=3):
    return keras.Sequential([keras.Input((features,)),
                             keras.layers.Dense(classes, activation="softmax")])


def test_both_models_joules_come_from_one_meter_and_carry_its_source(fake_smi):
    x, y = np.random.default_rng(0).random((64, 4)), np.ones(64, dtype=int)
    search = find_threshold(Counting([0.6, 0.4]), Counting([0.1, 0.9]), x, y, n_values=3)
    assert {c.source for c in search.costs.values()} == {"measured:nvidia-smi"}
    summary = search.summary()
    assert summary["source"] == "measured:nvidia-smi" and "energy_reason" not in summary
    assert summary["at_best_threshold"]["source"] == "measured:nvidia-smi"
    assert np.isfinite(search.joules_per_prediction).all()


def test_a_meter_given_must_be_an_energy_meter_and_is_started_if_it_is_not(fake_smi):
    small = Counting([0.6, 0.4])
    x = np.zeros((8, 4))
    with pytest.raises(ValueError, match="meter='nvml' is not valid.*an EnergyMeter"):
        find_threshold(small, small, x, np.zeros(8, dtype=int), meter="nvml")
    with pytest.raises(ValueError, match="meter=.* is not valid"):
        measure(small, x, meter="nvml")
    assert small.calls == 0
    meter = EnergyMeter("nvidia-smi", interval=0.05)  # not started: measure starts it
    try:
        _, cost = measure(small, x, meter=meter)
        assert meter.running and cost.source == "measured:nvidia-smi"
    finally:
        meter.stop()


@ALL_BACKENDS
@pytest.mark.parametrize("n", [5, 1])
def test_a_list_of_rows_is_one_array_for_a_model_of_one_input(n):
    model = softmax_model()
    x = np.random.default_rng(1).random((n, 4)).astype("float32")
    as_array = Cascade(model, model, "maxp", 0.0).predict(x).predictions
    as_rows = Cascade(model, model, "maxp", 0.0).predict(list(x)).predictions
    assert len(as_rows) == n and (as_rows == as_array).all()


class ListOfRows:
    """A model (predict_on_batch) that answers a Python list of probability rows."""

    def predict_on_batch(self, x):
        return [[0.9, 0.1] for _ in range(len(x))]


def test_a_model_that_answers_a_list_of_rows_has_one_output():
    model = ListOfRows()
    result = Cascade(model, model, "maxp", 0.5).predict(np.zeros((3, 2)))
    assert result.predictions.tolist() == [0, 0, 0]


def test_a_list_of_numpy_numbers_is_one_array():
    model = Counting([0.6, 0.4])
    result = Cascade(model, model, "maxp", 0.0).predict([np.float32(0.1), np.float32(0.2)])
    assert result.predictions.tolist() == [0, 0]


@ALL_BACKENDS
def test_a_namedtuple_of_inputs_is_taken_as_keras_takes_it():
    pair = collections.namedtuple("Pair", "a b")
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    model = keras.Model([a, b], keras.layers.Dense(3, activation="softmax")(
        keras.layers.Concatenate()([a, b])))
    x = np.random.default_rng(2).random((6, 4)).astype("float32")
    result = Cascade(model, model, "maxp", 0.0).predict(pair(x, x))
    assert (result.predictions == np.argmax(model.predict_on_batch([x, x]), axis=1)).all()


def test_oracle_without_labels_fails_before_the_small_model_runs():
    small = Counting([0.6, 0.4])
    with pytest.raises(ValueError, match="y=None is not valid.*score='oracle'"):
        Cascade(small, small, "oracle", 0.5).predict(np.zeros((4, 2)))
    assert small.calls == 0


@pytest.mark.parametrize("entry, said", [
    ("model.keras", "models\\['m'\\]=.* is not valid"),
    (np.zeros((3, 2, 2)), "predictions shaped \\(3, 2, 2\\)"),
    (np.zeros(5, dtype=int), "<5 predictions>' is not valid.*one prediction per label: 3"),
])
def test_heterogeneity_names_an_entry_it_cannot_take(entry, said):
    with pytest.raises(ValueError, match=said):
        heterogeneity_matrix({"m": entry}, None, np.zeros(3, dtype=int))


def test_heterogeneity_takes_predictions_as_a_tuple_of_classes():
    found = heterogeneity_matrix({"a": (1, 0, 1), "b": np.array([1, 1, 1])}, None, [1, 1, 1])
    assert found.loc["a", "b"] == pytest.approx(1 / 3) and found.loc["b", "a"] == 0.0


def test_a_model_of_several_outputs_is_refused_in_words_and_one_in_a_dict_is_its_output():
    inp = keras.Input((4,))
    dense = keras.layers.Dense(3, activation="softmax")
    x = np.zeros((6, 4), dtype="float32")
    for model in (keras.Model(inp, {"p": dense(inp), "q": keras.layers.Dense(2)(inp)}),
                  keras.Model(inp, [dense(inp), keras.layers.Dense(2)(inp)])):
        with pytest.raises(NotProbabilities, match="gave 2 outputs.*not supported"):
            Cascade(model, model, "maxp", 0.5).predict(x)
    one = keras.Model(inp, {"p": dense(inp)})
    assert len(Cascade(one, one, "maxp", 0.5).predict(x).predictions) == 6


def test_add_duplicates_refuses_a_negative_seed_and_takes_numpy_s_others():
    with pytest.raises(ValueError, match="seed=-1 is not valid"):
        add_duplicates(np.zeros((4, 2)), np.zeros(4), duplicates=0.5, seed=-1)
    for seed in (None, 2**40):  # as np.random.default_rng takes them
        x, _ = add_duplicates(np.zeros((4, 2)), np.zeros(4), duplicates=0.5, seed=seed)
        assert len(x) == 6


def test_cli_refuses_a_negative_seed_in_one_line():
    done = run_cli("heterogeneity", "--seed", "-1")
    assert done.returncode == 2 and "seed=-1 is not valid" in done.stderr
    assert "Traceback" not in done.stderr


@keras.saving.register_keras_serializable(package="cascade_checks")
class Twice(keras.layers.Layer):
    def call(self, x):
        return 2 * x


def test_cli_a_model_file_that_needs_a_layer_of_your_own_is_one_line(tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 1)), Twice(), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    path = tmp_path / "custom.keras"
    model.save(path)
    # In a process of its own: in this one, Keras finds `Twice` by its module's name.
    done = subprocess.run([sys.executable, "-m", "greenscreen.cascade", "heterogeneity", "-m1",
                           str(path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "needs a class that is not known here" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_a_model_file_this_keras_cannot_read_is_not_called_a_layer_of_your_own(tmp_path):
    """A file whose layer config holds an argument this Keras does not know (saved by a
    newer one): unreadable, not "needs a class of your own"."""
    import json
    import zipfile

    path = tmp_path / "plain.keras"
    keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                      keras.layers.Dense(10, activation="softmax")]).save(path)
    edited = tmp_path / "newer.keras"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(edited, "w") as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                config["config"]["layers"][-1]["config"]["newer_keras_option"] = None
                data = json.dumps(config).encode()
            out.writestr(item, data)
    done = run_cli("heterogeneity", "-m1", str(edited))
    assert done.returncode == 2, done.stderr[-2000:]
    assert "could not be loaded" in done.stderr and "not known here" not in done.stderr
