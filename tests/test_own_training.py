"""Sweeping your own training beyond arrays: streamed splits (PyDataset, tf.data), a
regression with its own loss and objective, your own training loop, and a SIGKILL in the
middle of a run of your own model. Each study is a config folder outside the checkout,
run through the `greenscreen` command in its own processes."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MODEL = '''import keras


def mlp(input_shape, num_classes, params):
    inputs = keras.Input(input_shape)
    x = keras.layers.Dense(params["units"], activation="relu")(inputs)
    activation = "softmax" if params.get("task", "classify") == "classify" else None
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation=activation)(x))
'''
DATA = '''import keras
import numpy as np


def blobs(params, n=600):
    centres = np.random.default_rng(0).normal(0.0, 2.0, (3, 8))
    rng = np.random.default_rng(params["seed"])
    y = rng.integers(0, 3, n)
    return (centres[y] + rng.normal(0.0, 1.0, (n, 8))).astype("float32"), y


class Batches(keras.utils.PyDataset):
    """One-hot batches of 50, read batch by batch: a stream the pipeline never loads whole."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, keras.utils.to_categorical(y, 3)

    def __len__(self):
        return len(self.x) // 50

    def __getitem__(self, i):
        return self.x[i * 50:(i + 1) * 50], self.y[i * 50:(i + 1) * 50]


def streamed(params):
    x, y = blobs(params)
    return {"train": Batches(x[:400], y[:400]), "validation": Batches(x[400:500], y[400:500]),
            "test": Batches(x[500:], y[500:])}


def tf_data(params):
    import tensorflow as tf

    x, y = blobs(params)

    def part(a, b):
        return tf.data.Dataset.from_tensor_slices((x[a:b], y[a:b])).batch(params["batch_size"])
    return {"train": part(0, 400).filter(lambda x, y: True),  # cardinality unknown: counted
            "validation": part(400, 500), "test": part(500, 600), "num_classes": 3}


def regression(params):
    rng = np.random.default_rng(params["seed"])
    x = rng.normal(0.0, 1.0, (600, 8)).astype("float32")
    return x, (x @ np.arange(1.0, 9.0) / 8).astype("float32")
'''
LOOP = '''import keras
import numpy as np


def train(params, callbacks):
    rng = np.random.default_rng(params["seed"])
    x = rng.normal(0.0, 1.0, (400, 4)).astype("float32")
    y = x.sum(axis=1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(params["units"]),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(params["lr"]), "mse")
    history = model.fit(x, y, validation_split=0.25, epochs=params["epochs"], verbose=0,
                        callbacks=callbacks if params["pass_callbacks"] else None)
    return {"val_loss": history.history["val_loss"][-1], "note": "not a number"}
