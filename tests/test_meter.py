"""EnergyMeter against the fake nvidia-smi: accuracy, devices, faults, lifecycle."""

import math
import os
import subprocess
import sys
import threading
import time
from bisect import bisect_left

import pytest
from conftest import UUID0, UUID1, processes_running, trace_energy, zombie_children

from greenscreen.meters import (
    CpuTimeEstimate,
    EnergyMeter,
    NvidiaSmiSource,
    NvmlSource,
    RaplSource,
    SourceUnavailable,
)


def varying_gpus(t0):
    return [
        {"uuid": UUID0, "name": "NVIDIA H200",
         "power": {"base": 200.0, "amp": 80.0, "period": 1.3, "t0": t0}},
        {"uuid": UUID1, "name": "NVIDIA H200",
         "power": {"base": 100.0, "slope": 40.0, "t0": t0}},
    ]


def wait_for_samples(meter, n_devices=1, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(meter.devices) >= n_devices and not math.isnan(meter.latest()["power_w"]):
            return
        time.sleep(0.05)
    raise AssertionError(f"no samples within {timeout} s: {meter.health}")


def held_tail_j(meter, w, specs) -> float:
    """What a window closed now may differ from the trace's integral by where the stream's
    newest line at its close was older than its end: that line's power is held to the end
    (`read_up_to` does not wait for a stream), off by at most the trace's steepest slope
    times the held time squared over two. On time the held time is under one interval
    (about 0.1 J on these traces); the fake's lines come late on a loaded machine."""
    return sum(device_held_j(meter, w, d, spec) for d, spec in zip(w.devices, specs))


def device_held_j(meter, w, device, spec) -> float:
    """`held_tail_j` for one of the window's devices."""
    t = meter._series[("gpu", device.index)].t  # append-only: its first samples as at close
    held = w.t_end - t[max(bisect_left(t, w.t_start) + device.samples - 1, 0)]
    steepest = 2 * math.pi * spec.get("amp", 0.0) / spec.get("period", 1.0) + abs(
        spec.get("slope", 0.0))
    return steepest * held ** 2 / 2


def test_varying_trace_energy_matches_integral_within_1pct(fake_smi):
    t0 = time.time()
    cfg = fake_smi.configure(varying_gpus(t0))
    with EnergyMeter(source="nvidia-smi", interval=0.05) as meter:
        wait_for_samples(meter, 2)
        with meter.window("w") as w:
            time.sleep(2.0)
    expected = [trace_energy(g["power"], w.t_start, w.t_end) for g in cfg["gpus"]]
    assert w.source == "measured:nvidia-smi"
    assert [d.index for d in w.devices] == [0, 1]
    specs = [g["power"] for g in cfg["gpus"]]
    for dev, exp, spec in zip(w.devices, expected, specs):
        assert abs(dev.energy_j - exp) <= 0.01 * exp + device_held_j(meter, w, dev, spec)
    held = held_tail_j(meter, w, specs)
    assert abs(w.energy_j - sum(expected)) <= 0.01 * sum(expected) + held
    assert w.energy_j == pytest.approx(sum(d.energy_j for d in w.devices))
    assert abs(w.power_avg_w - sum(expected) / w.duration_s) <= (
        0.01 * sum(expected) + held) / w.duration_s
    # GPU 1 ramps at 40 W/s from t0: its peak is where the window ends, however late that is
    assert 200 + 80 + 100 < w.power_peak_w < 200 + 80 + 100 + 40 * (w.t_end - t0) + 1
    # 80 samples on time (two GPUs, 2 s, 0.05 s); a loaded machine's fake prints fewer
    assert w.coverage > 0.99 and w.reason is None and w.samples > 20


def test_nested_and_overlapping_windows(fake_smi):
    t0 = time.time()
    cfg = fake_smi.configure(varying_gpus(t0)[:1])
    spec = cfg["gpus"][0]["power"]
    with EnergyMeter(source="nvidia-smi", interval=0.05) as meter:
        wait_for_samples(meter)
        outer = meter.window("outer")
        time.sleep(0.5)
        inner = meter.window("inner")
        time.sleep(0.7)
        outer.close()
        time.sleep(0.5)
        inner.close()
    for w in (outer, inner):
        expected = trace_energy(spec, w.t_start, w.t_end)
        assert abs(w.energy_j - expected) <= 0.01 * expected + held_tail_j(meter, w, [spec])


def test_cuda_visible_devices_selects_only_that_gpu(fake_smi, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with EnergyMeter(source="nvidia-smi", interval=0.05) as meter:
        wait_for_samples(meter)
        with meter.window() as w:
            time.sleep(0.5)
    assert [(d.index, d.uuid) for d in w.devices] == [(1, UUID1)]
    assert w.power_avg_w == pytest.approx(250.0, rel=0.01)


def test_gpu_selection_by_uuid(fake_smi, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", UUID0)
    with EnergyMeter(source="nvidia-smi", interval=0.05) as meter:
        wait_for_samples(meter)
    assert [d["uuid"] for d in meter.devices] == [UUID0]


def test_na_power_gives_nan_and_a_reason_but_keeps_temperature(fake_smi):
    fake_smi.configure([{"uuid": UUID0, "name": "Tesla K80", "temp": 40}], na=["power.draw"])
    with EnergyMeter(source="nvidia-smi", interval=0.05) as meter:
        time.sleep(1.0)
        with meter.window() as w:
            time.sleep(0.4)
    assert math.isnan(w.energy_j) and math.isnan(w.power_avg_w)
    assert "[N/A]" in w.reason
    assert w.temp_c == 40.0


def test_garbage_lines_are_skipped_and_counted(fake_smi):
    t0 = time.time()
    cfg = fake_smi.configure(varying_gpus(t0)[:1], garbage_every=2)
    with EnergyMeter(source="nvidia-smi", interval=0.05) as meter:
        wait_for_samples(meter)
        with meter.window() as w:
            time.sleep(1.0)
    assert meter.health["garbage_lines"] >= 5
    spec = cfg["gpus"][0]["power"]
    expected = trace_energy(spec, w.t_start, w.t_end)
    assert abs(w.energy_j - expected) <= 0.01 * expected + held_tail_j(meter, w, [spec])


def wait_until(predicate, timeout=60.0):
    """Polls for an event; the deadline only guards against hanging, it asserts no speed."""
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_process_death_is_restarted_and_counted(fake_smi, tmp_path):
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": 300.0}}],
                       die_after=5)
    with EnergyMeter(source="nvidia-smi", interval=0.05) as meter:
        wait_for_samples(meter)
        with meter.window() as w:
            wait_until(lambda: meter.health["restarts"] >= 2)
            time.sleep(0.5)
    assert meter.health["restarts"] >= 2
    assert "exited with code 1" in meter.health["reason"]
    assert "Failed to initialize NVML" in meter.health["reason"]
    # Constant power: gaps between restarts are interpolated, and coverage says so.
    assert w.energy_j == pytest.approx(300.0 * w.duration_s, rel=0.01)
    assert 0 < w.coverage <= 1


def test_stall_is_detected_killed_and_restarted(fake_smi):
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": 120.0}}],
                       hang_after=3)
    source = NvidiaSmiSource(interval=0.05, stall_timeout=0.6)
    with EnergyMeter(source=source) as meter:
        wait_until(lambda: meter.health["stalls"] >= 2)
    assert meter.health["stalls"] >= 2
    assert "stalled" in meter.health["reason"]
    assert processes_running(fake_smi.exe) == []


def test_everything_missing_reports_nan_with_reason(fake_smi):
    # It answers the start's probe, then its stream hangs before its first line.
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200"}], stream_delay=30)
    source = NvidiaSmiSource(interval=0.05, start_timeout=5)
    with EnergyMeter(source=source) as meter:
        with meter.window() as w:
            time.sleep(0.3)
    assert math.isnan(w.energy_j) and w.coverage == 0.0
    assert "no sample received from nvidia-smi" in w.reason


def test_a_hung_source_instance_is_unavailable_at_start_as_its_name_is(fake_smi):
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200"}], hang_after=1, start_delay=30)
    meter = EnergyMeter(source=NvidiaSmiSource(interval=0.05, start_timeout=5))
    with pytest.raises(SourceUnavailable, match=r"is unavailable: .*\(hung\?\)"):
        meter.start()
    assert not meter.running and processes_running(fake_smi.exe) == []


def test_stop_is_idempotent_and_leaves_no_process_or_zombie(fake_smi):
    meter = EnergyMeter(source="nvidia-smi", interval=0.05)
    meter.start()
    meter.start()
    wait_for_samples(meter)
    assert len(processes_running(fake_smi.exe, streams_only=True)) == 1  # one stream
    meter.stop()
    meter.stop()
    assert processes_running(fake_smi.exe) == []
    assert zombie_children() == []


@pytest.mark.parametrize("ending", ["exit", "keyboardinterrupt", "exception"])
def test_no_process_left_after_interpreter_exit(fake_smi, ending):
    script = f"""
import time
from greenscreen.meters import EnergyMeter
m = EnergyMeter(source="nvidia-smi", interval=0.05).start()
time.sleep(1.0)
ending = {ending!r}
if ending == "keyboardinterrupt":
    raise KeyboardInterrupt
if ending == "exception":
    raise RuntimeError("boom")
"""
    subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), timeout=60,
                   capture_output=True)
    time.sleep(0.3)
    assert processes_running(fake_smi.exe) == []


