"""A window's energy never drops when it covers more time, for every source.

A window closed between two readings used to be figured by carrying the last power
forward; a later window over more time, with the next reading in, interpolated
instead, and could come out lower: a fit's summary.json total ended below the
running total its last epoch logged (found by a report hunt, estimate sweeps). A window
closing now is figured from a reading at or after its end, read then where the source
can be read (the estimate, RAPL, NVML). nvidia-smi's stream is not waited for (52 ms an
epoch at 10 Hz): there a later window may differ by one interval's change of power.
"""

import csv
import json
import math
import os
import sys
import time
import types

import keras
import powercap
import pytest
from test_callbacks import tiny_data, tiny_model

from greenscreen import SMICallback
from greenscreen.meters import EnergyMeter
from greenscreen.meters.nvml import NvmlSource


def newest(meter):
    return meter.latest()["t"]


def next_reading(meter, after, timeout=10.0):
    """Waits for a reading newer than `after`; returns its time. Sleeps, burning nothing."""
    deadline = time.time() + timeout
    while newest(meter) <= after:
        assert time.time() < deadline, "no reading came"
        time.sleep(0.002)
    return newest(meter)


def burn_until_next_reading(meter):
    """Keeps one core busy until the meter has taken a reading."""
    t = newest(meter)
    deadline = time.time() + 10
    while newest(meter) == t:
        assert time.time() < deadline, "no reading came"


class BusyThenIdle(keras.callbacks.Callback):
    """Before SMICallback in the list: at the last epoch's end, burns a core for one whole
    reading interval, then idles for half an interval, so the epoch (and the total) closes
    between two readings after a busy interval."""

    def __init__(self, meter, interval):
        super().__init__()
        self.meter, self.interval = meter, interval

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.params["epochs"]:
            burn_until_next_reading(self.meter)
            burn_until_next_reading(self.meter)
            time.sleep(self.interval / 2)


class IdleAfter(keras.callbacks.Callback):
    """After SMICallback in the list: idles past the next reading before the fit ends."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.params["epochs"]:
            time.sleep(self.seconds)


@pytest.mark.backends("tensorflow", "jax", "torch")
def test_a_fits_final_total_is_never_below_what_its_epochs_logged(tmp_path):
    interval = 0.4
    x, y = tiny_data(128)
    model = tiny_model()
    meter = EnergyMeter(source="estimate", interval=interval)
    try:
        smi = SMICallback(log_dir=tmp_path, interval=interval, meter=meter)
        history = model.fit(x, y, epochs=2, batch_size=64, verbose=0, callbacks=[
            BusyThenIdle(meter, interval), smi, IdleAfter(1.5 * interval)])
    finally:
        meter.stop()
    with open(tmp_path / "logs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["source"] == "estimated:cpu-time" and len(rows) == 2
    total, last = summary["energy_j"], float(rows[-1]["energy_total_j"])
    assert last == pytest.approx(history.history["energy_total_j"][-1])
    assert total >= last, f"the total shrank from {last} J to {total} J at the fit's end"
    epochs = sum(float(r["energy_j"]) for r in rows)
    assert total >= epochs, f"{total} J in all, less than its epochs' {epochs} J"
    assert summary["attempts"][0]["energy_j"] == total


def closes_around_a_drop(meter, before, interval):
    """Two windows from the same start: one closed between two readings (`before()`
    waits for the reading after which power drops, and returns its time), the other just
    after the next reading. Returns their energies."""
    a = time.time()
    before()
    time.sleep(0.7 * interval)
    first = meter.window("first", t_start=a).close()
    next_reading(meter, first.t_end)
    second = meter.window("second", t_start=a).close()
    assert first.t_end < second.t_end
    return first, second


def test_rapl_window_covering_more_time_never_has_less_energy(tmp_path, monkeypatch):
    # Power 0..400 W, a sine of period 1.1 s: a reading on the second half of the falling
    # side is followed by an interval with far less power than the one before it. (Not a
    # whole number of intervals: the readings' phases move from one period to the next.)
    t0, interval = time.time(), 0.2
    spec = [{"id": "intel-rapl:0", "name": "package-0", "max_uj": 1e12,
             "power": {"base": 200.0, "amp": 200.0, "period": 1.1, "t0": t0}}]

    def falling():
        t = newest(meter)
        while not 0.5 <= (t - t0) % 1.1 <= 0.72:
            t = next_reading(meter, t)
        return t

    with powercap.running(tmp_path, spec) as folder:
        monkeypatch.setenv("GREENSCREEN_POWERCAP_ROOT", str(folder))
        with EnergyMeter(source="rapl", interval=interval, attribution="device") as meter:
            assert meter.wait_for_sample(10)
            first, second = closes_around_a_drop(meter, falling, interval)
    assert first.source == "measured:rapl"
    assert second.energy_j >= first.energy_j, (first.energy_j, second.energy_j)
    for w in (first, second):  # and each is right
        expected = powercap.truth(spec, ("intel-rapl:0",), w.t_start, w.t_end)
        slack = powercap.edge_slack(tmp_path, spec, ("intel-rapl:0",))
        assert abs(w.energy_j - expected) <= 0.02 * expected + slack + 1.0


class FakeNvml(types.ModuleType):
    """pynvml with one GPU whose power the test sets; its energy counter integrates it."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self):
        super().__init__("pynvml")
        self.watts, self.since, self.joules = 300.0, time.time(), 0.0

    def set_power(self, watts):
        now = time.time()
        self.joules += self.watts * (now - self.since)
        self.watts, self.since = watts, now

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        return (self.joules + self.watts * (time.time() - self.since)) * 1000.0

    def nvmlDeviceGetPowerUsage(self, handle):
        return self.watts * 1000.0

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetIndex(self, handle):
        return 0

    def nvmlDeviceGetUUID(self, handle):
        return "GPU-nvml-0"

    def nvmlDeviceGetName(self, handle):
        return "NVIDIA H200"

    def nvmlDeviceGetTemperature(self, handle, sensor):
        return 50

    def nvmlDeviceGetUtilizationRates(self, handle):
        return types.SimpleNamespace(gpu=90)

    def nvmlDeviceGetMemoryInfo(self, handle):
        return types.SimpleNamespace(used=2**30)

    # The GPU's compute processes: this one alone (a listing that failed would mark the
    # figures sharing-unknown, as it should).
    class NVMLError(Exception):
        pass

    def nvmlDeviceGetHandleByUUID(self, uuid):
        return 0

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [types.SimpleNamespace(pid=os.getpid())]

    def nvmlDeviceGetProcessUtilization(self, handle, since):
        raise self.NVMLError("no samples")


@pytest.mark.parametrize("counter", [True, False])
def test_nvml_window_covering_more_time_never_has_less_energy(monkeypatch, counter):
    nvml = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    interval = 0.2

    def drop():
        t = next_reading(meter, newest(meter))
        nvml.set_power(0.0)  # idle from the reading on
        return t

    with EnergyMeter(source=NvmlSource(interval=interval, counter=counter)) as meter:
        assert meter.wait_for_sample(10)
        next_reading(meter, newest(meter))
        first, second = closes_around_a_drop(meter, drop, interval)
    assert first.source == ("measured:nvml-counter" if counter else "measured:nvml-power")
    assert second.energy_j >= first.energy_j, (first.energy_j, second.energy_j)
    assert not math.isnan(second.energy_j)
