"""Inference cascade: scores, routing, oracle bound, thresholds, memory, heterogeneity."""

import keras
import numpy as np
import pytest

from greenscreen.cascade import (
    BIG,
    MEMORY,
    SMALL,
    Cascade,
    PredictionMemory,
    add_duplicates,
    difference,
    entropy,
    find_threshold,
    heterogeneity_matrix,
    maxp,
    oracle,
    score,
)

ROWS = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [1 / 3, 1 / 3, 1 / 3], [0.0, 1.0, 0.0]])


def test_score_functions_on_hand_made_rows():
    assert maxp(ROWS) == pytest.approx([0.7, 0.4, 1 / 3, 1.0])
    assert difference(ROWS) == pytest.approx([0.5, 0.05, 0.0, 1.0])
    ent = entropy(ROWS)
    assert ent[2] == pytest.approx(0.0, abs=1e-9) and ent[3] == pytest.approx(1.0)
    assert ent[0] > ent[1]  # lower entropy = more confident = higher score
    assert oracle(ROWS, np.array([0, 1, 2, 1])).tolist() == [1.0, 0.0, 0.0, 1.0]


def passthrough(k):
    """A real Keras model whose output is its input: the rows *are* the probabilities."""
    return keras.Sequential([keras.Input((k,)), keras.layers.Activation("linear")])


def constant(k, cls):
    """A real Keras model that always answers class `cls` with certainty."""
    model = keras.Sequential([keras.Input((k,)), keras.layers.Dense(k)])
    bias = np.zeros(k)
    bias[cls] = 1.0
    model.layers[0].set_weights([np.zeros((k, k)), bias])
    return model


def test_routing_sends_exactly_the_low_confidence_rows():
    cascade = Cascade(passthrough(3), constant(3, 2), score="difference", threshold=0.3)
    out = cascade.predict(ROWS.astype("float32"), batch_size=3)
    assert out.escalated.tolist() == [False, True, True, False]
    assert out.routing.tolist() == [SMALL, BIG, BIG, SMALL]
    assert out.predictions.tolist() == [0, 2, 2, 1]
    assert out.escalation_rate == 0.5


def test_postcheck_keeps_the_small_answer_when_big_is_less_sure():
    unsure_big = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    unsure_big.layers[0].set_weights([np.zeros((3, 3)), np.array([0.34, 0.33, 0.33])])
    cascade = Cascade(passthrough(3), unsure_big, "difference", 0.3, postcheck=True)
    out = cascade.predict(ROWS.astype("float32"))
    # Row 1: small's difference 0.05 > big's 0.01 -> small stands; row 2: 0.0 < 0.01 -> big.
    assert out.routing.tolist() == [SMALL, SMALL, BIG, SMALL]


def test_oracle_gives_the_upper_bound():
    y = np.array([0, 1, 2, 1])
    cascade = Cascade(passthrough(3), constant(3, 2), score="oracle", threshold=0.5)
    out = cascade.predict(ROWS.astype("float32"), y=y)
    small_right = ROWS.argmax(1) == y
    big_right = np.full(4, 2) == y
    assert np.mean(out.predictions == y) == np.mean(small_right | big_right)
    assert out.escalated.tolist() == (~small_right).tolist()