def test_meter_is_thread_safe(fake_smi):
    with EnergyMeter(source="nvidia-smi", interval=0.02) as meter:
        wait_for_samples(meter, 2)
        results, errors = [], []

        def worker():
            try:
                for _ in range(20):
                    with meter.window() as w:
                        meter.latest()
                        time.sleep(0.01)
                    results.append(w.energy_j)
            except Exception as exc:  # pragma: no cover - the assertion reports it
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == [] and len(results) == 80
    assert all(r > 0 for r in results)


def test_latest_is_cheap_and_reads_memory(fake_smi):
    with EnergyMeter(source="nvidia-smi", interval=0.05) as meter:
        wait_for_samples(meter, 2)
        latest = meter.latest()
    assert latest["power_w"] == pytest.approx(400.0)
    assert latest["per_device"] == {0: 150.0, 1: 250.0}


def test_unknown_source_is_one_clear_error():
    with pytest.raises(ValueError, match=r"source='gpu' is not valid; allowed: 'auto', "):
        EnergyMeter(source="gpu")


@pytest.mark.parametrize("interval", [-0.1, 0, "fast", float("nan"), 1e-9, 0.0009])
def test_bad_interval_is_one_clear_error(interval):
    # Below a millisecond a polling thread would only spin: nvidia-smi's --loop-ms takes
    # whole milliseconds, and the meter would spend the energy it measures.
    allowed = r"interval=.* is not valid; allowed: a number in \[0.001, inf\)"
    for make in (EnergyMeter, RaplSource, NvmlSource, CpuTimeEstimate, NvidiaSmiSource):
        with pytest.raises(ValueError, match=allowed):
            make(interval=interval)
    EnergyMeter(interval=0.001)


