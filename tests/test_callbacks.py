"""SMICallback and its family on real (tiny) Keras fits, measured via the fake nvidia-smi."""

import csv
import glob
import json
import math
import re
import time
import warnings

import keras
import numpy as np
import pytest
from conftest import UUID0, UUID1, trace_energy

from greenscreen import EnergyBudget, EnergyForecast, SMICallback

pytestmark = pytest.mark.backends("tensorflow", "jax", "torch")


def tiny_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8)).astype("float32")
    return x, (x.sum(axis=1) > 4).astype("int32")


def tiny_model():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class SlowSteps(keras.callbacks.Callback):
    """Makes each step take a known minimum time, so epochs are long enough to integrate."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.seconds)


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


class NewestReadings(keras.callbacks.Callback):
    """Put before `smi` in the callbacks: the time of each device's newest reading in its
    meter as each epoch (and the fit) ends, just before `smi` closes its window there."""

    def __init__(self, smi):
        super().__init__()
        self.smi, self.at_epoch_end, self.at_train_end = smi, [], None

    def on_epoch_end(self, epoch, logs=None):
        self.at_epoch_end.append(newest_readings(self.smi._meter))

    def on_train_end(self, logs=None):
        self.at_train_end = newest_readings(self.smi._meter)


def newest_readings(meter) -> dict:
    """The time of each device's newest reading in `meter` now (index -> time)."""
    with meter._lock:
        return {s.index: s.t[-1] for s in meter._series.values()}


def readings(meter) -> dict:
    """Each device's reading times in `meter` (index -> times)."""
    with meter._lock:
        return {s.index: np.array(s.t) for s in meter._series.values()}


def sampling_bound(times, a: float, b: float, newest: float, spec: dict) -> float:
    """The most (J) the meter's integral of the fake's trace `spec` over [a, b] can be off,
    given the readings the stream actually gave (`times`) and the newest one the meter held
    when the window closed (`newest`): the power's curvature between readings (linear
    interpolation), its change over what was held past `newest`, and the fake's rounding
    (0.01 W, millisecond time stamps). A stream that a busy machine delays gets the room its
    gaps need, and no more; at 20 Hz it is well under 1 % of a trace's energy."""
    w = 2 * math.pi / spec.get("period", 1.0)
    slope = spec.get("amp", 0.0) * w + abs(spec.get("slope", 0.0))  # bounds |p'|, W/s
    curve = spec.get("amp", 0.0) * w * w  # bounds |p''|, W/s^2
    t = np.asarray(times)
    overlap = np.clip(np.minimum(t[1:], b) - np.maximum(t[:-1], a), 0.0, None)
    bound = curve / 8 * float(np.sum(np.diff(t) ** 2 * overlap))
    bound += (0.005 + slope * 0.001) * (b - a)
    if newest < b:  # held at the newest reading from there on
        bound += slope / 2 * ((b - newest) ** 2 - max(a - newest, 0.0) ** 2)
    if t[0] > a:  # held at the first reading before it
        bound += slope / 2 * ((t[0] - a) ** 2 - max(t[0] - b, 0.0) ** 2)
    return bound


