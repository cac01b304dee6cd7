"""The callbacks' arguments, checked at construction, and one writer per `log_dir`."""

import json
import re
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
from conftest import UUID0
from test_callbacks import StopMidEpoch

from greenscreen import EnergyBudget, EnergyForecast, SMICallback
from greenscreen.meters import CpuTimeEstimate, EnergyMeter, available

pytestmark = pytest.mark.backends("tensorflow", "jax", "torch")


def tiny_fit(callbacks, epochs=3, raise_in_epoch=None):
    rng = np.random.default_rng(0)
    x = rng.random((64, 8)).astype("float32")
    y = (x.sum(axis=1) > 4).astype("int32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    if raise_in_epoch is not None:
        callbacks = [*callbacks, StopMidEpoch(raise_in_epoch)]
    return model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=callbacks)


def greenscreen_warnings(caught):
    return [str(w.message) for w in caught if "greenscreen" in str(w.message)]


def epochs_in(path):
    return [int(line.split(",")[0]) for line in path.read_text().splitlines()[1:]]


# -- bad arguments --------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"log_dir": 5}, "log_dir=5 is not valid; allowed: a folder path"),
    ({"after_epochs": 1.5}, "after_epochs=1.5 is not valid; allowed: an integer in [1, inf)"),
    ({"after_epochs": 2.0}, "after_epochs=2.0 is not valid; allowed: an integer"),
    ({"log_dir": ""}, "log_dir='' is not valid; allowed: a folder path"),  # the cwd, unasked
    ({"verbose": "yes"}, "verbose='yes' is not valid; allowed: an integer in [0, inf)"),
])
def test_energy_forecast_refuses_bad_arguments_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        EnergyForecast(**kwargs)


