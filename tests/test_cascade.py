"""Inference cascade: scores, routing, oracle bound, thresholds, memory, heterogeneity."""

import json
from types import SimpleNamespace

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
    dhash,
    difference,
    entropy,
    find_threshold,
    heterogeneity_matrix,
    invariant_hash,
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


def test_memory_of_inputs_that_are_not_images_is_one_clear_error():
    """Flat features failed deep in the hashing ("not enough values to unpack")."""
    with pytest.raises(ValueError, match=r"a batch shaped \(N, H, W\) or \(N, H, W, C\); "
                                         r"got shape \(5, 16\).*memory=None"):
        PredictionMemory().lookup_batch(np.zeros((5, 16)))


def test_cli_without_scikit_learn_says_what_to_install(tmp_path):
    """A library-only install has no scikit-learn: the command ended in a traceback."""
    import os

    blocked = tmp_path / "sklearn"  # an installed-but-broken scikit-learn, as if absent
    blocked.mkdir()
    (blocked / "__init__.py").write_text("raise ImportError('No module named sklearn')\n")
    out = run_cli("run", "--epochs", "1",
                  env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "needs scikit-learn" in out.stderr and "pip install scikit-learn" in out.stderr


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
    (lambda: PredictionMemory("phash"), "kind='phash' is not valid"),  # its argument's name
])
def test_bad_arguments_are_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def run_cli(*args, env=None):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "greenscreen.cascade", *args],
                          capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def trained_pair():
    """The small and big models `python -m greenscreen.cascade` trains on the embedded
    digits for --epochs 1 --seed 0 (its own data split, seed and `train_pair`), trained
    once for the CLI tests that run `main` in this process."""
    from greenscreen.cascade.__main__ import load_data, train_pair

    x_tr, y_tr, *_ = load_data(None, 0)
    keras.utils.set_random_seed(0)
    return train_pair(x_tr, y_tr, 10, 1)


def run_main(monkeypatch, capsys, pair, *args):
    """The CLI's `main(argv)` in this process, as `run_cli` runs it in another (return
    code, stdout, stderr), the models it trains being `pair` (None where the command loads
    its models from files and trains none): each run took a subprocess 10 to 25 s. One
    test (the cascade with memory) still trains in its own process, through
    `python -m greenscreen.cascade`."""
    from greenscreen.cascade import __main__ as cli

    def shared(x, y, num_classes, epochs=15):  # what main asks for: digits, --epochs 1
        assert pair is not None, f"main({list(args)}) trained models it was to load"
        assert (x.shape[1:], len(y), num_classes, epochs) == ((8, 8, 1), len(x), 10, 1)
        return pair

    monkeypatch.setattr(cli, "train_pair", shared)
    capsys.readouterr()
    code = cli.main(list(args))
    said = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=said.out, stderr=said.err)


def test_cli_runs_a_cascade_with_memory_on_the_embedded_digits():
    """In a process of its own: the entry point end to end, its models trained there."""
    import json

    out = run_cli("run", "--epochs", "1", "--memory", "invariants", "--duplicates", "0.3",
                  "--rotations", "0.5", "--n_threshold_values", "50", "--end", "alarm")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().strip("\a"))
    assert result["chosen_on"] == "validation split"
    assert 0 <= result["escalation_rate"] <= 1 and result["memory_hit_rate"] > 0
    assert result["memory"]["hit_rate"] == result["memory_hit_rate"]
    assert "memory" in result["cost_per_1000_predictions"]  # its own work, measured alone
    assert result["memory"]["note"].startswith("the memory costs ")
    # where the memory does not pay, a line on stderr says so; where it pays, none
    said = f"greenscreen.cascade: {result['memory']['note']}" in out.stderr.splitlines()
    assert said == (not result["memory"]["pays"])