'''


def study(tmp_path, settings: dict, configuration: dict) -> Path:
    folder = tmp_path / "study"
    folder.mkdir()
    for name, text in (("model.py", MODEL), ("data.py", DATA), ("loop.py", LOOP)):
        (folder / name).write_text(text)
    config = {"settings": {"runs": 1, "epochs": 2, "seed": 3, "sweep_dir": "sweeps/s",
                           "energy_source": "nvidia-smi", **settings},
              "configuration": {"model": {"values": ["model:mlp"]},
                                "units": {"values": [16]},
                                **{k: {"values": v} for k, v in configuration.items()}}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def greenscreen(*args, cwd, timeout=600, **kwargs):
    return subprocess.run([sys.executable, "-m", "greenscreen_pipeline", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def run_files(folder: Path, i: int = 0) -> tuple[dict, dict, dict, list[dict]]:
    run = folder / "sweeps" / "s" / f"{i:03d}"
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "done", status
    params = yaml.safe_load((run / "parameters.yaml").read_text())
    results = json.loads((run / "results.json").read_text())
    logs = run / "logs.csv"
    rows = list(csv.DictReader(logs.open())) if logs.exists() else []
    return params, results, json.loads((run / "summary.json").read_text()), rows


@pytest.mark.backends("tensorflow", "jax")
def test_streamed_pydataset_splits_are_trained_as_they_are(fake_smi, tmp_path):
    folder = study(tmp_path, {}, {"dataset": ["data:streamed"], "batch_size": [32],
                                  "preprocessing": ["standardization"], "lr": [0.05]})
    done = greenscreen("sweep", cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    params, results, summary, rows = run_files(folder)
    # Your splits, your batches: what the pipeline would have decided does not apply.
    assert params["partitioning"] == params["batch_size"] == params["preprocessing"] == "n/a"
    assert params["steps_per_epoch"] == 8 and len(rows) == 2  # 2 epochs
    assert sum(map(sum, results["confusion_matrix"])) == 100  # the test stream, every batch
    assert results["objective"]["name"] == "val_accuracy" and results["objective"]["split"] \
        == "test" and results["objective"]["value"] == results["test_accuracy"] > 0.6
    assert summary["energy_j"] > 0


@pytest.mark.backends("tensorflow")
def test_tf_data_splits_with_integer_labels_and_their_num_classes(fake_smi, tmp_path):
    folder = study(tmp_path, {"loss": "sparse_categorical_crossentropy"},
                   {"dataset": ["data:tf_data"], "batch_size": [40, 20], "lr": [0.05]})
    done = greenscreen("sweep", cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    params, results, _, _ = run_files(folder)
    assert params["batch_size"] == 40  # your function read it: it applies
    assert params["steps_per_epoch"] == 10 and params["partitioning"] == "n/a"
    assert len(results["confusion_matrix"]) == 3 and results["test_accuracy"] > 0.6


def test_a_regression_ranks_runs_by_its_own_objective(fake_smi, tmp_path):
    folder = study(tmp_path, {"loss": "mse", "objective": "val_mae", "runs": 2},
                   {"dataset": ["data:regression"], "task": ["regress"],
                    "lr": [0.01, 0.001]})
    done = greenscreen("sweep", cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    for i in (0, 1):
        params, results, _, rows = run_files(folder, i)
        assert results["confusion_matrix"] is None and results["test_accuracy"] is None
        assert results["objective"] == {"loss": "mse", "name": "val_mae", "mode": "min",
                                        "value": params["test_mae"], "split": "test"}
        assert "val_mae" in rows[0] and len(rows) == 2
    bad = (folder / "config.yaml").read_text().replace("data:regression", "digits")
    (folder / "config.yaml").write_text(bad)
    refused = greenscreen("check", cwd=folder)
    assert refused.returncode == 2 and "configuration.dataset.values[0]: got 'digits'; " \
        "allowed: your own dataset ('module:function') with settings.loss mse" in refused.stderr


@pytest.mark.parametrize("passes", [
    pytest.param(True, marks=pytest.mark.backends("tensorflow", "jax")),
    pytest.param(False, marks=pytest.mark.backends("tensorflow"))])  # the pipeline's side only
def test_your_own_training_loop_is_measured(fake_smi, tmp_path, passes):
    folder = study(tmp_path, {"train": "loop:train", "objective": "val_loss", "epochs": 3},
                   {"pass_callbacks": [passes], "lr": [0.01]})
    done = greenscreen("sweep", cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    params, results, summary, rows = run_files(folder)
    assert results["objective"]["name"] == "val_loss" and results["objective"]["split"] == \
        "validation" and results["objective"]["per_epoch"] is passes
    # What ran was the loop's: no loss of the pipeline's, no split it evaluated.
    assert results["objective"]["loss"] is None and results["evaluated_on"] == "none"
    assert summary["energy_j"] > 0  # the whole call, either way
    value = results["objective"]["value"]  # the line names the value it ranks by
    assert f"run 000 done     val_loss {value:.4f}  energy" in done.stdout, done.stdout
    if passes:  # every epoch's energy, in your History's logs as in ours
        assert len(rows) == 3 and float(rows[2]["energy_j"]) > 0 and "val_loss" in rows[2]
    else:
        assert rows == []
        assert "your training function did not pass `callbacks` to a fit" in done.stderr
    assert params["pass_callbacks"] is passes and "units" not in results["unread_dimensions"]


def test_a_bad_training_entry_and_a_missing_objective(fake_smi, tmp_path):
    folder = study(tmp_path, {"train": "loop:trian"}, {})
    refused = greenscreen("check", cwd=folder)
    assert refused.returncode == 2
    assert "settings.train: got 'loop:trian'" in refused.stderr and \
        "did you mean 'train'?" in refused.stderr
    config = (folder / "config.yaml").read_text().replace("loop:trian", "loop:train")
    (folder / "config.yaml").write_text(config.replace("configuration:\n", "configuration:\n"
                                                       "  pass_callbacks: {values: [true]}\n"
                                                       "  lr: {values: [0.01]}\n"))
    done = greenscreen("sweep", cwd=folder)  # the objective is val_accuracy: never returned
    status = json.loads((folder / "sweeps" / "s" / "000" / "status.json").read_text())
    assert status["status"] == "failed" and "loop:train (def at " in status["reason"]
    assert "loop.py:5) returned ['val_loss']" in status["reason"], status["reason"]
    assert done.returncode == 1 and "no run finished: 1 failed" in done.stderr  # its only run


def test_your_model_killed_mid_run_resumes_from_its_checkpoint(fake_smi, tmp_path):
    folder = study(tmp_path, {"epochs": 12}, {"dataset": ["data:streamed"]})
    logs = folder / "sweeps" / "s" / "000" / "logs.csv"
    proc = subprocess.Popen([sys.executable, "-m", "greenscreen_pipeline", "sweep"], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.time() + 300
        while not (logs.exists() and len(logs.read_text().splitlines()) > 3):
            assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its run process, mid-epoch
        proc.wait()
    done = greenscreen("sweep", cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "run 000 was interrupted; resuming it" in done.stdout
    _, results, summary, rows = run_files(folder)
    assert results["timing"]["resumed_from_epoch"] >= 1  # from the checkpoint, not epoch 0
    assert [int(r["epoch"]) for r in rows] == list(range(12))  # each epoch once
    assert len(summary["attempts"]) == 2 and all(a["energy_j"] > 0 for a in summary["attempts"])


def test_your_loop_whose_objective_is_nan_failed_as_diverged(fake_smi, tmp_path):
    """A review: a loop returning {"val_loss": nan} was told "loop:train returned
    ['val_loss']; allowed: val_loss", the very key it returned."""
    from greenscreen_pipeline.objective import Objective

    objective = Objective.from_settings({"objective": "val_loss", "loss": None})
    assert objective.not_finite({}, {"val_loss": float("nan")}) == "val_loss = nan"
    assert objective.not_finite({"test_loss": float("inf")}, {"val_loss": 0.1}) is None
    assert objective.not_finite({}, {"loss": float("nan")}) is None  # not given: "missing"
    folder = study(tmp_path, {"train": "loop:train", "objective": "val_loss", "epochs": 1},
                   {"pass_callbacks": [False], "lr": [1.0e+30]})
    done = greenscreen("sweep", cwd=folder)
    status = json.loads((folder / "sweeps" / "s" / "000" / "status.json").read_text())
    assert status["status"] == "failed", status
    assert "Diverged: loop:train returned val_loss = nan" in status["reason"], status["reason"]
    assert "Diverged: loop:train returned val_loss = nan" in done.stdout + done.stderr


def test_the_tail_kept_of_a_fault_dump_is_the_dump_with_its_top():
    import ctypes

    from greenscreen_pipeline import endings

    frames = [f'  File "/usr/lib/python3.11/site-packages/keras/x{i}.py", line {i} in f{i}'
              for i in range(30)]
    stderr = "\n".join(["I0000 noise"] * 50 + [
        "F0000 gpu.cc:123] Check failed: CUDA_ERROR_OUT_OF_MEMORY",  # native code's cause
        "Fatal Python error: Segmentation fault", "", "Stack (most recent call first):",
        f'  File "{ctypes.__file__}", line 519 in string_at',  # Python's own: not yours
        # a clone of greenscreen is named so: your example in it is yours (a review)
        '  File "/home/me/greenscreen/examples/model.py", line 7 in mlp', *frames, "",
        "Extension modules: numpy, " + "x, " * 500])
    kept = endings.tail(stderr)
    assert 0 <= kept.index("Check failed") < kept.index("Fatal Python error")
    assert "Fatal Python error" in kept and "model.py" in kept and "noise" in kept
    assert "Extension modules" not in kept
    assert endings.died("signal SIGSEGV", kept) == "worker killed by SIGSEGV (in mlp, model.py:7)"
    assert endings.died("signal SIGSEGV", "") == "worker killed by SIGSEGV"
    assert endings.tail("a\nb\nc", 2) == "b\nc"


MODEL_THAT_PRINTS = '''import ctypes
import os