def test_history_energy_matches_trace_integral_per_epoch(fake_smi, tmp_path):
    t0 = time.time()
    cfg = fake_smi.configure([
        {"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": 250, "amp": 90, "period": 1.7,
                                                          "t0": t0}},
        {"uuid": UUID1, "name": "NVIDIA H200", "power": {"base": 120, "slope": 15, "t0": t0}},
    ])
    x, y = tiny_data()
    cb = SMICallback(log_dir=tmp_path, interval=0.05, source="nvidia-smi")
    newest = NewestReadings(cb)
    history = tiny_model().fit(x, y, epochs=3, batch_size=64, verbose=0,
                               callbacks=[newest, cb, SlowSteps(0.15)])
    rows = read_csv(tmp_path / "logs.csv")
    assert len(rows) == 3
    times = readings(cb._meter)
    room = []  # each epoch's bound per GPU, from the readings it had
    for row, energy, seen in zip(rows, history.history["energy_j"], newest.at_epoch_end):
        a, b = float(row["t_start"]), float(row["t_end"])
        per_gpu = [trace_energy(g["power"], a, b) for g in cfg["gpus"]]
        room.append([sampling_bound(times[i], a, b, seen[i], g["power"])
                     for i, g in enumerate(cfg["gpus"])])
        assert abs(energy - sum(per_gpu)) <= sum(room[-1])
        assert abs(float(row["gpu0_energy_j"]) - per_gpu[0]) <= room[-1][0]
        assert abs(float(row["gpu1_energy_j"]) - per_gpu[1]) <= room[-1][1]
        assert row["source"] == "measured:nvidia-smi"
        assert "gpu_power_W" not in row  # the original's names: translated by the reader
        assert float(row["epoch_s"]) == pytest.approx(b - a)
    for key in ("power_w", "power_peak_w", "gpu_temp_c", "gpu_util_pct", "epoch_s", "accuracy"):
        assert key in history.history and key in rows[0]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["source"] == "measured:nvidia-smi" and summary["epochs"] == 3
    assert summary["sample_interval_s"] == 0.05  # the report's "a stream at 20 Hz"
    assert [d["uuid"] for d in summary["devices"]] == [UUID0, UUID1]
    # The fit's total holds its epochs (and what lies between them); each figure is off
    # the truth by at most its bound.
    fit = summary["attempts"][0]
    fit_room = sum(sampling_bound(times[i], fit["t_start"], fit["t_end"],
                                  newest.at_train_end[i], g["power"])
                   for i, g in enumerate(cfg["gpus"]))
    assert summary["energy_j"] >= sum(history.history["energy_j"]) - sum(map(sum, room)) \
        - fit_room
    assert summary["energy_kwh"] == pytest.approx(summary["energy_j"] / 3.6e6)
    assert summary["co2_g"] == pytest.approx(summary["energy_kwh"] * 446.1, rel=1e-3)
    assert "world average" in summary["carbon"]["intensity_source"]
    assert summary["faults"] == 0