@pytest.mark.parametrize("kwargs, match", [
    ({"gpus": "0,1"}, "gpus='0,1' is not valid; allowed: None or a list of GPU indices"),
    ({"gpus": 0}, "gpus=0 is not valid"),
    ({"attribution": "share"}, "attribution='share' is not valid; allowed: one of 'process'"),
])
def test_bad_arguments_are_checked_once_without_a_meter(kwargs, match):
    # The constructor's rules, public so that SMICallback checks the meter's at its construction.
    with pytest.raises(ValueError, match=match):
        EnergyMeter.check_arguments(**kwargs)
    with pytest.raises(ValueError, match=match):
        EnergyMeter(**kwargs)
    EnergyMeter.check_arguments(source="estimate", interval=0.5, gpus=[0, "GPU-x"])


def test_non_executable_override_is_one_clear_error(tmp_path, monkeypatch):
    bogus = tmp_path / "nvidia-smi"
    bogus.write_text("not a program")
    monkeypatch.setenv("GREENSCREEN_NVIDIA_SMI", str(bogus))
    # The environment, not an argument: the source cannot run here, and says why.
    with pytest.raises(SourceUnavailable, match="source='nvidia-smi' is unavailable: "
                       "GREENSCREEN_NVIDIA_SMI=.* is not valid; allowed: the"):
        EnergyMeter(source="nvidia-smi").start()


def test_explicit_source_that_cannot_run_says_why(monkeypatch, tmp_path):
    monkeypatch.delenv("GREENSCREEN_NVIDIA_SMI", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SourceUnavailable, match="nvidia-smi not found on PATH"):
        EnergyMeter(source="nvidia-smi").start()


def test_cuda_visible_devices_empty_hides_every_gpu(fake_smi, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(SourceUnavailable, match="hides every GPU"):
        EnergyMeter(source="nvidia-smi").start()
