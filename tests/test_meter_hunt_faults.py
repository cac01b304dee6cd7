"""Faults a hunt through the meters found: a counter's time before its first reading, a
start that fails half-way, RAPL zones that fail alone or go back without wrapping, source
instances probed and counted like names, and arguments refused where they are given."""

import math
import threading
import time

import powercap
import pytest
from conftest import UUID0

from greenscreen.meters import EnergyMeter, RaplSource, available
from greenscreen.meters.accuracy import RAPL
from greenscreen.meters.base import PowerSource, Sample
from greenscreen.meters.nvidia_smi import NvidiaSmiSource
from greenscreen.meters.nvml import NvmlSource
from greenscreen.meters.series import DeviceSeries

RANGE_UJ = 262_143_328_850  # a real package's max_energy_range_uj (~262 kJ)


def counter_series(watts: float, times: list[float], **fields) -> DeviceSeries:
    """A RAPL-like series: energy counter readings (no power field) at `times`."""
    samples = [Sample(t=t, index=0, uuid="rapl:0", name="package-0", component="cpu",
                      energy_mj=watts * t * 1000, **fields) for t in times]
    series = DeviceSeries(samples[0])
    series.facts = RAPL
    for sample in samples:
        series.append(sample)
    return series


def test_a_counter_window_opened_before_the_first_reading_counts_that_time():
    series = counter_series(50.0, [1.0 + k / 10 for k in range(11)])
    w = series.window(0.95, 2.0, hold=0.5)  # 0.05 s before the first reading
    assert w.energy_j == pytest.approx(50.0 * 1.05)  # was 50.0: 0 W before it
    assert w.power_peak_w == pytest.approx(50.0)


def test_a_counter_read_that_failed_costs_nothing():
    """NVML's counter failed for three reads while its instant power read 400 W of a 100 W
    GPU: that power's trapezoid went onto the counter curve, the next reading fell below it
    and was taken as a driver reload (rebased): 185 J of 150 (read-only review)."""
    series = counter_series(100.0, [1.0, 1.1, 1.2])
    for t in (1.3, 1.4, 1.5):  # the counter's reads failed; power alone came
        series.append(Sample(t=t, index=0, uuid="rapl:0", name="package-0", component="cpu",
                             power_w=400.0))
    for t in (1.55, 1.6, 2.5):
        series.append(Sample(t=t, index=0, uuid="rapl:0", name="package-0", component="cpu",
                             energy_mj=100.0 * t * 1000))
    assert series.window(1.0, 2.5, hold=0.5).energy_j == pytest.approx(150.0)
    assert series.rebased == []


def package_tree(tmp_path, max_uj=RANGE_UJ, dram=False):
    """A static powercap tree (counters written by the test) with package 0 (and DRAM)."""
    spec = [{"id": "intel-rapl:0", "name": "package-0", "max_uj": max_uj,
             "power": {"base": 0.0}}]
    if dram:
        spec.append({"id": "intel-rapl:0:2", "name": "dram", "max_uj": 9e6,
                     "power": {"base": 0.0}})
    return powercap.build(tmp_path, spec)


def zone_file(folder, zone_id, name="energy_uj"):
    return powercap.zone_dir(folder, zone_id) / name


class BrokenAtStart(PowerSource):
    """A source that can run when asked but fails as it starts (a driver gone between)."""

    name = "broken"
    provenance = "measured:broken"

    def unavailable_reason(self):
        return None

    def start(self, sink):
        raise RuntimeError("the driver went away")

    def stop(self):
        pass


def test_a_start_that_fails_half_way_stops_the_sources_already_started(tmp_path):
    def rapl_threads() -> set:
        return {t for t in threading.enumerate() if t.name == "greenscreen-rapl"}

    before = rapl_threads()  # another test's, in this process: not this meter's
    rapl = RaplSource(interval=0.05, root=str(package_tree(tmp_path)))
    meter = EnergyMeter(source=[rapl, BrokenAtStart()], attribution="device")
    with pytest.raises(RuntimeError, match="driver went away"):
        meter.start()
    assert not meter.running
    assert not rapl_threads() - before