@pytest.mark.backends("tensorflow")  # Keras's TensorBoard callback writes through tf.summary
def test_progress_bar_csvlogger_and_tensorboard_pick_up_energy(fake_smi, tmp_path, capsys):
    x, y = tiny_data()
    callbacks = [
        SMICallback(log_dir=tmp_path / "run", interval=0.05),
        keras.callbacks.CSVLogger(str(tmp_path / "keras.csv")),
        keras.callbacks.TensorBoard(log_dir=str(tmp_path / "tb")),
    ]
    tiny_model().fit(x, y, epochs=2, batch_size=64, verbose=2, callbacks=callbacks)
    out = capsys.readouterr().out
    assert "energy_j: " in out and "power_w: " in out
    keras_rows = read_csv(tmp_path / "keras.csv")
    assert float(keras_rows[0]["energy_j"]) > 0 and "gpu_temp_c" in keras_rows[0]
    assert float(keras_rows[0]["energy_estimated"]) == 0.0  # measured, said in a number
    import tensorflow as tf

    tags = set()
    for path in glob.glob(str(tmp_path / "tb" / "**" / "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    assert "epoch_energy_j" in tags and "epoch_power_w" in tags


def test_nvidia_smi_absent_auto_falls_back_to_labelled_estimate(tmp_path, monkeypatch):
    monkeypatch.delenv("GREENSCREEN_NVIDIA_SMI", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    x, y = tiny_data()
    history = tiny_model().fit(x, y, epochs=2, verbose=0,
                               callbacks=[SMICallback(log_dir=tmp_path, interval=0.05)])
    rows = read_csv(tmp_path / "logs.csv")
    summary = json.loads((tmp_path / "summary.json").read_text())
    if summary["source"].startswith("measured:rapl"):  # with its attribution since issue 26
        pytest.skip("this machine offers RAPL")
    assert {r["source"] for r in rows} == {"estimated:cpu-time"}
    assert summary["source"] == "estimated:cpu-time"
    assert "nvidia-smi not found" in summary["skipped_sources"]["nvidia-smi"]
    assert all(e >= 0 for e in history.history["energy_j"])


def test_nvidia_smi_absent_explicit_source_gives_nan_with_reason(tmp_path, monkeypatch):
    monkeypatch.delenv("GREENSCREEN_NVIDIA_SMI", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    x, y = tiny_data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = tiny_model().fit(x, y, epochs=3, verbose=0, callbacks=[
            SMICallback(log_dir=tmp_path, source="nvidia-smi")])
    ours = [w for w in caught if "greenscreen" in str(w.message)]
    assert len(ours) == 1 and "nvidia-smi not found" in str(ours[0].message)
    assert all(math.isnan(e) for e in history.history["energy_j"])
    rows = read_csv(tmp_path / "logs.csv")
    assert all(r["energy_j"] == "nan" and "nvidia-smi not found" in r["reason"] for r in rows)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["energy_j"] is None and "nvidia-smi not found" in summary["reason"]
    assert summary["source"] == "none"


def test_nvidia_smi_dying_mid_epoch_does_not_stop_fit(fake_smi, tmp_path):
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": 300.0}}],
                       die_after=4)
    x, y = tiny_data()
    history = tiny_model().fit(x, y, epochs=3, batch_size=64, verbose=0, callbacks=[
        SMICallback(log_dir=tmp_path, interval=0.05), SlowSteps(0.1)])
    assert len(history.history["loss"]) == 3
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["source"] == "measured:nvidia-smi"
    assert summary["sampler"]["restarts"] >= 1 and summary["faults"] >= 1
    assert "exited with code 1" in summary["sampler"]["reason"]
    rows = read_csv(tmp_path / "logs.csv")
    for row, energy in zip(rows, history.history["energy_j"]):
        # Gaps are interpolated at the constant 300 W and coverage says how much was seen.
        if not math.isnan(energy):
            assert energy == pytest.approx(300.0 * float(row["epoch_s"]), rel=0.02)
        assert 0.0 <= float(row["coverage"]) <= 1.0


def test_one_instance_serves_several_fits_and_init_only_stores(fake_smi, tmp_path):
    cb = SMICallback(log_dir=tmp_path, interval=0.05)
    assert cb._meter is None and not (tmp_path / "logs.csv").exists()
    model, (x, y) = tiny_model(), tiny_data()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    second = model.fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    assert len(read_csv(tmp_path / "logs.csv")) == 3
    assert json.loads((tmp_path / "summary.json").read_text())["epochs"] == 3
    assert len(second.history["energy_j"]) == 3


def test_evaluate_and_predict_are_measured_without_changing_results(fake_smi, tmp_path):
    model, (x, y) = tiny_model(), tiny_data()
    cb = SMICallback(log_dir=tmp_path, interval=0.05)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[cb], validation_split=0.25)
    loss, acc = model.evaluate(x, y, verbose=0, callbacks=[cb])
    model.predict(x, verbose=0, callbacks=[cb])
    inference = json.loads((tmp_path / "summary.json").read_text())["inference"]
    assert inference["validation"]["calls"] == 1
    assert inference["evaluate"]["calls"] == 1 and inference["evaluate"]["batches"] > 0
    assert inference["predict"]["calls"] == 1 and inference["predict"]["duration_s"] > 0
    assert inference["evaluate"]["energy_j"] > 0 and inference["predict"]["energy_j"] > 0
    assert isinstance(loss, float) and isinstance(acc, float)


def test_evaluate_before_any_fit_is_measured(fake_smi, tmp_path):
    model, (x, y) = tiny_model(), tiny_data()
    cb = SMICallback(log_dir=tmp_path, interval=0.05)
    model.evaluate(x, y, verbose=0, callbacks=[cb])
    inference = json.loads((tmp_path / "summary.json").read_text())["inference"]
    assert inference["evaluate"]["calls"] == 1 and inference["evaluate"]["batches"] > 0
    assert inference["evaluate"]["energy_j"] > 0 and not cb._meter.running


def test_per_batch_power_reads_the_latest_sample(fake_smi):
    seen = []
    spy = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(
            (logs.get("power_w"), logs.get("energy_estimated"))))
    x, y = tiny_data()
    tiny_model().fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[
        SMICallback(log_dir=None, interval=0.05, per_batch=True), SlowSteps(0.05), spy])
    measured = [p for p, _ in seen if p is not None and not math.isnan(p)]
    assert len(seen) == 8 and measured and set(measured) == {400.0}
    assert {flag for _, flag in seen} == {0.0}


