"""Faults of the inference cascade found by a hunt: binary and logit outputs, NaN scores,
argument and label checks, the CLI's choices and output, timing, and the benchmark's files."""

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from greenscreen.cascade import (
    Cascade,
    PredictionMemory,
    add_duplicates,
    entropy,
    find_threshold,
    heterogeneity_matrix,
    maxp,
    measure,
    score,
)
from greenscreen.cascade.cascade import infer

UUID0 = "GPU-00000000-1111-2222-3333-444444444444"
# Model outputs and inputs differ by backend: these run again under JAX and PyTorch.
ALL_BACKENDS = pytest.mark.backends("tensorflow", "jax", "torch")


def sigmoid_model():
    """One sigmoid unit: p(class 1) = sigmoid(10 x)."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, activation="sigmoid")])
    model.layers[0].set_weights([np.array([[10.0]]), np.array([0.0])])
    return model


def dense(k_in, k_out, activation=None, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((k_in,)),
                             keras.layers.Dense(k_out, activation=activation)])


def constant(k, cls, shape=(8, 8, 1)):
    """A real Keras model on images of `shape` that always answers class `cls`."""
    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(k)])
    model.layers[-1].set_weights([np.zeros((int(np.prod(shape)), k)), np.eye(k)[cls]])
    return model


class Answers:
    """A user's model (not Keras): answers the rows it was built with, in order."""

    def __init__(self, rows):
        self.rows = np.asarray(rows, dtype="float32")

    def predict_on_batch(self, x):
        return np.resize(self.rows, (len(x), self.rows.shape[1]))


# 1. One-unit sigmoid outputs ------------------------------------------------------------

X1 = np.array([[1.0], [-1.0], [0.05], [2.0]], dtype="float32")  # p1 = 1, 0, 0.62, 1


@ALL_BACKENDS
@pytest.mark.parametrize("name", ["maxp", "difference", "entropy"])
def test_a_one_unit_sigmoid_predicts_both_classes_and_is_sure_of_class_0_too(name):
    model = sigmoid_model()
    out = Cascade(model, model, name, 0.3).predict(X1)
    assert out.predictions.tolist() == [1, 0, 1, 1]
    # p(class 1) = 0.00005 is a sure class 0, not an unsure class 1
    assert not out.escalated[1]
    assert out.escalated[2] == (name != "maxp")  # 0.62: maxp 0.62; difference 0.24


def test_scores_of_a_sigmoid_column_are_those_of_its_two_classes():
    p = np.array([[0.9], [0.1], [0.5]])
    two = np.array([[0.1, 0.9], [0.9, 0.1], [0.5, 0.5]])
    for name in ("maxp", "difference", "entropy"):
        assert score(name, p) == pytest.approx(score(name, two))
    assert maxp(p) == pytest.approx([0.9, 0.9, 0.5]) and entropy(p)[2] == pytest.approx(0)
    assert score("oracle", p, np.array([1, 1, 0])).tolist() == [1.0, 0.0, 1.0]


@ALL_BACKENDS
def test_find_threshold_and_heterogeneity_read_a_sigmoid_as_two_classes():
    model = sigmoid_model()
    y = np.array([1, 0, 1, 1])
    search = find_threshold(model, model, X1, y, "maxp", n_values=10)
    assert search.small_accuracy == 1.0 and search.big_accuracy == 1.0
    assert heterogeneity_matrix({"m": model}, X1, y).loc["m", "m"] == 0.0
    assert infer(model, X1).shape == (4, 2)


# 2. Logits ------------------------------------------------------------------------------

@ALL_BACKENDS
def test_logits_are_refused_with_the_cause():
    logits = dense(1, 3)
    logits.layers[0].set_weights([np.array([[4.0, 3.5, -2.0]]), np.zeros(3)])
    x = np.array([[1.0], [2.0]], dtype="float32")
    with pytest.raises(ValueError, match=r"not class probabilities.*softmax.*from_logits"):
        Cascade(logits, logits, "difference", 0.5).predict(x)
    with pytest.raises(ValueError, match="not class probabilities"):
        find_threshold(logits, logits, x, np.array([0, 1]), n_values=5)
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*sigmoid"):
        score("maxp", np.array([[3.2], [-1.0]]))  # one unit without its sigmoid
    with pytest.raises(ValueError, match="sum to 1.6"):
        score("maxp", np.array([[0.8, 0.8]]))  # two independent sigmoids


def test_softmax_rows_in_half_precision_pass():
    rows = np.array([[0.7, 0.2, 0.1]], dtype="float16") * np.float16(1.001)
    assert score("maxp", rows) == pytest.approx([0.7], abs=1e-2)