def test_a_rapl_range_that_is_not_a_number_makes_its_zone_unreadable(tmp_path, fake_smi,
                                                                      monkeypatch):
    folder = package_tree(tmp_path / "tree")
    zone_file(folder, "intel-rapl:0", "max_energy_range_uj").write_text("-- unknown --\n")
    reason = RaplSource(root=str(folder)).unavailable_reason()
    assert "max_energy_range_uj is not a number: '-- unknown --'" in reason
    monkeypatch.setenv("GREENSCREEN_POWERCAP_ROOT", str(folder))
    rows = {row["source"]: row for row in available()}  # raised ValueError
    assert not rows["rapl"]["available"] and rows["nvidia-smi"]["available"]
    meter = EnergyMeter(attribution="device").start()  # "auto": raised ValueError
    meter.stop()
    assert "not a number" in meter.unmeasured["cpu"] and "gpu" in meter.components


def test_one_unreadable_rapl_zone_leaves_the_others_their_readings(tmp_path):
    folder = package_tree(tmp_path, dram=True)
    source = RaplSource(root=str(folder))
    source.open()
    assert sorted(s.component for s in source.read()) == ["cpu", "dram"]
    dram = zone_file(folder, "intel-rapl:0:2")
    dram.unlink()
    dram.mkdir()  # unreadable now, whoever reads (tests run as root)
    assert [s.component for s in source.read()] == ["cpu"]  # was: the read failed whole
    assert source.health.read_errors == 1
    assert "intel-rapl:0:2 (dram)" in source.health.reason


def test_a_rapl_counter_that_goes_back_far_from_its_range_is_a_reset_not_a_wrap(tmp_path):
    folder = package_tree(tmp_path)
    counter = zone_file(folder, "intel-rapl:0")
    source = RaplSource(root=str(folder))
    source.open()
    readings = []
    for uj in (100_000_000_000, 100_004_000_000, 2_000_000, 6_000_000):
        counter.write_text(f"{uj}\n")
        readings.append(source.read()[0])
    # was 4 J, then + the whole range: 262 kJ counted for a counter that was reset
    assert [r.energy_mj for r in readings] == [0.0, 4000.0, 4000.0, 8000.0]
    assert [r.counter_reset for r in readings] == [False, False, True, False]
    assert source.health.counts["counter_resets"] == 1
    assert "went back" in source.health.reason


def test_a_rapl_wrap_is_still_unwrapped_and_one_of_unknown_range_is_a_recorded_reset(
        tmp_path):
    for known, expected, reset in ((True, 6.0, False), (False, 0.0, True)):
        folder = package_tree(tmp_path / str(known), max_uj=1_000_000)
        counter = zone_file(folder, "intel-rapl:0")
        if not known:
            zone_file(folder, "intel-rapl:0", "max_energy_range_uj").unlink()
        counter.write_text("999000\n")
        source = RaplSource(root=str(folder))
        source.open()
        source.read()
        counter.write_text("5000\n")  # 6 mJ later, past a 1 J range
        sample = source.read()[0]
        assert (sample.energy_mj, sample.counter_reset) == (expected, reset)
        assert ("went back" in (source.health.reason or "")) == reset  # was silent


def test_a_reset_counter_widens_the_interval_of_the_window_it_falls_in():
    t = [10.0 + k / 10 for k in range(6)]
    samples = [Sample(t=ti, index=0, uuid="rapl:0", name="package-0", component="cpu",
                      energy_mj=mj, counter_reset=k == 3)
               for k, (ti, mj) in enumerate(zip(t, [0, 4000, 8000, 8000, 12000, 16000]))]
    series = DeviceSeries(samples[0])
    series.facts = RAPL
    for sample in samples:
        series.append(sample)
    w = series.window(10.0, 10.5, hold=0.5)  # 40 W throughout: 20 J, 4 J not counted
    assert w.energy_j == pytest.approx(16.0)
    assert w.energy_j + w.energy_err_j >= 20.0 - 1e-9