@pytest.mark.parametrize("args, match", [
    (["run", "--threshold", "2"], "threshold=2.0 is not valid"),
    (["run", "--duplicates", "-0.1"], "duplicates=-0.1 is not valid"),
    (["run", "--scorefn", "margin"], "invalid choice: 'margin'"),
    (["run", "--end", "shutdown"], "invalid choice: 'shutdown'"),
    (["run", "-m1", "/no/small.keras"], "--model1='/no/small.keras' is not valid; allowed: an "
     "existing .keras file; there is no file at that path"),
    (["run", "-m1", "small.h5"], "--model1='small.h5' is not valid; allowed: a Keras model "
     "file ending in .keras"),
    (["run", "-m1", "/"], "is not valid; allowed: a Keras model file ending in .keras"),
    (["run", "-f", "/no/data"], "--filepath='/no/data' is not valid; allowed: a CIFAR-10"),
    (["run", "--model2", "big.keras"], "--model2 needs --model1 (the small model)"),
    (["run", "--models", "a.keras"], "--models is for heterogeneity only"),
])
def test_cli_bad_arguments(args, match):
    out = run_cli(*args)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert match in out.stderr.strip().splitlines()[-1]  # one line, as argparse writes it


def test_heterogeneity_matrix_runs_models_on_x():
    x = ROWS.astype("float32")
    m = heterogeneity_matrix({"small": passthrough(3), "always2": constant(3, 2)}, x,
                             np.array([0, 1, 2, 1]))
    assert m.loc["small", "always2"] == 0.25 and m.loc["always2", "small"] == 0.5


def test_cli_refuses_a_model_file_that_stores_code_and_loads_a_plain_one(
        tmp_path, monkeypatch, capsys):
    """`.keras` files load in Keras's safe mode: a Lambda layer's code is never run. In this
    process: `load_model` passes safe_mode=True itself, so no setting left by another test
    (keras.config.enable_unsafe_deserialization) changes what is refused, and neither
    command trains a model (the files are given)."""
    inputs = keras.Input((8, 8, 1))
    flat = keras.layers.Flatten()(inputs)
    plain = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(flat))
    plain.save(tmp_path / "plain.keras")
    doubled = keras.layers.Lambda(lambda t: t * 2.0)(flat)
    unsafe = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(doubled))
    unsafe.save(tmp_path / "lambda.keras")
    out = run_main(monkeypatch, capsys, None, "run", "--model1", str(tmp_path / "lambda.keras"))
    assert out.returncode == 2
    assert "lambda.keras was refused: it stores Python code" in out.stderr
    assert "safe_mode=False" in out.stderr and "Traceback" not in out.stderr
    ok = run_main(monkeypatch, capsys, None, "run", "--model1", str(tmp_path / "plain.keras"))
    assert ok.returncode == 0, ok.stderr[-2000:]


def test_cli_run_reports_measured_cost_per_1000_predictions_with_short_flags(
        tmp_path, monkeypatch, capsys, trained_pair):
    import json

    out = tmp_path / "run.json"
    result = run_main(monkeypatch, capsys, trained_pair, "run", "--epochs", "1", "-s",
                      "difference", "-n", "50", "-d", "0.1", "-e", "none", "--out", str(out))
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


def test_cli_heterogeneity_takes_any_number_of_models(tmp_path, monkeypatch, capsys):
    """In this process: the models are loaded from their files, none is trained."""
    import json

    paths = []
    for k in (1, 2, 3):  # digit images in, always class k out
        model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(10)])
        model.layers[-1].set_weights([np.zeros((64, 10)), np.eye(10)[k]])
        model.save(tmp_path / f"const{k}.keras")
        paths.append(str(tmp_path / f"const{k}.keras"))
    result = run_main(monkeypatch, capsys, None, "heterogeneity", "--models", *paths)
    assert result.returncode == 0, result.stderr[-2000:]
    matrix = json.loads(result.stdout)
    assert set(matrix) == {"const1", "const2", "const3"}
    assert all(set(row) == set(matrix) for row in matrix.values())


