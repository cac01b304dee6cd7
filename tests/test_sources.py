"""Source selection, availability reasons, RAPL (on a real file tree) and the estimate."""

import math
import os
import time

import pytest

from greenscreen.meters import CpuTimeEstimate, EnergyMeter, RaplSource, available
from greenscreen.meters.base import Sample
from greenscreen.meters.series import DeviceSeries


def test_available_lists_every_source_with_a_reason(fake_smi):
    rows = {r["source"]: r for r in available()}
    assert set(rows) == {"nvidia-smi", "nvml", "rapl", "estimate"}
    assert rows["nvidia-smi"]["available"] and rows["estimate"]["available"]
    for row in rows.values():
        assert row["available"] == (row["reason"] is None)
    assert rows["estimate"]["provenance"] == "estimated:cpu-time"


def test_auto_prefers_nvidia_smi_over_estimate(fake_smi):
    with EnergyMeter(interval=0.05) as meter:
        pass
    if meter.skipped.get("nvml") is None:
        pytest.skip("this machine has a real NVML counter")
    assert meter.source == "measured:nvidia-smi"


def test_auto_falls_back_to_a_labelled_estimate(monkeypatch, tmp_path):
    monkeypatch.delenv("GREENSCREEN_NVIDIA_SMI", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with EnergyMeter(interval=0.05) as meter:
        with meter.window() as w:
            end = time.process_time() + 0.3
            while time.process_time() < end:
                pass
    if not meter.source.startswith("estimated"):
        pytest.skip(f"this machine has a real source: {meter.source}")
    assert "nvidia-smi not found" in meter.skipped["nvidia-smi"]
    assert w.source == "estimated:cpu-time"
    assert w.energy_j > 0


def test_estimate_is_cpu_seconds_times_watts_per_core():
    source = CpuTimeEstimate(interval=0.05, watts_per_core=10.0)
    source.open()
    start, first = time.process_time(), cpu_seconds()
    before = source.read()[0]
    while time.process_time() < start + 0.3:
        pass
    after = source.read()[0]
    # What the estimate counts: this process's CPU time and that of the children it reaped
    # meanwhile. Under pytest-xdist another test's thread in this process may reap a child
    # in between (a fake nvidia-smi), so its CPU is counted too, not only this loop's.
    spent = cpu_seconds() - first  # os.times() counts in clock ticks (10 ms here)
    joules = (after.energy_mj - before.energy_mj) / 1000
    assert time.process_time() - start >= 0.3 and spent >= 0.28
    assert joules == pytest.approx(10.0 * spent, rel=0.25)


def test_a_window_before_the_second_reading_is_charged_its_cpu_time():
    """A counter without power readings is read when a window closes before its second
    timed reading: one reading has no power to carry forward, and a fast first epoch (a
    few milliseconds on a small model) was charged 0 J. The estimate's clock counts
    nanoseconds, not 10 ms ticks."""
    def spent() -> float:  # what the estimate counts: every thread, and reaped children
        t = os.times()
        return time.process_time() + t.children_user + t.children_system

    before = spent()
    with EnergyMeter(source=CpuTimeEstimate(interval=30.0, watts_per_core=100.0)) as meter:
        assert meter.wait_for_sample(5)
        with meter.window() as w:
            start = time.process_time()
            while time.process_time() < start + 0.05:
                pass
        after = spent()
    assert w.source == "estimated:cpu-time" and w.reason is None
    # Its start is interpolated between the meter's first reading and the one at its end,
    # so it is a share of what the process spent between them: never more. (Under
    # pytest-xdist, another test's thread may reap a child meanwhile: counted too.)
    assert 0 < w.energy_j <= 100.0 * (after - before)


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def make_rapl(root, energy_uj, max_uj=1000_000):
    zone = root / "intel-rapl:0"
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    sub = root / "intel-rapl:0:0"  # a core sub-zone: must not be double counted
    sub.mkdir(exist_ok=True)
    (sub / "energy_uj").write_text("5\n")
    return zone


def test_rapl_unwraps_the_counter(tmp_path):
    zone = make_rapl(tmp_path, 900_000)
    source = RaplSource(root=str(tmp_path))
    assert source.unavailable_reason() is None
    source.open()
    readings = [source.read()]
    (zone / "energy_uj").write_text("950000\n")
    readings.append(source.read())
    (zone / "energy_uj").write_text("50000\n")  # wrapped at 1 J
    readings.append(source.read())
    energies = [r[0].energy_mj for r in readings]
    assert energies == [0.0, 50.0, 150.0]
    assert len(readings[0]) == 1 and readings[0][0].name == "package-0"


def test_rapl_absent_is_unavailable_with_reason(tmp_path):
    reason = RaplSource(root=str(tmp_path / "nope")).unavailable_reason()
    assert "no RAPL powercap tree" in reason
    assert "no intel-rapl package zone" in RaplSource(root=str(tmp_path)).unavailable_reason()


def test_integration_interpolates_window_edges():
    series = DeviceSeries(Sample(t=0, index=0, uuid="u", name="n"))
    for t in range(11):
        series.append(Sample(t=float(t), index=0, uuid="u", name="n", power_w=float(t)))
    w = series.window(2.5, 7.5, hold=0.5)
    assert w.energy_j == pytest.approx((7.5**2 - 2.5**2) / 2)
    assert w.power_peak_w == pytest.approx(7.5)
    assert w.coverage == 1.0


def test_integration_with_a_counter_uses_counter_differences():
    series = DeviceSeries(Sample(t=0, index=0, uuid="u", name="n"))
    for t in range(5):  # 100 W as a counter in mJ, with a bogus power reading
        series.append(Sample(t=float(t), index=0, uuid="u", name="n",
                             energy_mj=5e6 + 100_000.0 * t, power_w=1.0))
    assert series.window(0.5, 3.5, hold=0.5).energy_j == pytest.approx(300.0)


def test_coverage_reports_gaps():
    series = DeviceSeries(Sample(t=0, index=0, uuid="u", name="n"))
    for t in [0.0, 0.1, 0.2, 5.0, 5.1]:
        series.append(Sample(t=t, index=0, uuid="u", name="n", power_w=100.0))
    w = series.window(0.0, 5.0, hold=0.25)
    assert w.coverage == pytest.approx(0.7 / 5.0)
    assert not math.isnan(w.energy_j)
