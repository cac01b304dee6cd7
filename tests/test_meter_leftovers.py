"""Leftovers of a review of the meters: a lone PowerSource instance is asked whether it can
run as one in a list is, the estimate's wattage arguments are checked where they are
given, a RAPL counter reset is a fault like the others, and energy carried on past a
stream that died has an interval as wide as what is not known."""

import math
import os
import time
import warnings

import numpy as np
import powercap
import pytest
from conftest import UUID0, processes_running
from test_callbacks import tiny_data, tiny_model

from greenscreen import SMICallback
from greenscreen.meters import CpuTimeEstimate, EnergyMeter, NvidiaSmiSource, RaplSource
from greenscreen.meters.base import Sample, SourceUnavailable
from greenscreen.meters.series import DeviceSeries, ReadingFacts, counter_error, power_error

RANGE_UJ = 262_143_328_850  # a real package's max_energy_range_uj (~262 kJ)


def package_tree(tmp_path):
    """A static powercap tree (the test writes its counter) with package 0 and no DRAM."""
    return powercap.build(tmp_path, [{"id": "intel-rapl:0", "name": "package-0",
                                      "max_uj": RANGE_UJ, "power": {"base": 0.0}}])


# -- 1. a lone instance is probed as one in a list is ---------------------------------
@pytest.mark.parametrize("fault, reason", [({"garbage": True}, "does not parse"),
                                           ({"hang": True}, r"\(hung\?\)")])
def test_a_lone_source_instance_that_cannot_run_raises_as_its_name_does(fake_smi, fault,
                                                                        reason):
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200"}], **fault)
    meter = EnergyMeter(source=NvidiaSmiSource(0.05), attribution="device")
    try:  # was: started, its stream read nothing (or junk), every window NaN
        with pytest.raises(SourceUnavailable, match=rf"^source=NvidiaSmiSource instance is "
                                                    rf"unavailable: .*{reason}"):
            meter.start()
    finally:
        meter.stop()
    assert not meter.running
    assert processes_running(fake_smi.exe) == []  # the probe's hung nvidia-smi was killed


