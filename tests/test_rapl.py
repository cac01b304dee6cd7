"""RAPL on a fake powercap tree (tests/powercap.py): zones found once in either layout,
DRAM read and not double-counted, core/uncore/psys not added, wrap-around per zone,
unreadable zones named, several components in one meter, and CPU-time attribution."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import powercap
import pytest
from conftest import UUID0
from powercap import CPU, DRAM, assert_near_truth, truth, zones

from greenscreen.meters import EnergyMeter, RaplSource, SourceUnavailable
from greenscreen.meters.base import PolledSource

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("layout", ["nested", "flat"])
def test_every_zone_is_found_once_and_only_packages_and_dram_are_added(tmp_path, layout):
    folder = powercap.build(tmp_path, zones(time.time()), layout)
    source = RaplSource(root=str(folder))
    source.open()
    samples = source.read()
    assert sorted((s.component, s.index, s.name) for s in samples) == [
        ("cpu", 0, "package-0"), ("cpu", 1, "package-1"), ("dram", 0, "dram"),
        ("dram", 1, "dram")]
    assert source.components == ("cpu", "dram") and source.unreadable == {}
    left_out = source.left_out
    assert "inside the package" in left_out["intel-rapl:0:0 (core)"]
    assert "inside the package" in left_out["intel-rapl:0:1 (uncore)"]
    assert "inside the package" in left_out["intel-rapl:2 (psys)"]
    assert "read through intel-rapl" in left_out["intel-rapl-mmio:0 (package-0)"]


def test_each_zone_unwraps_at_its_own_range(tmp_path):
    spec = [{"id": "intel-rapl:0", "name": "package-0", "max_uj": 1_000_000,
             "power": {"base": 0.0}},
            {"id": "intel-rapl:0:0", "name": "dram", "max_uj": 300_000, "power": {"base": 0.0}}]
    folder = powercap.build(tmp_path, spec)
    package, dram = (powercap.zone_dir(folder, z["id"]) / "energy_uj" for z in spec)
    source = RaplSource(root=str(folder))
    source.open()
    readings = []
    for pkg_uj, dram_uj in [(900_000, 250_000), (950_000, 290_000), (50_000, 40_000),
                            (60_000, 40_000)]:
        package.write_text(f"{pkg_uj}\n")
        dram.write_text(f"{dram_uj}\n")
        readings.append({s.component: s.energy_mj for s in source.read()})
    assert [r["cpu"] for r in readings] == [0.0, 50.0, 150.0, 160.0]  # wrapped at 1 J
    assert [r["dram"] for r in readings] == [0.0, 40.0, 90.0, 90.0]  # wrapped at 0.3 J


@pytest.mark.parametrize("layout", ["nested", "flat"])
def test_window_energy_of_each_component_matches_the_counters_truth(tmp_path, monkeypatch,
                                                                    layout):
    spec = zones(time.time())
    with powercap.running(tmp_path, spec, layout) as folder:
        monkeypatch.setenv("GREENSCREEN_POWERCAP_ROOT", str(folder))
        with EnergyMeter(source="rapl", interval=0.05, attribution="device") as meter:
            assert meter.wait_for_sample(10)
            windows = []
            for _ in range(2):
                with meter.window() as w:
                    time.sleep(2.0)  # each counter wraps at least once in here
                windows.append(w)
    assert meter.components == {"cpu": "measured:rapl", "dram": "measured:rapl"}
    for w in windows:
        cpu, dram = w.components["cpu"], w.components["dram"]
        assert_near_truth(cpu.energy_j, spec, CPU, w.t_start, w.t_end, tmp_path, rel=0.01)
        assert_near_truth(dram.energy_j, spec, DRAM, w.t_start, w.t_end, tmp_path, rel=0.01)
        assert w.energy_j == pytest.approx(cpu.energy_j + dram.energy_j, rel=1e-12)
        assert (cpu.devices, dram.devices) == (2, 2) and w.source == "measured:rapl"
        assert w.coverage > 0.99 and w.reason is None and w.unmeasured == {}


def test_a_window_before_the_second_timed_reading_is_measured(tmp_path, monkeypatch):
    """A counter is read when a window closes before the timer's second reading: one
    reading has no power to carry forward, and such a window (a first epoch shorter than
    the interval) was charged 0 J."""
    spec = zones(time.time())
    with powercap.running(tmp_path, spec) as folder:
        monkeypatch.setenv("GREENSCREEN_POWERCAP_ROOT", str(folder))
        with EnergyMeter(source="rapl", interval=30.0, attribution="device") as meter:
            assert meter.wait_for_sample(10)
            with meter.window() as w:
                time.sleep(0.5)
    assert w.reason is None and w.energy_j > 0
    for part, ids in (("cpu", CPU), ("dram", DRAM)):
        assert_near_truth(w.components[part].energy_j, spec, ids, w.t_start, w.t_end,
                          tmp_path, rel=0.02)


def test_an_unreadable_zone_is_named_with_its_reason(tmp_path, monkeypatch):
    spec = zones(time.time(), **{"intel-rapl:0:2": {"unreadable": True}})
    with powercap.running(tmp_path, spec) as folder:
        monkeypatch.setenv("GREENSCREEN_POWERCAP_ROOT", str(folder))
        with EnergyMeter(source="rapl", interval=0.05, attribution="device") as meter:
            assert meter.wait_for_sample(10)
            with meter.window() as w:
                time.sleep(0.6)
    assert list(w.components) == ["cpu"]  # the other package's DRAM alone would be partial
    reason = w.unmeasured["dram"]
    assert reason.startswith("intel-rapl:0:2 (dram): energy_uj cannot be read")
    assert "Is a directory" in reason
    assert_near_truth(w.energy_j, spec, CPU, w.t_start, w.t_end, tmp_path, rel=0.02)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_a_zone_readable_by_root_only_says_so(tmp_path):
    folder = powercap.build(tmp_path, zones(time.time()))
    os.chmod(powercap.zone_dir(folder, "intel-rapl:1") / "energy_uj", 0)
    source = RaplSource(root=str(folder))
    assert source.unavailable_reason() is None  # DRAM is still readable
    assert source.components == ("dram",)
    assert "intel-rapl:1 (package-1): permission denied" in source.unreadable["cpu"]
    assert "root only since Linux 5.10" in source.unreadable["cpu"]


def test_packages_without_dram_zones_measure_cpu_and_say_why_not_dram(tmp_path):
    spec = [z for z in zones(time.time()) if z["name"] not in ("dram", "psys")]  # like AMD
    source = RaplSource(root=str(powercap.build(tmp_path, spec)))
    assert source.unavailable_reason() is None and source.components == ("cpu",)
    assert "no dram zone" in source.unreadable["dram"] and "AMD" in source.unreadable["dram"]


def test_auto_measures_the_gpus_cpu_and_dram_in_one_meter(fake_smi, tmp_path, monkeypatch):
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": 200.0}}])
    spec = zones(time.time())
    with powercap.running(tmp_path, spec, "flat") as folder:
        monkeypatch.setenv("GREENSCREEN_POWERCAP_ROOT", str(folder))
        with EnergyMeter(interval=0.05, attribution="device") as meter:
            assert meter.wait_for_sample(15)
            with meter.window() as w:
                time.sleep(1.5)
            latest = meter.latest()
    assert list(w.components) == ["gpu", "cpu", "dram"]
    assert w.components["gpu"].source.startswith("measured:nvidia-smi")
    assert w.source.startswith("measured:nvidia-smi") and w.source.endswith(" + measured:rapl")
    assert w.components["gpu"].energy_j == pytest.approx(200 * w.duration_s, rel=0.01)
    assert w.energy_j == pytest.approx(sum(c.energy_j for c in w.components.values()))
    assert set(latest["per_device"]) == {0, "cpu0", "cpu1", "dram0", "dram1"}
    assert [d["component"] for d in meter.devices] == ["gpu", "cpu", "cpu", "dram", "dram"]


def test_a_list_of_sources_runs_what_it_can_and_records_the_rest(fake_smi):
    with EnergyMeter(source=["nvidia-smi", "rapl"], interval=0.05) as meter:
        assert meter.wait_for_sample(15)
        with meter.window() as w:
            time.sleep(0.3)
    assert list(w.components) == ["gpu"]
    assert "no RAPL powercap tree" in w.unmeasured["cpu"] == w.unmeasured["dram"]
    with pytest.raises(SourceUnavailable, match="source='rapl' is unavailable: no RAPL"):
        EnergyMeter(source="rapl").start()


@pytest.mark.parametrize("source, match", [
    (["nvml", "nvidia-smi"], "at most one GPU source"),
    (["rapl", "rapl"], "naming each source once"),
    (["estimate", "rapl"], "'estimate' alone: an estimate is never added"),
    (["auto", "rapl"], "without 'auto'"),
    ([], "a list of source names"),
    ("nvml,rapl", "a list of source names"),
])
def test_a_bad_source_list_is_one_clear_error(source, match):
    with pytest.raises(ValueError, match=rf"source=.* is not valid; allowed: .*{match}"):
        EnergyMeter(source=source)


class MeasuredCpu(PolledSource):
    """A source of yours that measures the CPU (a PDU outlet, say)."""

    name, provenance, components = "pdu", "measured:pdu", ("cpu",)

    def unavailable_reason(self):
        return None

    def read(self):
        return []


def test_two_sources_of_one_component_in_a_list_are_refused():
    """RAPL and a measured CPU source of yours fed one series, its samples interleaved,
    labelled measured:rapl alone (read-only review)."""
    with pytest.raises(ValueError, match=r"each component is measured by one source: cpu "
                                         r"\(by 'rapl' and MeasuredCpu\(\)\) would be counted"):
        EnergyMeter(source=["rapl", MeasuredCpu()])
    EnergyMeter(source=["nvml", MeasuredCpu()])  # the GPUs and the CPU: one source each


WORKER = textwrap.dedent("""
    import json, subprocess, sys, time
    from greenscreen.meters import EnergyMeter
    t0, t1, how = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    meter = EnergyMeter(source="rapl", interval=0.05).start()  # attribution="process"
    while time.time() < t0:
        time.sleep(0.01)
    if how == "child":  # the tree counts: a subprocess does this one's work
        subprocess.run([sys.executable, "-c",
                        f"import time\\nwhile time.time() < {t1}: pass"])
    else:  # half a core, in this process
        while time.time() < t1:
            end = time.time() + 0.01
            while time.time() < end:
                pass
            time.sleep(0.01)
    w = meter.window("w", t_start=t0).close(t1)
    meter.stop()
    print(json.dumps({c: [cw.energy_j, cw.device_energy_j, cw.source]
                      for c, cw in w.components.items()}))