@pytest.mark.parametrize("make, match", [
    (lambda: EnergyBudget(max_joules=float("inf")), "max_joules=inf is not valid; allowed: "
                                                    "a number in (0, inf)"),
    (lambda: EnergyBudget(max_kwh=1, verbose="yes"), "verbose='yes' is not valid"),
    (lambda: SMICallback(log_dir=""), "log_dir='' is not valid; allowed: a folder path"),
    (lambda: EnergyBudget(max_kwh=1e302), "max_kwh=1e+302 is not valid; allowed: a number in "
                                          "(0, inf) whose joules are finite"),
])
def test_loose_arguments_found_by_a_review_are_refused_at_construction(make, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        make()
    EnergyBudget(max_kwh=1, verbose=True)  # True as 1, as Keras takes it


def test_a_log_dir_that_is_a_file_is_refused_at_construction(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    for log_dir in (afile, str(afile), afile / "sub"):
        for make in (SMICallback, EnergyForecast):
            with pytest.raises(ValueError, match=re.escape(f"log_dir={log_dir!r} is not "
                                                           f"valid; allowed: a folder path")):
                make(log_dir=log_dir)
    SMICallback(log_dir=tmp_path / "new" / "folder")  # a folder still to make is fine


@pytest.mark.parametrize("kwargs, match", [
    ({"gpus": [-1]}, "gpus=[-1] is not valid; allowed: None or a list of GPU indices "
                     "(integers >= 0) or UUIDs"),
    ({"gpus": [0, -2]}, "gpus=[0, -2] is not valid"),
    ({"source": "rpal"}, "(did you mean 'rapl'?)."),
    ({"source": "nvidiasmi"}, "(did you mean 'nvidia-smi'?)."),
    ({"source": ["nvml", "rpal"]}, "(did you mean 'rapl'?)."),
    ({"attribution": "proces"}, "attribution='proces' is not valid; allowed: one of "
                                "'process', 'device' (did you mean 'process'?)."),
])
def test_smi_callback_refuses_bad_arguments_naming_the_nearest(kwargs, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        SMICallback(**kwargs)
    with pytest.raises(ValueError, match=re.escape(match)):
        EnergyMeter(**kwargs)


def test_a_far_name_gets_no_suggestion():
    with pytest.raises(ValueError) as error:
        SMICallback(source="gpu")
    assert "did you mean" not in str(error.value)
    SMICallback(gpus=[0, UUID0])  # indices >= 0 and UUIDs pass


# -- GREENSCREEN_CPU_TDP_W ------------------------------------------------------------
@pytest.mark.parametrize("value", ["abc", "-5", "0", "nan", "inf"])
def test_an_invalid_cpu_tdp_makes_the_estimate_unavailable_and_says_why(value, monkeypatch,
                                                                        tmp_path):
    monkeypatch.setenv("GREENSCREEN_CPU_TDP_W", value)
    row = next(r for r in available() if r["source"] == "estimate")
    assert not row["available"]
    assert f"GREENSCREEN_CPU_TDP_W={value!r} is not valid; allowed: your CPU's TDP" in \
        row["reason"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = tiny_fit([SMICallback(log_dir=tmp_path, source="estimate")], epochs=1)
    assert any("meter could not start" in m and "GREENSCREEN_CPU_TDP_W" in m
               for m in greenscreen_warnings(caught))
    assert np.isnan(history.history["energy_j"][0])


def test_a_valid_or_unset_cpu_tdp_keeps_the_estimate_available(monkeypatch):
    monkeypatch.setenv("GREENSCREEN_CPU_TDP_W", "65")
    assert CpuTimeEstimate().unavailable_reason() is None
    monkeypatch.delenv("GREENSCREEN_CPU_TDP_W")
    assert CpuTimeEstimate().unavailable_reason() is None
    monkeypatch.setenv("GREENSCREEN_CPU_TDP_W", "abc")
    assert CpuTimeEstimate(tdp_w=65).unavailable_reason() is None  # the argument wins


# -- one writer per log_dir -----------------------------------------------------------
def test_two_callbacks_on_one_log_dir_in_one_fit_write_once_and_warn(tmp_path):
    first, second = (SMICallback(log_dir=tmp_path, source="estimate") for _ in range(2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = tiny_fit([first, second])
    lock_warnings = [m for m in greenscreen_warnings(caught) if "writes there" in m]
    assert len(lock_warnings) == 1 and str(tmp_path) in lock_warnings[0]
    assert "no logs.csv or summary.json is written there" in lock_warnings[0]
    assert epochs_in(tmp_path / "logs.csv") == [0, 1, 2]  # not 0, 0, 1, 1, 2, 2
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["epochs"] == 3 and len(summary["attempts"]) == 1
    assert all(e >= 0 for e in history.history["energy_j"])  # the second still measures


HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
print("held", flush=True)
sys.stdin.read()
"""


def test_a_log_dir_another_process_writes_is_left_alone(tmp_path):
    (tmp_path / "logs.csv").write_text("theirs\n")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "greenscreen.lock")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = tiny_fit([SMICallback(log_dir=tmp_path, source="estimate")])
        messages = [m for m in greenscreen_warnings(caught) if "writes there" in m]
        assert len(messages) == 1
        assert f"another process (pid {holder.pid})" in messages[0]
        assert (tmp_path / "logs.csv").read_text() == "theirs\n"  # untouched
        assert not (tmp_path / "summary.json").exists()
        assert len(history.history["energy_j"]) == 3
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    (tmp_path / "logs.csv").unlink()
    tiny_fit([SMICallback(log_dir=tmp_path, source="estimate")])  # free again: it writes
    assert epochs_in(tmp_path / "logs.csv") == [0, 1, 2]


def test_an_interrupted_fit_s_callback_does_not_block_the_next_fit(tmp_path):
    stale = SMICallback(log_dir=tmp_path, source="estimate")
    with pytest.raises(KeyboardInterrupt):
        tiny_fit([stale], raise_in_epoch=1)  # no on_train_end, no close: it keeps the lock
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny_fit([SMICallback(log_dir=tmp_path, source="estimate")])
    assert not [m for m in greenscreen_warnings(caught) if "writes there" in m]
    assert epochs_in(tmp_path / "logs.csv") == [0, 1, 2]
    written = (tmp_path / "summary.json").read_text()
    stale.close()  # it lost the folder to the later fit: it writes nothing now
    assert (tmp_path / "summary.json").read_text() == written


def test_the_lock_is_not_the_pipeline_s_run_lock(tmp_path):
    from greenscreen_pipeline.run.ownership import LOCK_FILE, Held

    assert LOCK_FILE != "greenscreen.lock"
    with Held(tmp_path), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny_fit([SMICallback(log_dir=tmp_path, source="estimate")])
    assert not [m for m in greenscreen_warnings(caught) if "writes there" in m]
    assert epochs_in(tmp_path / "logs.csv") == [0, 1, 2]