def test_per_batch_power_of_an_estimate_says_so():
    """An estimated power in batch logs is flagged as an epoch's is: never shown as a
    measurement."""
    seen = []
    spy = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(
        (logs.get("power_w"), logs.get("energy_estimated"))))
    x, y = tiny_data()
    tiny_model().fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[
        SMICallback(log_dir=None, source="estimate", interval=0.05, per_batch=True), spy])
    assert len(seen) == 8 and {flag for _, flag in seen} == {1.0}


def test_energy_budget_stops_training_and_says_so(fake_smi, tmp_path, capsys):
    x, y = tiny_data()
    history = tiny_model().fit(x, y, epochs=20, batch_size=64, verbose=0, callbacks=[
        SMICallback(log_dir=tmp_path, interval=0.05), EnergyBudget(max_joules=200),
        SlowSteps(0.1)])
    epochs = len(history.history["loss"])
    assert epochs < 20
    assert history.history["budget_exceeded"][-1] == 1.0
    assert history.history["energy_spent_j"][-1] >= 200
    assert all(v < 200 for v in history.history["energy_spent_j"][:-1])
    assert "EnergyBudget stopped training" in capsys.readouterr().out
    # summary.json says so too ("completed" alone read as a whole fit of those epochs)
    attempt, = json.loads((tmp_path / "summary.json").read_text())["attempts"]
    assert attempt["ended"] == "completed" and attempt["epochs"] == epochs
    assert attempt["epochs_planned"] == 20 and attempt["stopped_early"] is True
    assert attempt["stopped_by"] == [
        f"EnergyBudget at epoch {epochs}: {history.history['energy_spent_j'][-1]:.1f} J spent "
        "of a 200.0 J budget (GPU)"]
    stopper = keras.callbacks.EarlyStopping("loss", patience=0, min_delta=1e9)
    history = tiny_model().fit(x, y, epochs=5, batch_size=64, verbose=0, callbacks=[
        SMICallback(log_dir=tmp_path / "early", interval=0.05), stopper])
    attempt, = json.loads((tmp_path / "early" / "summary.json").read_text())["attempts"]
    assert attempt["stopped_early"] is True and attempt["epochs"] == 2
    assert attempt["stopped_by"] == ["EarlyStopping at epoch 2"]
    tiny_model().fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[
        SMICallback(log_dir=tmp_path / "whole", interval=0.05)])
    attempt, = json.loads((tmp_path / "whole" / "summary.json").read_text())["attempts"]
    assert (attempt["epochs_planned"], attempt["stopped_early"], attempt["stopped_by"]) == (
        1, False, [])


def test_an_attempt_s_partial_component_is_never_called_measured_by_its_estimate():
    """covers_partly said "measured in attempt(s) 1 of 2" of a CPU-time estimate (review)."""
    from greenscreen.callbacks._summary import coverage

    earlier = [{"source": "estimated:cpu-time", "components": {"cpu": 5.0},
                "component_sources": {"cpu": "estimated:cpu-time"}}]
    covers, partly = coverage(earlier, {"gpu": "measured:nvidia-smi"})
    assert covers == ["gpu", "cpu"]
    assert partly["cpu"] == ("recorded in attempt(s) 1 of 2 (estimated:cpu-time): its total "
                             "over the attempts is unknown")
    assert partly["gpu"].startswith("recorded in attempt(s) 2 of 2 (measured:nvidia-smi)")
    # an older attempt without component_sources: its whole source is not the CPU's
    older = [{"source": "measured:nvidia-smi + estimated:cpu-time", "components": {"cpu": 5.0}}]
    assert coverage(older, {"gpu": "measured:nvidia-smi"})[1]["cpu"] == (
        "recorded in attempt(s) 1 of 2: its total over the attempts is unknown")