def test_find_threshold_on_a_toy_pair_with_a_known_answer():
    # Inputs carry two blocks: the small model reads the first three columns as its
    # probabilities, the big model reads the one-hot label in the last three: always right.
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 400)
    small_rows = np.full((400, 3), 0.05)
    small_rows[np.arange(400), y] = 0.9  # confident and right: difference 0.85
    unsure = np.arange(400) % 4 == 0
    small_rows[unsure] = [0.4, 0.35, 0.25]  # difference 0.05: right only where y == 0
    x = np.concatenate([small_rows, np.eye(3)[y]], axis=1).astype("float32")
    small = keras.Sequential([keras.Input((6,)), keras.layers.Lambda(lambda t: t[:, :3])])
    big = keras.Sequential([keras.Input((6,)), keras.layers.Lambda(lambda t: t[:, 3:])])
    search = find_threshold(small, big, x, y, score="difference", n_values=201, tolerance=0.0)
    assert search.big_accuracy == 1.0
    assert search.small_accuracy == pytest.approx(1 - np.mean(unsure & (y != 0)))
    # The cheapest threshold reaching the big model's accuracy escalates exactly the
    # unsure quarter: the first grid value above 0.05.
    assert search.cheapest_matching_threshold == pytest.approx(0.055)
    assert search.best_threshold == pytest.approx(0.055)
    i = int(round(0.055 / 0.005))
    assert search.escalation_rate[i] == pytest.approx(0.25)
    assert search.accuracy[0] == search.small_accuracy and search.escalation_rate[-1] == 1.0
    big_cost = search.costs["big"].seconds_per_prediction
    assert search.seconds_per_prediction[i] == pytest.approx(
        search.costs["small"].seconds_per_prediction + 0.25 * big_cost)
    assert search.costs["small"].source in ("estimated:cpu-time", "measured:rapl",
                                            "measured:nvidia-smi", "measured:nvml-counter")


def test_memory_hits_exact_duplicates_and_is_bounded():
    rng = np.random.default_rng(0)
    images = rng.random((5, 8, 8))
    mem = PredictionMemory("dhash", capacity=3)
    for i, img in enumerate(images):
        assert mem.lookup(img) is None
        mem.add(img, i)
    assert len(mem) == 3
    assert mem.lookup(images[4]) == 4 and mem.lookup(images[0]) is None  # evicted
    assert mem.hit_rate == pytest.approx(1 / 7)


def test_invariant_memory_hits_rotated_and_flipped_copies():
    rng = np.random.default_rng(1)
    img = rng.random((8, 8))
    plain, inv = PredictionMemory("dhash"), PredictionMemory("invariants")
    plain.add(img, 7)
    inv.add(img, 7)
    for variant in (np.rot90(img), np.rot90(img, 2), np.rot90(img, 3), np.fliplr(img),
                    np.flipud(img)):
        assert inv.lookup(variant) == 7
    assert plain.lookup(np.rot90(img)) is None


def test_cascade_memory_answers_duplicates_without_a_model():
    x = np.repeat(ROWS.astype("float32")[:, None, :], 3, axis=1)  # 4 "images" of 3x3
    flat_small = keras.Sequential([keras.Input((3, 3)), keras.layers.Lambda(lambda t: t[:, 0])])
    mem = PredictionMemory("dhash")
    cascade = Cascade(flat_small, flat_small, "maxp", 0.0, memory=mem)
    first = cascade.predict(x)
    second = cascade.predict(x)
    assert (second.routing == MEMORY).all() and (second.predictions == first.predictions).all()
    assert mem.hit_rate == 0.5


def test_heterogeneity_matrix_on_hand_made_predictions():
    y = np.array([0, 1, 2, 0])
    m = heterogeneity_matrix({"a": np.array([0, 1, 0, 1]), "b": np.array([0, 0, 2, 0])}, None, y)
    assert m.loc["a", "b"] == 0.5  # a wrong & b right on samples 2 and 3
    assert m.loc["b", "a"] == 0.25  # b wrong & a right on sample 1
    assert m.loc["a", "a"] == 0.0


def test_duplicates_and_rotations_for_evaluation():
    x = np.arange(10 * 4 * 4, dtype=float).reshape(10, 4, 4)
    y = np.arange(10)
    xd, yd = add_duplicates(x, y, duplicates=0.5, rotations=1.0)
    assert len(xd) == 15 and sorted(np.bincount(yd).tolist()).count(2) == 5


@pytest.mark.parametrize("make, match", [
    (lambda: Cascade(None, None, score="margin"), "score='margin' is not valid"),
    (lambda: Cascade(None, None, threshold=1.5), "threshold=1.5 is not valid"),
    (lambda: add_duplicates(np.zeros((2, 2, 2)), np.zeros(2), duplicates=2), "duplicates=2"),
    (lambda: add_duplicates(np.zeros((2, 2, 2)), np.zeros(2), rotations=-1), "rotations=-1"),
    (lambda: score("oracle", ROWS), "without labels"),
    (lambda: PredictionMemory("phash"), "memory='phash' is not valid"),
])
def test_bad_arguments_are_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def run_cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "greenscreen.cascade", *args],
                          capture_output=True, text=True, timeout=600)


