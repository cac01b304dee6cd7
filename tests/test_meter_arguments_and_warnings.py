"""The meters' float arguments refuse infinity at construction, and a fault that lasts
(power always [N/A]) warns once per fit, not once per epoch."""

import csv
import math
import time
import warnings

import pytest
from conftest import UUID0
from test_callbacks import SlowSteps, tiny_data, tiny_model

from greenscreen import SMICallback
from greenscreen.meters import CpuTimeEstimate, EnergyMeter
from greenscreen.meters.estimate import watts_per_core
from greenscreen.meters.nvidia_smi import NvidiaSmiSource

pytestmark = pytest.mark.backends("tensorflow", "jax", "torch")

NA_POWER = ["power.draw", "power.draw.instant", "power.draw.average"]


def tiny_fit(callbacks, epochs):
    """test_callbacks' tiny model, each step slowed so the fake prints several [N/A] lines
    every epoch."""
    x, y = tiny_data(128)
    return tiny_model().fit(x, y, epochs=epochs, batch_size=16, verbose=0,
                            callbacks=[*callbacks, SlowSteps(0.02)])


# -- a fault that lasts warns once ---------------------------------------------------
def test_na_power_reason_is_the_same_in_every_window(fake_smi):
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200"}], na=NA_POWER)
    with EnergyMeter(source="nvidia-smi", interval=0.05) as meter:
        deadline = time.time() + 30  # the first [N/A] line, however slowly the fake starts
        while not meter.devices and time.time() < deadline:
            time.sleep(0.05)
        assert not meter.wait_for_sample(timeout=0.1)  # never true: no power ever comes
        reasons = []
        for _ in range(3):
            with meter.window() as w:
                time.sleep(0.3)  # several more [N/A] lines
            assert math.isnan(w.energy_j)
            reasons.append(w.reason)
    assert "[N/A]" in reasons[0]
    assert reasons == [reasons[0]] * 3


def test_na_power_warns_once_in_a_fit_and_records_every_epoch(fake_smi, tmp_path):
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200"}], na=NA_POWER)
    callback = SMICallback(log_dir=tmp_path, interval=0.05, source="nvidia-smi",
                           first_sample_timeout=0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = tiny_fit([callback], epochs=4)
    ours = [str(w.message) for w in caught if "greenscreen" in str(w.message)]
    assert len([m for m in ours if "no power sample" in m]) == 1, ours
    assert all(math.isnan(e) for e in history.history["energy_j"])
    with open(tmp_path / "logs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    assert all("no power sample" in r["reason"] and "[N/A]" in r["reason"] for r in rows)


# -- infinity is refused where it is given --------------------------------------------
@pytest.mark.parametrize("make, name", [
    (lambda: EnergyMeter(interval=math.inf), "interval"),
    (lambda: EnergyMeter.check_arguments(interval=math.inf), "interval"),
    (lambda: SMICallback(log_dir=None, interval=math.inf), "interval"),
    (lambda: SMICallback(log_dir=None, interval=float("inf"), source="nvidia-smi"),
     "interval"),
    (lambda: NvidiaSmiSource(interval=math.inf), "interval"),
    (lambda: NvidiaSmiSource(stall_timeout=math.inf), "stall_timeout"),
    (lambda: NvidiaSmiSource(start_timeout=math.inf), "start_timeout"),
    (lambda: CpuTimeEstimate(interval=math.inf), "interval"),
    (lambda: watts_per_core(tdp_w=math.inf), "tdp_w"),
    (lambda: CpuTimeEstimate(tdp_w=math.inf), "tdp_w"),
    (lambda: CpuTimeEstimate(watts_per_core=math.inf), "watts_per_core"),
])
def test_infinite_arguments_raise_at_construction(make, name):
    low = r"\[0.001" if name == "interval" else r"\(0"
    with pytest.raises(ValueError, match=rf"^{name}=inf is not valid; allowed: a number in "
                                         rf"{low}, inf\)"):
        make()


@pytest.mark.parametrize("kwargs, allowed", [
    ({"pue": math.inf}, r"pue=inf is not valid; allowed: a number in \[1.0, inf\)"),
    ({"carbon_intensity": math.inf},
     r"carbon_intensity=inf is not valid; allowed: a number in \[0, inf\)"),
])
def test_an_infinite_pue_or_carbon_intensity_raises_at_construction(kwargs, allowed):
    with pytest.raises(ValueError, match=rf"^{allowed}"):  # every CO2 figure was inf
        SMICallback(log_dir=None, **kwargs)