def test_an_estimate_is_never_called_measured_by_the_budget_forecast_or_loggers(tmp_path,
                                                                              capsys):
    x, y = tiny_data()
    forecast = EnergyForecast(after_epochs=1, log_dir=tmp_path)
    history = tiny_model().fit(x, y, epochs=3, batch_size=64, verbose=0, callbacks=[
        SMICallback(source="estimate", log_dir=None), forecast,
        EnergyBudget(max_joules=1e-9), keras.callbacks.CSVLogger(str(tmp_path / "k.csv"))])
    out = capsys.readouterr().out
    assert out.count("(energy_j estimated, not measured)") == 2  # the forecast, the budget
    assert "measured)" not in out.replace("not measured)", "")
    assert history.history["energy_estimated"] == [1.0]
    assert float(read_csv(tmp_path / "k.csv")[0]["energy_estimated"]) == 1.0
    assert json.loads((tmp_path / "forecast.json").read_text())["forecast"]["estimated"]


@pytest.mark.parametrize("kwargs", [{}, {"max_joules": 1, "max_kwh": 1}, {"max_kwh": -1},
                                    {"max_joules": "lots"}])
def test_energy_budget_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="is not valid; allowed"):
        EnergyBudget(**kwargs)  # at construction, as Keras callbacks do


@pytest.mark.parametrize("kwargs, match", [
    ({"country": "XX"}, "country='XX' is not valid; allowed: an ISO 3166 code"),
    ({"source": "gpu"}, "source='gpu' is not valid; allowed: 'auto', 'nvidia-smi'"),
    ({"interval": 0}, "interval=0 is not valid; allowed: a number in [0.001, inf)"),
    ({"interval": 1e-9}, "interval=1e-09 is not valid; allowed: a number in [0.001, inf)"),
    ({"pue": 0.5}, "pue=0.5 is not valid"),
    ({"carbon_intensity": -1}, "carbon_intensity=-1 is not valid"),
    ({"gpus": "0,1"}, "gpus='0,1' is not valid; allowed: None or a list"),
    ({"log_dir": 3}, "log_dir=3 is not valid"),
    ({"append": "yes"}, "append='yes' is not valid; allowed: True or False"),
    ({"meter": "nvml"}, "meter='nvml' is not valid"),
    ({"attribution": "share"}, "attribution='share' is not valid; allowed: one of 'process'"),
    ({"first_sample_timeout": -1}, "first_sample_timeout=-1 is not valid"),
    ({"first_sample_timeout": float("inf")}, "first_sample_timeout=inf is not valid; "
                                              "allowed: a number in [0, inf)"),
    ({"gpus": [True]}, "gpus=[True] is not valid; allowed: None or a list"),
])
def test_smi_callback_bad_arguments_raise_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        SMICallback(**kwargs)


def test_energy_forecast_bad_arguments_raise_at_construction():
    with pytest.raises(ValueError, match="after_epochs=0 is not valid"):
        EnergyForecast(after_epochs=0)
    with pytest.raises(ValueError, match="country='XX' is not valid"):
        EnergyForecast(country="XX")