""")


def tree_ticks(pid):
    """utime + stime + cutime + cstime of pid and its descendants, in clock ticks."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(fields[i]) for i in (11, 12, 13, 14))
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total


def test_two_runs_on_one_node_are_charged_the_node_s_cpu_and_dram_energy_once(
        tmp_path, monkeypatch):
    """The node: these two processes and nothing else (a /proc/stat whose busy time is
    theirs, rewritten every 5 ms), so their shares must add up to the whole packages."""
    spec = [{"id": "intel-rapl:0", "name": "package-0", "max_uj": 2**32,
             "power": {"base": 50.0, "t0": time.time()}},
            {"id": "intel-rapl:0:0", "name": "dram", "max_uj": 2**32,
             "power": {"base": 10.0, "t0": time.time()}}]
    stat = tmp_path / "stat"
    stat.write_text("cpu  0 0 0 0 0 0 0 0 0 0\n")
    pids, stop = [], threading.Event()

    def node_stat():
        idle = busy = 0
        while not stop.wait(0.005):
            idle += 1
            # A counter, as the kernel's: a child reaped while tree_ticks reads its parent
            # counts nowhere in that one read, and must not make the node's time fall.
            busy = max(busy, sum(tree_ticks(p) for p in pids))
            tmp = tmp_path / "stat.tmp"
            tmp.write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\n")
            os.replace(tmp, stat)

    with powercap.running(tmp_path, spec) as folder:
        env = {**os.environ, "GREENSCREEN_POWERCAP_ROOT": str(folder),
               "GREENSCREEN_PROC_STAT": str(stat), "PYTHONPATH": str(ROOT)}
        t0 = time.time() + 4.0
        t1 = t0 + 6.0
        runs = [subprocess.Popen([sys.executable, "-c", WORKER, str(t0), str(t1), how],
                                 env=env, stdout=subprocess.PIPE, text=True)
                for how in ("child", "half")]
        pids += [r.pid for r in runs]
        writer = threading.Thread(target=node_stat, daemon=True)
        writer.start()
        try:
            out = [json.loads(r.communicate(timeout=120)[0]) for r in runs]
        finally:
            stop.set()
            writer.join()
    for component, watts, zone in (("cpu", 50.0, "intel-rapl:0"),
                                   ("dram", 10.0, "intel-rapl:0:0")):
        assert truth(spec, (zone,), t0, t1) == pytest.approx(watts * (t1 - t0))
        # This test loads the machine on purpose: the fake writer's staleness is allowed.
        charged = [o[component][0] for o in out]
        assert all(o[component][2] == "measured:rapl;attributed:cpu-time-share" for o in out)
        for o in out:
            assert_near_truth(o[component][1], spec, (zone,), t0, t1, tmp_path, rel=0.01)
        assert_near_truth(sum(charged), spec, (zone,), t0, t1, tmp_path, rel=0.02)
        assert charged[0] > charged[1] > 0  # a whole core's child against half a core