# 3. A chosen threshold of 0.0 -----------------------------------------------------------

def run_cli(*args):
    """`python -m greenscreen.cascade ARGS` as its `main(argv)` in this process (exit code,
    stdout, stderr): a second interpreter and its Keras import cost 5 to 8 CPU s a call.
    test_cascade.py runs the entry point end to end in a process of its own."""
    from greenscreen.cascade.__main__ import main

    with contextlib.redirect_stdout(io.StringIO()) as out, \
            contextlib.redirect_stderr(io.StringIO()) as err:
        try:
            code = main(list(args))
        except SystemExit as ended:  # argparse's own refusals
            code = ended.code
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def save(model, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return str(path)


def test_cli_run_keeps_a_cheapest_matching_threshold_of_zero(tmp_path):
    # Always class 1 (36 of the digits' validation split right) and always class 2 (35):
    # the small model alone matches the big one, so the cheapest matching threshold is
    # 0.0; with the oracle, escalating its mistakes is more accurate (best threshold > 0).
    small = save(constant(10, 1), tmp_path / "one.keras")
    big = save(constant(10, 2), tmp_path / "two.keras")
    search = json.loads(run_cli("threshold", "-m1", small, "-m2", big, "-s", "oracle",
                                "-n", "20").stdout)
    assert search["cheapest_matching_threshold"] == 0.0 and search["best_threshold"] > 0
    out = run_cli("run", "-m1", small, "-m2", big, "-s", "oracle", "-n", "20")
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["threshold"] == 0.0 and result["escalation_rate"] == 0.0


# 4. NaN scores --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["maxp", "difference", "entropy"])
def test_a_nan_score_is_escalated(name):
    rows = np.array([[np.nan] * 3, [0.2, 0.3, 0.5], [0.0, 0.0, 1.0]])
    x = np.zeros((3, 2), "float32")
    out = Cascade(Answers(rows), Answers([[0.0, 1.0, 0.0]]), name, 0.9).predict(x)
    assert out.escalated.tolist() == [True, True, False]
    assert out.predictions.tolist() == [1, 1, 2]
    post = Cascade(Answers(rows), Answers([[0.0, 1.0, 0.0]]), name, 0.9, postcheck=True)
    assert post.predict(x).predictions[0] == 1  # any big answer beats a NaN score
    search = find_threshold(Answers(rows), Answers([[0.0, 1.0, 0.0]]), x, [1, 1, 2],
                            name, n_values=3)
    assert search.escalation_rate[0] == pytest.approx(1 / 3)  # at threshold 0: the NaN row


# 5. batch_size --------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size", [-1, 0, 2.5, None])
def test_batch_size_must_be_a_positive_integer(batch_size):
    model = dense(2, 3, "softmax")
    x = np.ones((7, 2), "float32")
    match = f"batch_size={batch_size!r} is not valid; allowed: an integer in \\[1, inf\\)"
    for call in (lambda: Cascade(model, model, "maxp", 0.0).predict(x, batch_size=batch_size),
                 lambda: measure(model, x, batch_size=batch_size),
                 lambda: find_threshold(model, model, x, np.zeros(7), batch_size=batch_size),
                 lambda: infer(model, x, batch_size)):
        with pytest.raises(ValueError, match=match):
            call()


# 6. Constructor and function arguments ---------------------------------------------------

M = dense(4, 3, "softmax")


@pytest.mark.parametrize("make, match", [
    (lambda: Cascade(M, M, memory="dhash"), r"memory='dhash' is not valid; allowed: a "
     r"PredictionMemory \(e.g. PredictionMemory\('dhash'\)\) or None"),
    (lambda: Cascade(None, M), "small=None is not valid; allowed: a Keras model"),
    (lambda: Cascade(M, "big.keras"), "big='big.keras' is not valid; allowed: a Keras model"),
    (lambda: Cascade(M, M, postcheck="no"), "postcheck='no' is not valid; allowed: True or "
     "False"),
    (lambda: Cascade(M, M, postcheck=1), "postcheck=1 is not valid"),  # 1 == True passed
    (lambda: Cascade(M, M, threshold=None), "threshold=None is not valid"),
    (lambda: PredictionMemory("dhash", capacity=2.5), r"capacity=2.5 is not valid; allowed: "
     r"an integer in \[1, inf\)"),
    (lambda: find_threshold(M, M, np.ones((4, 4)), np.zeros(4), n_values=2.5),
     r"n_values=2.5 is not valid; allowed: an integer in \[2, inf\)"),
])
def test_bad_arguments_are_refused_before_any_work(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# 7. Labels and data ---------------------------------------------------------------------

def test_labels_and_data_are_checked_up_front():
    x, y = np.random.default_rng(0).random((20, 4)).astype("float32"), np.arange(20) % 3
    with pytest.raises(ValueError, match="x_val='<an empty array>' is not valid; allowed: "
                                         "at least one sample"):
        find_threshold(M, M, x[:0], y[:0], n_values=5)
    with pytest.raises(ValueError, match=r"y_val='<labels shaped \(19,\)>' is not valid; "
                                         r"allowed: one class per sample: 20 labels"):
        find_threshold(M, M, x, y[:19], n_values=5)
    with pytest.raises(ValueError, match="one class per sample: 20 labels"):
        Cascade(M, M, "oracle", 0.5).predict(x, y=y[:5])
    one_hot = np.eye(3)[y]
    plain = find_threshold(M, M, x, y, n_values=5)
    assert find_threshold(M, M, x, one_hot, n_values=5).accuracy.tolist() == (
        plain.accuracy.tolist())
    by_list = Cascade(M, M, "oracle", 0.5).predict(x, y=list(y)).predictions
    assert (Cascade(M, M, "oracle", 0.5).predict(x, y=one_hot).predictions == by_list).all()
    assert heterogeneity_matrix({"m": M}, x, one_hot).loc["m", "m"] == 0.0


@ALL_BACKENDS
def test_a_backend_tensor_is_read():  # several inputs: test_cascade_inputs.py
    x = np.random.default_rng(0).random((6, 4)).astype("float32")
    tensor = keras.ops.convert_to_tensor(x)
    assert (Cascade(M, M, "maxp", 0.5).predict(tensor).predictions
            == Cascade(M, M, "maxp", 0.5).predict(x).predictions).all()


# 8. Time of the first window ------------------------------------------------------------

class Sleeper:
    def predict_on_batch(self, x):
        import time

        time.sleep(0.002)
        return np.full((len(x), 2), 0.5)


def test_measured_seconds_are_the_work_alone_not_the_window_close(fake_smi):
    # A constant 150 W GPU: energy / seconds is 150 W where the seconds are those of the
    # window's energy; the first window's close waits for the first process listing, and
    # that wait counted as prediction time: 13 W.
    from greenscreen.meters import EnergyMeter

    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": 150.0}}])
    with EnergyMeter(interval=0.05) as meter:
        meter.wait_for_sample(5.0)
        for _ in range(2):
            cost = measure(Sleeper(), np.zeros((512, 3)), meter=meter)[1]
            assert cost.source == "measured:nvidia-smi"
            assert cost.joules_per_prediction / cost.seconds_per_prediction >= 150 * 0.999


# 9. The CLI's JSON ----------------------------------------------------------------------

def test_cli_prints_the_json_it_writes_with_null_for_an_unknown_energy(fake_smi, tmp_path):
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": 150.0}}],
                       na=["power.draw"])
    small = save(constant(10, 1), tmp_path / "one.keras")
    big = save(constant(10, 2), tmp_path / "two.keras")
    out = run_cli("threshold", "-m1", small, "-m2", big, "-n", "5", "--out",
                  str(tmp_path / "t.json"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "NaN" not in out.stdout and "null" in out.stdout
    assert out.stdout == (tmp_path / "t.json").read_text()


# 10. The CLI's other faults -------------------------------------------------------------

def test_cli_heterogeneity_rows_are_the_wrong_model_and_names_stay_apart(tmp_path):
    from greenscreen.cascade.__main__ import load_data

    paths = [save(constant(10, k), tmp_path / folder / f"{name}.keras")
             for k, folder, name in ((1, "a", "memory"), (2, "b", "memory"), (3, "a", "pays"))]
    out = run_cli("heterogeneity", "--models", *paths)
    assert out.returncode == 0, out.stderr[-2000:]
    matrix = json.loads(out.stdout)
    assert list(matrix) == [paths[0], paths[1], "pays"]  # same stem: the paths
    y = load_data(None)[5]
    right = {name: y == k for name, k in zip(matrix, (1, 2, 3))}
    for a in matrix:
        for b in matrix:  # json[a][b]: a wrong where b is right
            assert matrix[a][b] == pytest.approx(np.mean(~right[a] & right[b]))


@pytest.mark.parametrize("args, match", [
    (["run", "-n", "1"], "n_threshold_values=1 is not valid; allowed: an integer in [2, inf)"),
    (["run", "--epochs", "0"], "epochs=0 is not valid; allowed: an integer in [1, inf)"),
    (["run", "--out", "/dev/null/run.json"], "--out='/dev/null/run.json' is not valid"),
    (["threshold", "--threshold", "0.3"], "--threshold does not apply to threshold"),
    (["threshold", "--memory", "dhash"], "--memory does not apply to threshold"),
    (["threshold", "--duplicates", "0.5"], "--duplicates does not apply to threshold"),
    (["heterogeneity", "--postcheck"], "--postcheck does not apply to heterogeneity"),
    (["heterogeneity", "-t", "0.5"], "--threshold does not apply to heterogeneity"),
    (["heterogeneity", "-s", "maxp"], "--scorefn does not apply to heterogeneity"),
    (["run", "--rotations", "0.5"], "--rotations does not apply to run"),
    (["run", "--threshold", "0.3", "-n", "20"], "-n does not apply to run here: --threshold "
     "is given"),
    (["threshold", "-m1", "MODEL"], "threshold needs two models"),
    (["run", "-m1", "MODEL", "--memory", "dhash"], "--memory does not apply to run here: "
     "--model1 alone is a single-model baseline"),
    (["run", "-m1", "MODEL", "--epochs", "3"], "--epochs does not apply to run here: the "
     "models are loaded"),
    (["heterogeneity", "--models", "MODEL", "MODEL"], "--models names a file twice"),
])
def test_cli_refuses_options_that_do_not_apply_or_cannot_work(args, match, tmp_path, capsys):
    """In this process (the checks come before any work, so no second interpreter and
    Keras import per case): the command line's own exit, 2, and its one line."""
    from greenscreen.cascade.__main__ import main

    model = save(constant(10, 1), tmp_path / "m.keras")
    with pytest.raises(SystemExit) as ended:
        main([model if a == "MODEL" else a for a in args])
    err = capsys.readouterr().err
    assert ended.value.code == 2 and "Traceback" not in err, err[-2000:]
    assert match in err.strip().splitlines()[-1]


def image_folder(root: Path, classes: int, per_class: int) -> str:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"class{c}" / f"{i}.png")
    return str(root)


def test_cli_data_that_do_not_fit_are_one_line_errors(tmp_path):
    cifar = save(constant(10, 1, (32, 32, 3)), tmp_path / "cifar.keras")
    for args, said in (
            (["run", "-m1", cifar, "-m2", cifar], "--model1 takes samples shaped (32, 32, 3), "
             "but the data's are shaped (8, 8, 1)"),
            (["run", "-f", image_folder(tmp_path / "few", 3, 3)], "class 0 has 3 sample(s); "
             "each class needs 5 at least"),
            (["run", "-f", image_folder(tmp_path / "one", 1, 10)], "holds one class")):
        out = run_cli(*args)
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
        assert said in out.stderr.strip().splitlines()[-1]


def test_cli_models_trained_here_are_seeded():
    runs = [run_cli("threshold", "--epochs", "1", "-n", "5") for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr[-2000:]
    first, second = (json.loads(r.stdout) for r in runs)
    for key in ("small_accuracy", "big_accuracy", "best_threshold"):
        assert first[key] == second[key]


# 11. The benchmark's files ---------------------------------------------------------------

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_benchmark_report_is_written_whole_and_standard(tmp_path):
    out = tmp_path / "r.json"
    out.write_text('{"previous": "good result"}\n')
    code = (f"import sys; sys.path.insert(0, {str(BENCHMARKS)!r}); from _report import emit; "
            f"emit({{'x': 'a' * 4000, 'nan': float('nan')}}, {str(out)!r})")

    def limit():  # a 2 KiB file-size limit stands in for a full disk
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    full = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          preexec_fn=limit)
    assert full.returncode != 0 and json.loads(out.read_text()) == {"previous": "good result"}
    ok = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(out.read_text())["nan"] is None and "NaN" not in ok.stdout


def test_benchmark_names_the_gpus_the_meter_found():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from cascade import machine  # benchmarks/cascade.py
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert machine(["NVIDIA H200"]).endswith("cores, NVIDIA H200")
    assert machine([]).endswith("cores, no GPU")


# 12. add_duplicates ---------------------------------------------------------------------

def test_add_duplicates_turns_non_square_images_and_takes_list_labels():
    x = np.random.default_rng(0).random((10, 28, 32, 3)).astype("float32")
    xd, yd = add_duplicates(x, list(range(10)), 0.5, 1.0)
    assert xd.shape == (15, 28, 32, 3) and sorted(np.bincount(yd).tolist()).count(2) == 5
    memory = PredictionMemory("invariants")
    memory.add_keys(memory.keys(x), range(10))
    keys, known = memory.lookup_batch(xd)
    assert all(k is not None for k in known)  # every turned copy is a view of its image
    assert [known[i] for i in range(15)] == yd.tolist()