# Keys (dhash, invariants) written from the code before keys were computed by batch, of
# digits 0, 1, 42, 1000, 1796, two 12x20 RGB images, and four 28x28 grey ones whose block
# sums depend on their order.
KEYS = [("30346464646c6c30", "00304602064c7000"), ("1818387030303018", "0000060041480800"),
        ("0818387068181818", "0000464473301800"), ("30101018180c343e", "00000242721e0303"),
        ("3060243030646478", "00062c33334c4600"), ("dc39555233a255b7", "48335e253b69745a"),
        ("9699d943ad151aaa", "74415686d49a15b1"), ("1b9915ab1ad25252", "165253843115d7b2"),
        ("595234c62c25bb2a", "09324556dd919565"), ("2da455c9d56844f6", "24d3741765768969"),
        ("c4bb939474949794", "2a6a2dc96a544b35")]


def key_images():
    from sklearn.datasets import load_digits

    digits = (load_digits().images[[0, 1, 42, 1000, 1796], ..., None] / 16.0).astype("float32")
    rgb = np.random.default_rng(3).random((2, 12, 20, 3)).astype("float32")
    return [digits, rgb, np.random.default_rng(4).integers(0, 3, (4, 28, 28)) / 3.0]


def test_memory_keys_are_unchanged_one_by_one_and_by_batch():
    images = [image for batch in key_images() for image in batch]
    for kind, column in (("dhash", 0), ("invariants", 1)):
        memory, want = PredictionMemory(kind), [bytes.fromhex(k[column]) for k in KEYS]
        assert [memory.key(image) for image in images] == want
        if hasattr(memory, "keys"):  # by batch (before: one image at a time only)
            assert [k for batch in key_images() for k in memory.keys(batch)] == want
    assert [dhash(i).hex() for i in images] == [k[0] for k in KEYS]
    turned = [np.rot90(i) for i in images]  # a key depends on the pixels, not their layout
    assert [invariant_hash(i) for i in turned] == [
        invariant_hash(np.ascontiguousarray(i)) for i in turned]
    assert [invariant_hash(i).hex() for i in turned[:5]] == [k[1] for k in KEYS[:5]]


class CountingMemory(PredictionMemory):
    """Counts the images whose key is computed, one by one or by batch."""

    hashed = 0

    def key(self, image):
        self.hashed += 1
        return (invariant_hash if self.kind == "invariants" else dhash)(image)

    def keys(self, images):
        return [self.key(image) for image in images]


def test_each_sample_is_hashed_once_with_the_same_hits():
    images = key_images()[0]
    x = np.concatenate([images, images[:2], np.rot90(images[2:3], axes=(1, 2))])  # 3 repeats
    flat = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(10, activation="softmax")])
    memory = CountingMemory("invariants")
    out = Cascade(flat, flat, "maxp", 0.5, memory=memory).predict(x, batch_size=4)
    assert memory.hashed == len(x)  # before: once for the lookup, again for the add
    assert (out.routing == MEMORY).sum() == 3 and memory.hit_rate == 3 / len(x)
    single = CountingMemory("dhash")
    for image in images:
        assert single.lookup(image) is None
        single.add(image, 1)  # the key of the image just looked up is reused
    assert single.hashed == len(images) and single.lookup(images[0]) == 1


def test_memory_verdict_says_when_the_memory_does_not_pay():
    from greenscreen.cascade.evaluation import memory_verdict

    costs = {k: {"joules": j, "seconds": 1.0} for k, j in (("small", 0.2), ("big", 2.0))}
    slow = memory_verdict(costs | {"memory": {"joules": 187.0}}, 0.1, escalation_rate=0.2)
    assert not slow["pays"] and slow["saved_per_1000_predictions"] == pytest.approx(0.06)
    assert slow["note"].startswith("the memory costs 187 J per 1000 predictions against the big "
                                   "model's 2 J") and "does not pay on this data" in slow["note"]
    assert memory_verdict(costs | {"memory": {"joules": 0.01}}, 0.1, 0.2)["pays"]
    no_tick = costs | {"memory": {"joules": 0.0, "seconds": 0.01}}  # too short for the meter
    assert memory_verdict(no_tick, 0.1, 0.2)["compared_in"] == "seconds"