def test_distinct_faults_each_warn_once(tmp_path):
    callback = SMICallback(log_dir=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for message in ("fault A", "fault A", "fault B", "fault A"):
            callback._warn_once("nan", message)
    assert [str(w.message) for w in caught] == ["greenscreen: fault A", "greenscreen: fault B"]


def test_energy_forecast_predicts_and_scores_itself(fake_smi, tmp_path):
    x, y = tiny_data()
    forecast = EnergyForecast(after_epochs=2, log_dir=tmp_path, country="FR", verbose=0)
    history = tiny_model().fit(x, y, epochs=5, batch_size=64, verbose=0, callbacks=[
        SMICallback(log_dir=None, interval=0.05), forecast, SlowSteps(0.05)])
    assert math.isnan(history.history["forecast_energy_j"][0])
    assert history.history["forecast_energy_j"][1] > 0
    result = json.loads((tmp_path / "forecast.json").read_text())
    assert result["completed"] and result["forecast"]["epochs_planned"] == 5
    # scored against SMICallback's running total (summary.json's energy_j), which holds
    # the epochs and what lies between them
    assert result["actual"]["energy_j"] == pytest.approx(history.history["energy_total_j"][-1])
    assert result["actual"]["energy_j"] >= sum(history.history["energy_j"])
    expected = 100 * (result["forecast"]["energy_j"] / result["actual"]["energy_j"] - 1)
    assert result["energy_error_pct"] == pytest.approx(expected)
    assert abs(result["energy_error_pct"]) < 50  # steady epochs: a sane forecast
    assert "France" in result["carbon"]["intensity_source"]


class WorkBetweenEpochs(keras.callbacks.Callback):
    """0.3 s of work at each epoch's end, as a ModelCheckpoint takes to write."""

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(0.3)


def test_energy_forecast_counts_the_work_between_epochs(fake_smi, tmp_path):
    """The forecast projected the epochs' own energy_j, which leaves out what lies
    between them (checkpoints, other callbacks): -50 % here, -20 % with no callback at
    all (review). It projects the running total's steady step now."""
    x, y = tiny_data()
    forecast = EnergyForecast(after_epochs=3, verbose=0)
    history = tiny_model().fit(x, y, epochs=8, batch_size=64, verbose=0, callbacks=[
        SMICallback(log_dir=None, interval=0.05), forecast, WorkBetweenEpochs()])
    totals = history.history["energy_total_j"]
    # The gaps weigh here: each holds 0.3 s of sleep at the epochs' power (a ratio to the
    # epochs' own energy failed on a loaded machine, its first epoch 1348 J of 2088).
    gaps = [b - a - e for a, b, e in zip(totals, totals[1:], history.history["energy_j"][1:])]
    assert np.median(gaps) > 0.8 * 0.3 * np.median(history.history["power_w"]), gaps
    # Before: -53 % here, every time (the gaps left out). Now about -8 % on TensorFlow; a
    # PyTorch run's slower first steps over-forecast (+29 % once): the bound tells the two
    # apart without holding the machine's timing to a few per cent.
    assert -35 < forecast.result["energy_error_pct"] < 60, forecast.result


class GapAt(keras.callbacks.Callback):
    """After SMICallback: epoch `epoch`'s energy unknown, as a meter's gap leaves it."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            logs["energy_j"] = float("nan")


def test_energy_forecast_leaves_out_an_epoch_without_energy_and_says_when_it_has_none(
        fake_smi, tmp_path):
    """One epoch's NaN made the forecast NaN for good, silently; placed before
    SMICallback, it forecast NaN without a word (review)."""
    x, y = tiny_data()
    gap = EnergyForecast(after_epochs=3, verbose=0)
    tiny_model().fit(x, y, epochs=5, batch_size=64, verbose=0, callbacks=[
        SMICallback(log_dir=None, interval=0.05), GapAt(1), gap, SlowSteps(0.02)])
    assert math.isfinite(gap.forecast["energy_j"]) and gap.forecast["energy_j"] > 0
    before = EnergyForecast(after_epochs=2, verbose=0)
    with pytest.warns(RuntimeWarning, match="found no epoch's energy_j to forecast from"):
        tiny_model().fit(x, y, epochs=3, batch_size=64, verbose=0, callbacks=[
            before, SMICallback(log_dir=None, interval=0.05)])
    assert math.isnan(before.forecast["energy_j"])


def test_energy_forecast_counts_co2_at_its_smicallback_s_intensity(fake_smi, tmp_path):
    """README's example, SMICallback(country="FR") beside a bare EnergyForecast(): the
    forecast counted CO2 at the world average, 6.5 times summary.json's (review)."""
    x, y = tiny_data()
    smi, forecast = SMICallback(log_dir=tmp_path, country="FR", interval=0.05), \
        EnergyForecast(after_epochs=1, verbose=0)
    given = EnergyForecast(after_epochs=1, verbose=0, carbon_intensity=500.0)
    # A PUE alone: the place still the SMICallback's (it was the world average's, 6x)
    pue_only = EnergyForecast(after_epochs=1, verbose=0, pue=1.5)
    tiny_model().fit(x, y, epochs=2, batch_size=64, verbose=0,
                     callbacks=[smi, forecast, given, pue_only])
    assert forecast.intensity.as_dict() == smi.intensity.as_dict()
    assert "France" in forecast.intensity.source
    assert pue_only.intensity.g_per_kwh == smi.intensity.g_per_kwh
    assert "France" in pue_only.intensity.source and pue_only.intensity.pue == 1.5
    actual = forecast.result["actual"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert actual["co2_g"] == pytest.approx(smi.intensity.grams(actual["energy_j"]))
    assert summary["co2_g"] == pytest.approx(smi.intensity.grams(summary["energy_j"]))
    assert given.intensity.g_per_kwh == 500.0  # one given stays its own


def test_energy_forecast_that_cannot_write_its_file_or_forecast_warns_and_fit_returns(
        fake_smi, tmp_path):
    """forecast.json in a folder that cannot be made raised from fit after training (the
    History lost); a fit shorter than after_epochs forecast nothing without a word."""
    x, y = tiny_data()
    unwritable = tmp_path / "file" / "run"
    forecast = EnergyForecast(after_epochs=1, verbose=0, log_dir=unwritable)
    (tmp_path / "file").write_text("a file where a folder would go")
    with pytest.warns(RuntimeWarning, match="could not write forecast.json"):
        history = tiny_model().fit(x, y, epochs=2, batch_size=64, verbose=0, callbacks=[
            SMICallback(log_dir=None, interval=0.05), forecast])
    assert len(history.history["loss"]) == 2 and forecast.result["actual"]["epochs"] == 2
    late = EnergyForecast(after_epochs=5, verbose=0)
    with pytest.warns(RuntimeWarning, match="made no forecast: this fit trained 2 epoch"):
        tiny_model().fit(x, y, epochs=2, batch_size=64, verbose=0, callbacks=[
            SMICallback(log_dir=None, interval=0.05), late])
    assert late.forecast is None


def test_append_keeps_earlier_rows(fake_smi, tmp_path):
    model, (x, y) = tiny_model(), tiny_data()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[SMICallback(log_dir=tmp_path, interval=0.05)])
    model.fit(x, y, epochs=1, verbose=0,
              callbacks=[SMICallback(log_dir=tmp_path, interval=0.05, append=True)])
    rows = read_csv(tmp_path / "logs.csv")
    assert [r["epoch"] for r in rows] == ["0", "1", "0"]
    assert all(float(r["energy_j"]) > 0 for r in rows)


class CrashAt(keras.callbacks.Callback):
    """Stands in for a crash: raises at the start of one epoch."""

    def __init__(self, epoch):
        super().__init__()
        self.at = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise RuntimeError("crash")


class StopMidEpoch(keras.callbacks.Callback):
    """A Ctrl-C landing in a batch of epoch `epoch`, before any epoch-end write."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch, self.current = epoch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == 1:
            raise KeyboardInterrupt("SIGTERM")


def test_close_after_an_interrupted_fit_keeps_the_attempt_s_joules(fake_smi, tmp_path):
    """An interrupt inside the first epoch skips on_train_end and every epoch-end write:
    close() records the attempt (energy so far, "interrupted": it said "running (or
    killed)", as if it might still run), so a resumed fit counts both attempts."""
    model, (x, y) = tiny_model(), tiny_data()
    smi = SMICallback(log_dir=tmp_path, interval=0.05, resume=True)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=3, batch_size=16, verbose=0,
                  callbacks=[smi, SlowSteps(0.05), StopMidEpoch(0)])
    assert not (tmp_path / "summary.json").exists()  # nothing was written yet
    smi.close()
    first = json.loads((tmp_path / "summary.json").read_text())
    assert [a["ended"] for a in first["attempts"]] == ["interrupted"]
    assert first["attempts"][0]["energy_j"] > 0 and first["energy_j"] > 0
    smi.close()  # a second call changes nothing
    assert json.loads((tmp_path / "summary.json").read_text()) == first
    again = SMICallback(log_dir=tmp_path, interval=0.05, resume=True)
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[again])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary["attempts"]) == 2
    # The crashed attempt, closed by the next fit's callback: on to its last hook (epoch
    # 2's begin, after epoch 1's checkpoint), not only to its last summary write
    crashed = summary["attempts"][0]
    assert crashed["ended"] == "interrupted" and crashed["t_end"] >= first["t_end"]
    assert crashed["energy_j"] >= first["energy_j"] * (1 - 1e-9)
    assert summary["energy_j"] == pytest.approx(sum(a["energy_j"] for a in summary["attempts"]))


