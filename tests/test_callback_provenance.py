"""Where the callbacks' energy comes from: attempts of different provenance, an estimated
part in a measured total, and what EnergyBudget and EnergyForecast count as spent."""

import json
import math
import time
import warnings

import keras
import pytest
from test_callbacks import CrashAt, SlowSteps, read_csv, tiny_data, tiny_model

from greenscreen import EnergyBudget, EnergyForecast, SMICallback
from greenscreen.meters.estimate import CpuTimeEstimate
from greenscreen_pipeline import provenance

pytestmark = pytest.mark.backends("tensorflow", "jax", "torch")

LABEL = {"estimate": "estimated:cpu-time", "nvidia-smi": "measured:nvidia-smi"}


def summary_of(folder):
    return json.loads((folder / "summary.json").read_text())


class SlowEpochEnd(keras.callbacks.Callback):
    """Work after SMICallback's epoch has closed (a checkpoint being written): energy
    between epochs, which summary.json counts and no epoch's energy_j holds."""

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(0.2)


class ReadSummary(keras.callbacks.Callback):
    """What summary.json says at each epoch end, read right after SMICallback wrote it."""

    def __init__(self, folder):
        super().__init__()
        self.folder, self.energy_j = folder, []

    def on_epoch_end(self, epoch, logs=None):
        self.energy_j.append(summary_of(self.folder)["energy_j"])


@pytest.mark.parametrize("first, second", [("estimate", "nvidia-smi"),
                                           ("nvidia-smi", "estimate")])
def test_attempts_of_different_provenance_are_each_named(fake_smi, tmp_path, first, second):
    """An estimated attempt and a measured one add up to a total that says it is, in part,
    an estimate, in either order; each attempt keeps its own source."""
    model, (x, y) = tiny_model(), tiny_data()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))

    def smi(source):
        return SMICallback(log_dir=tmp_path, interval=0.05, source=source, resume=True)

    with pytest.raises(RuntimeError, match="crash"):
        model.fit(x, y, epochs=4, verbose=0, callbacks=[smi(first), backup, CrashAt(2)])
    history = model.fit(x, y, epochs=4, verbose=0, callbacks=[smi(second), backup])
    summary = summary_of(tmp_path)
    assert [a["source"] for a in summary["attempts"]] == [LABEL[first], LABEL[second]]
    assert summary["source"] == f"{LABEL[first]} + {LABEL[second]}"
    assert summary["energy_estimated"] is True and provenance.estimated(summary["source"])
    assert summary["energy_j"] == pytest.approx(sum(a["energy_j"] for a in summary["attempts"]))
    # the component one attempt measured, the other did not: no total for it
    assert all(part["energy_j"] is None for part in summary["components"].values())
    rows = read_csv(tmp_path / "logs.csv")
    flags = {"estimate": "1.0", "nvidia-smi": "0.0"}
    assert [r["energy_estimated"] for r in rows] == [flags[first]] * 2 + [flags[second]] * 2
    assert history.history["energy_total_estimated"] == [1.0, 1.0]  # the total: in part


@pytest.mark.parametrize("written_before", ["attempts without a source", "no attempts"])
def test_an_attempt_recorded_without_a_source_takes_the_summary_s(fake_smi, tmp_path,
                                                                  written_before):
    model, (x, y) = tiny_model(), tiny_data()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[
        SMICallback(log_dir=tmp_path, interval=0.05, source="nvidia-smi")])
    old = summary_of(tmp_path)  # as an earlier greenscreen wrote it
    old.pop("energy_estimated")
    if written_before == "no attempts":
        del old["attempts"]
    else:
        for attempt in old["attempts"]:
            del attempt["source"]
    (tmp_path / "summary.json").write_text(json.dumps(old))
    model.fit(x, y, epochs=3, initial_epoch=2, verbose=0, callbacks=[
        SMICallback(log_dir=tmp_path, interval=0.05, source="estimate", resume=True)])
    summary = summary_of(tmp_path)
    assert [a["source"] for a in summary["attempts"]] == [LABEL["nvidia-smi"],
                                                           LABEL["estimate"]]
    assert summary["source"] == "measured:nvidia-smi + estimated:cpu-time"
    assert summary["energy_estimated"] is True


def test_an_estimating_power_source_beside_a_measurement_is_refused():
    """As the name "estimate" is in a list: an estimate is never added to a measurement."""
    with pytest.raises(ValueError, match="an estimating PowerSource .* alone"):
        SMICallback(log_dir=None, source=[CpuTimeEstimate(), "nvidia-smi"])
    SMICallback(log_dir=None, source=CpuTimeEstimate())  # alone, it may estimate