def test_cli_threshold_reports_values_at_the_chosen_thresholds_and_no_nulls(
        monkeypatch, capsys, trained_pair):
    out = run_main(monkeypatch, capsys, trained_pair, "threshold", "--epochs", "1", "-n", "50")
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert "null" not in out.stdout
    assert result["at_best_threshold"]["threshold"] == result["best_threshold"]
    assert set(result["at_best_threshold"]) >= {"accuracy", "escalation_rate",
                                                "joules_per_prediction"}
    assert "per-threshold arrays (50 values each) are left out" in result["note"]


def test_threshold_summary_leaves_out_a_threshold_that_does_not_exist():
    from greenscreen.cascade import ThresholdSearch

    grid = np.array([0.0, 0.5, 1.0])
    search = ThresholdSearch(grid, np.array([0.5, 0.6, 0.7]), np.array([0.0, 0.5, 0.9]),
                             grid / 10, grid / 5, 0.5, 0.9, 1.0, None, tolerance=0.01)
    summary = search.summary()
    assert "null" not in json.dumps(summary) and "cheapest_matching_threshold" not in summary
    assert "no threshold reaches the big model's validation accuracy within 0.01" in (
        summary["note"])
    assert summary["at_best_threshold"] == dict(threshold=1.0, accuracy=0.7, escalation_rate=0.9,
                                                seconds_per_prediction=0.1,
                                                joules_per_prediction=0.2, source="none")


def test_measure_warms_up_every_batch_shape_it_times():
    from greenscreen.cascade import measure

    class Model:  # records the batch size of each call
        sizes: list = []

        def predict_on_batch(self, x):
            self.sizes.append(len(x))
            return np.full((len(x), 2), 0.5)

    measure(Model(), np.zeros((300, 3)), batch_size=256)
    warm, timed = Model.sizes[:-2], Model.sizes[-2:]  # the timed pass: 256 + 44, padded
    assert timed == [256, 64] and set(timed) <= set(warm)  # no tracing inside the window


def test_a_cascade_gives_its_models_a_few_padded_shapes_that_a_warm_up_covers():
    # On JAX each number of escalated samples was a new shape, compiled in the measured
    # window: the cascade cost 29 J per 1000 predictions against the big model's 5 J.
    from greenscreen.cascade import Cascade
    from greenscreen.cascade.threshold import warm_up

    class Model:  # answers by the first feature; records the batch size of each call
        def __init__(self):
            self.sizes = []

        def predict_on_batch(self, x):
            self.sizes.append(len(x))
            return np.stack([x[:, 0], 1 - x[:, 0]], axis=1)

    x = np.random.default_rng(0).random((1000, 3))
    small, big = Model(), Model()
    warm_up(big, x)
    warmed, before = set(big.sizes), len(big.sizes)
    result = Cascade(small, big, score="maxp", threshold=0.8).predict(x, batch_size=256)
    seen = set(big.sizes[before:])
    assert 0 < result.escalation_rate < 1
    assert seen <= warmed and len(warmed) <= 9  # 1, 2, 4, ..., 256
    assert all(size & (size - 1) == 0 for size in big.sizes)  # powers of two
    assert (result.predictions == np.where(x[:, 0] >= 0.5, 0, 1)).all()  # padding dropped


def test_model_files_that_are_not_models_are_one_line_errors(tmp_path):
    import zipfile

    from greenscreen.cascade._data import BadModelFile, load_model

    (tmp_path / "junk.keras").write_text("not a zip")
    out = run_cli("run", "--model1", str(tmp_path / "junk.keras"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "(a zip archive); this file is not one" in out.stderr.splitlines()[-1]
    with zipfile.ZipFile(tmp_path / "empty.keras", "w") as z:
        z.writestr("readme.txt", "no model here")
    with pytest.raises(BadModelFile, match=r"--model1='.*empty.keras' could not be loaded"):
        load_model(str(tmp_path / "empty.keras"), "--model1")


def test_every_cli_option_has_a_help_line():
    from greenscreen.cascade.__main__ import build_parser

    missing = [a.dest for a in build_parser()._actions if not a.help]
    assert missing == []