def test_a_fit_that_fails_mid_epoch_leaves_summary_and_logs_agreeing(fake_smi, tmp_path):
    """No on_train_end after the failure: summary.json's epochs is what its last epoch-end
    write said, which counts the row that epoch then appended (it said one fewer)."""
    model, (x, y) = tiny_model(), tiny_data()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=5, batch_size=16, verbose=0, callbacks=[
            SMICallback(log_dir=tmp_path, interval=0.05), StopMidEpoch(2)])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(read_csv(tmp_path / "logs.csv")) == 2
    assert summary["epochs"] == 2 and summary["attempts"][0]["epochs"] == 2


def test_resume_with_backup_and_restore_keeps_every_epoch_and_every_joule(fake_smi, tmp_path):
    model, (x, y) = tiny_model(), tiny_data()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))

    def callbacks(*extra):
        return [SMICallback(log_dir=tmp_path, interval=0.05, resume=True), backup, *extra]

    with pytest.raises(RuntimeError, match="crash"):
        model.fit(x, y, epochs=5, verbose=0, callbacks=callbacks(CrashAt(2)))
    before = read_csv(tmp_path / "logs.csv")
    first = json.loads((tmp_path / "summary.json").read_text())
    assert [r["epoch"] for r in before] == ["0", "1"]
    model.fit(x, y, epochs=5, verbose=0, callbacks=callbacks())  # resumes at epoch 2
    rows = read_csv(tmp_path / "logs.csv")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3", "4"]  # none lost, none doubled
    assert rows[:2] == before  # the first attempt's rows, unchanged
    assert [r["attempt"] for r in rows] == ["1", "1", "2", "2", "2"]
    assert [a["first_epoch"] for a in summary["attempts"]] == [0, 2]
    # The crashed attempt, closed by the next fit's callback: on to its last hook (epoch
    # 2's begin, after epoch 1's checkpoint), not only to its last summary write
    crashed = summary["attempts"][0]
    assert crashed["ended"] == "interrupted" and crashed["t_end"] >= first["t_end"]
    assert crashed["energy_j"] >= first["energy_j"] * (1 - 1e-9)
    assert summary["energy_j"] == pytest.approx(sum(a["energy_j"] for a in summary["attempts"]))
    assert summary["energy_j"] > first["energy_j"] > 0  # the crashed attempt's joules stay


def test_a_backup_dir_that_holds_log_dir_is_warned_of(fake_smi, tmp_path):
    """Keras deletes BackupAndRestore's backup_dir when training ends: given log_dir or a
    folder above it, logs.csv and summary.json went with it, without a word (review)."""
    x, y = tiny_data()
    for backup_dir in (tmp_path / "run", tmp_path):
        with pytest.warns(RuntimeWarning, match=r"BackupAndRestore's backup_dir .* holds "
                          r"log_dir .*: Keras deletes it when training ends"):
            tiny_model().fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[
                SMICallback(log_dir=tmp_path / "run", interval=0.05),
                keras.callbacks.BackupAndRestore(str(backup_dir))])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny_model().fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[
            SMICallback(log_dir=tmp_path / "own", interval=0.05),
            keras.callbacks.BackupAndRestore(str(tmp_path / "own" / "backup"))])
    assert not [w for w in caught if "backup_dir" in str(w.message)]
    assert (tmp_path / "own" / "summary.json").exists()