def test_a_total_with_an_estimated_attempt_is_never_called_measured(fake_smi, tmp_path,
                                                                   capsys):
    """An estimated attempt, then a measured resume: each epoch's own energy_j is measured,
    but the running total the budget and the forecast count is in part an estimate, and
    their lines say so."""
    model, (x, y) = tiny_model(), tiny_data()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))

    def smi(source):
        return SMICallback(log_dir=tmp_path, interval=0.05, source=source, resume=True)

    with pytest.raises(RuntimeError, match="crash"):
        model.fit(x, y, epochs=4, verbose=0, callbacks=[smi("estimate"), backup, CrashAt(2)])
    capsys.readouterr()
    history = model.fit(x, y, epochs=4, verbose=0, callbacks=[
        smi("nvidia-smi"), backup, EnergyForecast(after_epochs=1), EnergyBudget(1e-9)])
    assert history.history["energy_estimated"][0] == 0.0  # this epoch: measured
    assert history.history["energy_total_estimated"][0] == 1.0  # the total: in part not
    out = capsys.readouterr().out
    assert "in part estimated" in out and "J budget (GPU)" not in out


def test_a_resumed_fit_s_budget_counts_the_interrupted_attempt(fake_smi, tmp_path, capsys):
    model, (x, y) = tiny_model(), tiny_data()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))

    def callbacks(budget, *extra):
        return [SMICallback(log_dir=tmp_path, interval=0.05, resume=True), budget, backup,
                SlowSteps(0.02), *extra]

    with pytest.raises(RuntimeError, match="crash"):
        model.fit(x, y, epochs=6, verbose=0,
                  callbacks=callbacks(EnergyBudget(max_joules=1e12), CrashAt(2)))
    before = summary_of(tmp_path)["energy_j"]
    budget = EnergyBudget(max_joules=before + 1.0)  # one more joule
    history = model.fit(x, y, epochs=6, verbose=0, callbacks=callbacks(budget))
    assert budget.stopped_epoch == 2  # the resumed fit's first epoch spends it
    assert budget.spent_j >= before + history.history["energy_j"][0] - 1e-6
    assert budget.spent_j == pytest.approx(history.history["energy_total_j"][-1])
    assert summary_of(tmp_path)["energy_j"] >= budget.spent_j  # never more than was spent
    # (the new attempt's set-up may spend the joule before its first epoch: it stops then)
    assert f" J spent of a {before + 1.0:.1f} J budget (GPU)" in capsys.readouterr().out


def test_a_resumed_fit_whose_attempts_spent_the_budget_stops_after_one_batch(
        fake_smi, tmp_path, capsys):
    """The earlier attempts already spent more than the budget: the resumed fit stops after
    its first batch, not after a whole epoch more, and says why."""
    model, (x, y) = tiny_model(), tiny_data()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    batches = []
    count = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))
    smi = SMICallback(log_dir=tmp_path, interval=0.05, resume=True)
    with pytest.raises(RuntimeError, match="crash"):
        model.fit(x, y, epochs=6, batch_size=32, verbose=0,
                  callbacks=[smi, backup, SlowSteps(0.02), CrashAt(2)])
    before = summary_of(tmp_path)["energy_j"]
    budget = EnergyBudget(max_joules=before / 2)
    history = model.fit(x, y, epochs=6, batch_size=32, verbose=0, callbacks=[
        SMICallback(log_dir=tmp_path, interval=0.05, resume=True), budget, backup, count])
    assert batches == [0]  # of 8 in an epoch
    assert budget.stopped_epoch == 2 and len(history.history["loss"]) == 1
    assert history.history["budget_exceeded"] == [1.0]
    out = capsys.readouterr().out
    assert "J budget (GPU), before this fit's first epoch" in out
    assert out.count("EnergyBudget stopped training") == 1


def test_budget_and_forecast_count_what_summary_json_counts(fake_smi, tmp_path):
    """The energy between epochs (here another callback's work after the epoch closed) is
    in summary.json's energy_j: the budget's spent and the forecast's actual count it."""
    spy = ReadSummary(tmp_path)
    budget = EnergyBudget(max_joules=1e12)
    forecast = EnergyForecast(after_epochs=1, verbose=0)
    history = tiny_model().fit(*tiny_data(), epochs=3, verbose=0, callbacks=[
        SMICallback(log_dir=tmp_path, interval=0.05), spy, budget, forecast,
        SlowEpochEnd()])
    assert history.history["energy_spent_j"] == pytest.approx(spy.energy_j)
    assert history.history["energy_total_j"] == pytest.approx(spy.energy_j)
    assert budget.spent_j > sum(history.history["energy_j"])  # the time between epochs
    assert forecast.result["actual"]["energy_j"] == pytest.approx(spy.energy_j[-1])
    rows = read_csv(tmp_path / "logs.csv")
    assert [float(r["energy_total_j"]) for r in rows] == pytest.approx(spy.energy_j)