import keras


def mlp(input_shape, num_classes, params):
    print(f"building units={params['units']}", flush=True)
    os.system("echo from a subprocess")  # native output too: the descriptor is kept
    if params["units"] == 8:
        ctypes.string_at(0)  # a native extension that crashes: SIGSEGV
    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(num_classes,
                                                                          "softmax")])
'''


def test_what_a_run_prints_is_kept_and_a_native_crash_names_your_frame(fake_smi, tmp_path):
    """Reviews: everything your code printed in a sweep went to /dev/null, and a run
    whose code died of SIGSEGV said only "worker killed by SIGSEGV", with an empty
    stderr tail. Each run's standard output is now kept in its own output.log; the
    worker dumps its stack (faulthandler), and the reason names your innermost frame."""
    folder = study(tmp_path, {"runs": 2, "epochs": 1}, {"dataset": ["data:blobs"]})
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["configuration"]["units"] = {"values": [16, 8]}
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (folder / "model.py").write_text(MODEL_THAT_PRINTS)
    done = greenscreen("sweep", "--no-probe", cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]  # one run done, one failed
    first, second = ((folder / "sweeps" / "s" / run / "output.log").read_text()
                     for run in ("000", "001"))
    assert "building units=16" in first and "units=8" not in first
    assert "building units=8" in second and "from a subprocess" in second
    assert first.startswith("--- run 000, attempt started ")
    assert "building units" not in done.stdout  # the console stays the sweep's
    status = json.loads((folder / "sweeps" / "s" / "001" / "status.json").read_text())
    assert status["status"] == "failed", status
    assert status["reason"] == "worker killed by SIGSEGV (in mlp, model.py:11)", status
    assert "model.py\", line 11 in mlp" in status["traceback_tail"]
    assert "run 001 failed: worker killed by SIGSEGV (in mlp, model.py:11)" in done.stdout


def test_output_is_kept_only_where_it_can_be(tmp_path):
    """A review: with no standard output (descriptor 1 closed) the run did not train, and
    where output.log could not be opened, the run's own error was chained to that one."""
    import textwrap

    script = textwrap.dedent(f"""
        import os, sys
        os.close(1); sys.stdout = None
        from greenscreen_pipeline.run.output import kept_in
        with kept_in({str(tmp_path)!r}, 0):
            pass
        try:
            with kept_in({str(tmp_path / "no" / "folder")!r}, 1):
                raise ValueError("the run's own error")
        except ValueError as exc:
            assert exc.__context__ is None, exc.__context__
        sys.stderr.write("trained")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stderr.endswith("trained"), done.stderr