def test_a_fit_with_a_lone_source_instance_that_cannot_run_warns_and_goes_on(fake_smi,
                                                                           tmp_path):
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200"}], garbage=True)
    callback = SMICallback(log_dir=tmp_path, source=NvidiaSmiSource(0.05))
    x, y = tiny_data(64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = tiny_model().fit(x, y, epochs=2, batch_size=16, verbose=0,
                                   callbacks=[callback])
    ours = [str(w.message) for w in caught if "greenscreen" in str(w.message)]
    assert [m for m in ours if "meter could not start" in m and "does not parse" in m]
    assert len(history.history["loss"]) == 2
    assert all(math.isnan(e) for e in history.history["energy_j"])


def test_a_lone_rapl_instance_says_which_component_it_cannot_read(tmp_path):
    meter = EnergyMeter(source=RaplSource(0.05, root=str(package_tree(tmp_path))),
                        attribution="device")
    with meter:
        assert list(meter.components) == ["cpu"]
    assert "no dram zone" in meter.unmeasured["dram"]  # was {}: as "rapl" and ["rapl"] say


# -- 3. the estimate's wattage is an argument -----------------------------------------
@pytest.mark.parametrize("name", ["tdp_w", "watts_per_core"])
@pytest.mark.parametrize("value", [-5, 0, math.nan, math.inf, "85", True])
def test_a_bad_estimate_wattage_raises_where_it_is_given(name, value):
    with pytest.raises(ValueError, match=rf"^{name}=.* is not valid; allowed: a number in "
                                         r"\(0, inf\)"):
        CpuTimeEstimate(**{name: value})  # was: built, and failed at start()


def test_a_valid_wattage_argument_wins_over_an_invalid_cpu_tdp_variable(monkeypatch):
    """The environment is no argument: an invalid one makes the estimate unavailable
    (test_callback_arguments), unless an argument gives the wattage."""
    monkeypatch.setenv("GREENSCREEN_CPU_TDP_W", "inf")
    assert CpuTimeEstimate().unavailable_reason().startswith(
        "GREENSCREEN_CPU_TDP_W='inf' is not valid")
    assert CpuTimeEstimate(tdp_w=65).unavailable_reason() is None
    assert CpuTimeEstimate(watts_per_core=5).unavailable_reason() is None


# -- 4. a RAPL counter reset is a fault -----------------------------------------------
def test_a_rapl_counter_reset_is_counted_and_reported_as_a_fault(tmp_path):
    folder = package_tree(tmp_path)
    counter = powercap.zone_dir(folder, "intel-rapl:0") / "energy_uj"
    counter.write_text("100000000000\n")
    source = RaplSource(interval=30.0, root=str(folder))  # read at start, then on demand
    with EnergyMeter(source=source, attribution="device") as meter:
        assert meter.wait_for_sample(5)
        with meter.window():
            time.sleep(0.05)
        assert meter.health["faults"] == 0 and meter.health["counter_resets"] == 0
        counter.write_text("2000000\n")  # back, far from a wrap: a reset
        with meter.window():  # closing it reads the counter
            time.sleep(0.05)
        health = meter.health
    assert source.health.counts["counter_resets"] == 1
    assert health["counter_resets"] == 1 and health["faults"] == 1  # was: faults 0
    assert "went back" in health["reason"]
    assert source.health.as_dict()["faults"] == 1


def test_sources_with_and_without_a_reset_count_add_up():
    smi, rapl = NvidiaSmiSource(0.05), RaplSource(0.05)
    smi.health.restarts = 2
    rapl.health.counts["counter_resets"] = 1
    assert smi.health.as_dict()["counter_resets"] == 0  # every source lists it
    assert {k: v for k, v in rapl.health.as_dict().items() if k != "reason"} == {
        "restarts": 0, "stalls": 0, "garbage_lines": 0, "read_errors": 0,
        "counter_resets": 1, "faults": 1}


# -- 5. energy carried past a dead stream has an honest interval -------------------------
def power_series(watts, times):
    series = DeviceSeries(Sample(times[0], 0, UUID0, "gpu"))
    series.facts = ReadingFacts(power_resolution_w=0.01, time_resolution_s=0.001)
    for t in times:
        series.append(Sample(t, 0, UUID0, "gpu", power_w=watts))
    return series


def test_power_carried_past_the_last_reading_of_a_dead_stream_is_bounded_by_its_energy():
    series = power_series(300.0, [k / 10 for k in range(21)])  # 300 W until 2 s, then none
    w = series.window(1.0, 5.0, hold=0.5)
    assert w.energy_j == pytest.approx(1200.0)  # 3 s of it carried on at 300 W
    assert w.energy_err_j >= 3.0 * 300.0  # was ~0.001 J: the power held as if known
    before = series.window(-3.0, 1.0, hold=0.5)  # 3 s before the first reading, alike
    assert before.energy_err_j >= 3.0 * 300.0


def test_a_window_closing_before_a_streams_next_line_keeps_its_narrow_interval():
    t = np.arange(0.0, 2.01, 0.1)
    p = np.full(len(t), 300.0)
    facts = ReadingFacts(power_resolution_w=0.01)
    # 0.08 s past the last line: the next was not due yet, as at the end of every window
    assert power_error(t, p, 1.0, 2.08, facts) == pytest.approx(
        power_error(t, p, 1.0, 2.0, facts), abs=1e-3)


def test_a_counter_read_no_more_is_bounded_by_the_energy_carried_on():
    t = np.arange(0.0, 5.01, 0.1)
    e = 10.0 * t  # 10 W
    assert counter_error(t, e, 1.0, 4.0) < 0.01
    assert counter_error(t, e, 4.0, 8.0) >= 3.0 * 10.0  # was ~0: 3 s with no reading


def stream_times(meter) -> list[float]:
    """The times of GPU 0's readings the meter holds so far."""
    with meter._lock:
        return list(meter._series[("gpu", 0)].t)


def test_a_stream_that_dies_mid_window_gets_an_interval_as_wide_as_the_energy_carried(
        fake_smi):
    lines = 10  # the fake prints this many, then hangs: silent for good
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": 120.0}}],
                       hang_after=lines)
    source = NvidiaSmiSource(interval=0.05, stall_timeout=60)  # no restart in the test
    with EnergyMeter(source=source, attribution="device") as meter:
        assert meter.wait_for_sample(10)
        # Until every line it will print has been read (not a guess at how long a silence
        # means death: a busy machine can delay a live stream's line by more than that).
        deadline = time.monotonic() + 30
        while len(stream_times(meter)) < lines and time.monotonic() < deadline:
            time.sleep(0.05)
        times = stream_times(meter)
        assert len(times) == lines
        seen = times[-1]
        # Carried on well past a gap (2.5 x the stream's spacing) however slowly the lines
        # came: 0.4 s at 20 Hz, longer where a busy machine spaced them out.
        carried_s = max(0.4, 3 * float(np.max(np.diff(times))))
        w = meter.window("w", t_start=seen - 0.2).close(t_end=seen + carried_s)
    carried = carried_s * 120.0
    assert w.energy_j == pytest.approx((0.2 + carried_s) * 120.0, rel=0.01)  # held at 120 W
    assert w.energy_err_j >= carried  # was ~0.01 J
    assert w.coverage > 0


def test_a_restart_after_the_named_nvidia_smi_vanished_does_not_run_path_s(
        fake_smi, tmp_path, monkeypatch):
    """GREENSCREEN_NVIDIA_SMI's file is deleted mid-run and its stream dies: each restart
    fails and says why; none runs the nvidia-smi on PATH, another tool."""
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": 120.0}}],
                       die_after=5)
    other = tmp_path / "path-bin" / "nvidia-smi"
    other.parent.mkdir()
    ran = tmp_path / "path-nvidia-smi-ran"
    other.write_text(f"#!/bin/sh\ntouch {ran}\nsleep 30\n")
    other.chmod(0o755)
    monkeypatch.setenv("PATH", f"{other.parent}:{os.environ['PATH']}")
    with EnergyMeter(source="nvidia-smi", interval=0.05) as meter:
        assert meter.wait_for_sample(10)
        fake_smi.exe.unlink()  # the running stream goes on until it dies (5 lines)
        deadline = time.monotonic() + 60
        while meter.health["restarts"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        health = dict(meter.health)
    assert health["restarts"] >= 2 and not ran.exists()
    assert "nvidia-smi could not be started" in health["reason"]