def test_cli_runs_a_cascade_with_memory_on_the_embedded_digits():
    import json

    out = run_cli("run", "--epochs", "1", "--memory", "invariants", "--duplicates", "0.3",
                  "--rotations", "0.5", "--n_threshold_values", "50", "--end", "alarm")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().strip("\a"))
    assert result["chosen_on"] == "validation split"
    assert 0 <= result["escalation_rate"] <= 1 and result["memory_hit_rate"] > 0


@pytest.mark.parametrize("args, match", [
    (["run", "--threshold", "2"], "threshold=2.0 is not valid"),
    (["run", "--duplicates", "-0.1"], "duplicates=-0.1 is not valid"),
    (["run", "--scorefn", "margin"], "invalid choice: 'margin'"),
    (["run", "--end", "shutdown"], "invalid choice: 'shutdown'"),
])
def test_cli_bad_arguments(args, match):
    out = run_cli(*args)
    assert out.returncode == 2 and match in out.stderr


def test_heterogeneity_matrix_runs_models_on_x():
    x = ROWS.astype("float32")
    m = heterogeneity_matrix({"small": passthrough(3), "always2": constant(3, 2)}, x,
                             np.array([0, 1, 2, 1]))
    assert m.loc["small", "always2"] == 0.25 and m.loc["always2", "small"] == 0.5


def test_cli_refuses_a_model_file_that_stores_code_and_loads_a_plain_one(tmp_path):
    """`.keras` files load in Keras's safe mode: a Lambda layer's code is never run."""
    inputs = keras.Input((8, 8, 1))
    flat = keras.layers.Flatten()(inputs)
    plain = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(flat))
    plain.save(tmp_path / "plain.keras")
    doubled = keras.layers.Lambda(lambda t: t * 2.0)(flat)
    unsafe = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(doubled))
    unsafe.save(tmp_path / "lambda.keras")
    out = run_cli("run", "--model1", str(tmp_path / "lambda.keras"))
    assert out.returncode == 2
    assert "lambda.keras was refused: it stores Python code" in out.stderr
    assert "safe_mode=False" in out.stderr and "Traceback" not in out.stderr
    ok = run_cli("run", "--model1", str(tmp_path / "plain.keras"))
    assert ok.returncode == 0, ok.stderr[-2000:]


def test_cli_run_reports_measured_cost_per_1000_predictions_with_short_flags(tmp_path):
    import json

    out = tmp_path / "run.json"
    result = run_cli("run", "--epochs", "1", "-s", "difference", "-n", "50", "-d", "0.1",
                     "-e", "none", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    written = json.loads(out.read_text())
    assert written == json.loads(result.stdout)
    costs = written["cost_per_1000_predictions"]
    assert set(costs) == {"small", "big", "cascade"}
    for row in costs.values():
        # An 8 ms window can hold no CPU-time tick: the estimate may say 0 J, never NaN.
        assert row["seconds"] > 0 and row["joules"] >= 0
        assert row["source"] in ("measured:nvidia-smi", "measured:nvml-counter",
                                 "measured:nvml-power", "measured:rapl", "estimated:cpu-time")


def test_cli_heterogeneity_takes_any_number_of_models(tmp_path):
    import json

    paths = []
    for k in (1, 2, 3):  # digit images in, always class k out
        model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(10)])
        model.layers[-1].set_weights([np.zeros((64, 10)), np.eye(10)[k]])
        model.save(tmp_path / f"const{k}.keras")
        paths.append(str(tmp_path / f"const{k}.keras"))
    result = run_cli("heterogeneity", "--models", *paths)
    assert result.returncode == 0, result.stderr[-2000:]
    matrix = json.loads(result.stdout)
    assert set(matrix) == {"const1", "const2", "const3"}
    assert all(set(row) == set(matrix) for row in matrix.values())
