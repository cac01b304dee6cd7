"""SMICallback, EnergyBudget and EnergyForecast copied with `copy.deepcopy` after they
were used, as KerasTuner copies a search's callbacks for every trial: each copy measures
its own fits, and the original keeps what it recorded."""

import copy
import json

import pytest
from test_callbacks import tiny_data, tiny_model

from greenscreen import EnergyBudget, EnergyForecast, SMICallback
from greenscreen.meters import EnergyMeter

pytestmark = pytest.mark.backends("tensorflow", "jax", "torch")


def summary_of(folder) -> dict:
    return json.loads((folder / "summary.json").read_text())


def test_used_callbacks_copy_and_each_copy_measures_its_own_fit(fake_smi, tmp_path):
    x, y = tiny_data()
    callbacks = [SMICallback(log_dir=tmp_path / "first", interval=0.05),
                 EnergyBudget(max_joules=1e12), EnergyForecast(after_epochs=1, verbose=0)]
    tiny_model().fit(x, y, epochs=2, verbose=0, callbacks=callbacks)
    recorded = summary_of(tmp_path / "first")
    copies = copy.deepcopy(callbacks)
    smi = copies[0]
    assert smi.summary == callbacks[0].summary and smi.summary is not callbacks[0].summary
    assert smi.model is None
    smi.log_dir = tmp_path / "second"
    history = tiny_model().fit(x, y, epochs=3, verbose=0, callbacks=copies)
    assert summary_of(tmp_path / "second")["epochs"] == 3
    assert summary_of(tmp_path / "first") == recorded  # the original's file untouched
    assert callbacks[0].summary["epochs"] == 2
    assert copies[1].spent_j == pytest.approx(history.history["energy_total_j"][-1])
    assert copies[2].result["actual"]["epochs"] == 3


def test_a_copy_shares_the_meter_it_was_given(fake_smi, tmp_path):
    meter = EnergyMeter("nvidia-smi", interval=0.05).start()
    try:
        smi = SMICallback(log_dir=None, meter=meter)
        tiny_model().fit(*tiny_data(), epochs=1, verbose=0, callbacks=[smi])
        twin = copy.deepcopy(smi)
        assert twin.meter is meter
        history = tiny_model().fit(*tiny_data(), epochs=1, verbose=0, callbacks=[twin])
        assert history.history["energy_j"][0] > 0 and meter.running
    finally:
        meter.stop()