def test_the_budget_never_drops_what_it_counted_when_the_total_is_unknown():
    """A running total that turns NaN (an earlier attempt's energy unknown): the budget
    goes on from what it had, adding the epochs, and says so once."""
    budget = EnergyBudget(max_joules=1e6)
    budget.on_train_begin()
    budget.on_epoch_end(0, {"energy_j": 10.0, "energy_total_j": 50.0,
                            "energy_total_estimated": 0.0})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for epoch in (1, 2):
            budget.on_epoch_end(epoch, {"energy_j": 10.0, "energy_total_j": math.nan})
    assert budget.spent_j == 70.0
    assert [str(w.message) for w in caught] == [
        "greenscreen: EnergyBudget counts this fit's epochs from here: energy_total_j is "
        "NaN (the energy spent before is not known)"]
    budget.on_epoch_end(3, {"energy_j": 10.0})  # an energy_j not from SMICallback
    assert budget.spent_j == 80.0


def test_the_meter_itself_keeps_an_estimating_power_source_alone():
    # SMICallback refused it; EnergyMeter(source=[...]) added the estimate into the total
    from greenscreen import EnergyMeter
    from greenscreen.meters import CpuTimeEstimate

    with pytest.raises(ValueError, match="an estimating PowerSource .* alone"):
        EnergyMeter(source=[CpuTimeEstimate(), "nvidia-smi"])
    EnergyMeter.check_arguments(source=CpuTimeEstimate())  # alone: as before


def test_a_component_estimated_in_one_attempt_is_never_called_measured(fake_smi, tmp_path,
                                                                      monkeypatch):
    """Attempt 1 estimated the CPU, the resume measured it with RAPL: components.cpu
    summed both attempts' joules under RAPL's provenance alone, and `energy_cpu_j` (a
    measured component's share) was written (review)."""
    import powercap

    (tmp_path / "rapl").mkdir()
    with powercap.running(tmp_path / "rapl", powercap.zones(time.time()), "flat") as folder:
        monkeypatch.setenv("GREENSCREEN_POWERCAP_ROOT", str(folder))
        model, (x, y) = tiny_model(), tiny_data()
        run = tmp_path / "run"
        model.fit(x, y, epochs=2, verbose=0, callbacks=[
            SMICallback(log_dir=run, interval=0.05, source="estimate")])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(x, y, epochs=4, initial_epoch=2, verbose=0, callbacks=[
                SMICallback(log_dir=run, interval=0.05, source="rapl", resume=True)])
    summary = summary_of(run)
    cpu = summary["components"]["cpu"]
    assert provenance.estimated(cpu["source"]) and "measured:rapl" in cpu["source"], cpu
    assert "energy_cpu_j" not in summary and "energy_cpu_err_j" not in summary
    assert summary["energy_estimated"] is True


def test_the_budget_never_calls_a_component_estimated_in_one_attempt_measured(fake_smi,
                                                                            tmp_path, capsys):
    """Attempt 1 measured the GPU, the resume estimated the CPU (source="estimate"): the
    budget's line said "GPU + CPU measured", though the CPU was only ever estimated."""
    model, (x, y) = tiny_model(), tiny_data()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[SMICallback(log_dir=tmp_path,
                                                                interval=0.05)])
    budget = EnergyBudget(max_joules=1.0)
    model.fit(x, y, epochs=4, initial_epoch=2, verbose=0, callbacks=[
        SMICallback(log_dir=tmp_path, interval=0.05, source="estimate", resume=True), budget])
    said = capsys.readouterr().out
    assert "EnergyBudget stopped training" in said
    assert "CPU measured" not in said and "GPU measured" in said, said


def test_an_estimated_evaluate_is_never_added_into_measured_inference_figures(
        fake_smi, tmp_path):
    """A fit measured by nvidia-smi, then evaluates into its log_dir by callbacks of other
    sources: summary.json's `inference.evaluate` summed an estimate with a measurement
    and named no provenance (read-only review)."""
    x, y = tiny_data()
    model = tiny_model()
    model.fit(x, y, epochs=1, verbose=0,
              callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi")])
    model.evaluate(x, y, verbose=0, callbacks=[SMICallback(log_dir=tmp_path, source="estimate")])
    estimated = summary_of(tmp_path)["inference"]["evaluate"]
    assert estimated["source"] == LABEL["estimate"] and estimated["energy_j"] > 0
    model.evaluate(x, y, verbose=0,
                   callbacks=[SMICallback(log_dir=tmp_path, source="nvidia-smi")])
    mixed = summary_of(tmp_path)["inference"]["evaluate"]
    assert mixed["calls"] == 2 and mixed["energy_j"] is None
    assert mixed["energy_reason"] == ("measured and estimated calls: an estimate is never "
                                      "added to a measurement")
    assert mixed["source"] == f"{LABEL['estimate']} + {LABEL['nvidia-smi']}"
    summary = summary_of(tmp_path)
    assert summary["source"] == LABEL["nvidia-smi"] and not summary["energy_estimated"]
    assert summary["inference"]["validation"]["calls"] == 0