def test_a_source_instance_in_a_list_is_asked_whether_it_can_run(fake_smi, tmp_path,
                                                                  monkeypatch):
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200"}], garbage=True)
    monkeypatch.setenv("GREENSCREEN_POWERCAP_ROOT", str(package_tree(tmp_path / "tree")))
    meter = EnergyMeter(source=[NvidiaSmiSource(0.05), "rapl"], attribution="device")
    meter.start()
    meter.stop()
    assert list(meter.components) == ["cpu"]  # was: gpu "measured", every window NaN
    assert "does not parse" in meter.unmeasured["gpu"]


@pytest.mark.parametrize("make", [
    lambda: ["nvml", NvidiaSmiSource()],
    lambda: [NvmlSource(), NvidiaSmiSource()],
    lambda: ["rapl", RaplSource()],
    lambda: [RaplSource(), RaplSource()],
    lambda: 2 * [BrokenAtStart()],
])
def test_instances_count_like_names_in_a_source_list(make):
    with pytest.raises(ValueError, match=r"source=.* is not valid; allowed: a list naming "
                                         r"each source once and at most one GPU source"):
        EnergyMeter.check_arguments(source=make())


@pytest.mark.parametrize("stall", [0.5, 1.0])
def test_a_stall_timeout_not_longer_than_the_interval_is_refused(stall):
    with pytest.raises(ValueError, match=rf"^stall_timeout={stall} is not valid; allowed: "
                                         r"a number in \(1\.0, inf\) or None\.$"):
        NvidiaSmiSource(interval=1.0, stall_timeout=stall)
    assert NvidiaSmiSource(interval=1.0, stall_timeout=1.5).stall_timeout == 1.5


@pytest.mark.parametrize("t_start", [math.nan, math.inf, "yesterday"])
def test_a_window_start_that_is_not_a_time_is_refused(t_start, fake_smi):
    meter = EnergyMeter(source="nvidia-smi")  # not started: the argument is checked first
    with pytest.raises(ValueError, match=r"^t_start=.* is not valid; allowed: a number"):
        meter.window(t_start=t_start)


def test_a_window_cut_to_end_before_its_start_is_refused_and_stays_open(fake_smi):
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": 100.0}}])
    with EnergyMeter(source="nvidia-smi", interval=0.05, attribution="device") as meter:
        assert meter.wait_for_sample(10)
        t0 = time.time()
        w = meter.window(t_start=t0)
        with pytest.raises(ValueError, match=r"^t_end=.* is not valid; allowed: a number "
                                             r"in \[.*, inf\)"):
            w.close(t_end=t0 - 1.0)  # was: -100 J for a window running backwards
        assert not w.closed
        w.close(t_end=t0)
    assert w.duration_s == 0.0 and w.energy_j == 0.0


def test_one_power_sample_claims_no_interval_as_one_counter_reading_does():
    series = DeviceSeries(Sample(t=10.2, index=0, uuid="g", name="g", power_w=300.0))
    series.append(Sample(t=10.2, index=0, uuid="g", name="g", power_w=300.0))
    w = series.window(10.0, 10.4, hold=0.5)  # 0.4 s held at the one reading's power
    assert w.energy_j == pytest.approx(120.0)
    assert math.isnan(w.energy_err_j)  # was 0.0: exact over time it never saw


class CountsItsProbes(BrokenAtStart):
    """Fails as it starts, and counts how often the meter asked whether it can run."""

    def __init__(self):
        super().__init__()
        self.asked = 0

    def unavailable_reason(self):
        self.asked += 1
        return None


def test_a_meter_whose_start_failed_plans_afresh_at_its_next_start():
    """A meter keeps the sources its first start chose, unprobed at a restart; kept from a
    start that failed, a GPU source that could not start was never replaced by what "auto"
    would find next (review of the change)."""
    source = CountsItsProbes()
    meter = EnergyMeter(source=source)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="driver went away"):
            meter.start()
    assert source.asked == 2 and not meter.running
