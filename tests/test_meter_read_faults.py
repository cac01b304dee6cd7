"""What a read of the meters found: an MMIO DRAM zone beside intel-rapl's, a meter started
again, a device that never gives a reading, GPUs whose processes cannot be listed, and
arguments the sources took without a word."""

import copy
import math
import os
import sys
import time
import warnings
from pathlib import Path

import powercap
import pytest
from conftest import UUID0
from test_totals_monotonic import FakeNvml

from greenscreen import SMICallback
from greenscreen.meters import EnergyMeter, NvidiaSmiSource, NvmlSource, RaplSource
from greenscreen.meters.rapl import find_zones

GIGA = 262e9


def zone(zone_id, name, max_uj=GIGA):
    return {"id": zone_id, "name": name, "max_uj": max_uj, "power": {"base": 0.0}}


def add_joules(path, joules):
    """Adds to a zone's counter in one step (renamed into place, as a reader may read it
    at any moment)."""
    new = path.with_name("energy_uj.new")
    new.write_text(f"{int(path.read_text()) + int(joules * 1e6)}\n")
    os.replace(new, path)


def test_an_mmio_dram_zone_is_not_read_beside_intel_rapl_s(tmp_path):
    """MMIO is another view of the same RAPL domains: read only where intel-rapl lacks
    the zone, so a DRAM zone it cannot read (a tmpfiles rule for intel-rapl:* only) no
    longer takes the DRAM that intel-rapl reads with it."""
    root = powercap.build(tmp_path, [
        zone("intel-rapl:0", "package-0"), zone("intel-rapl:0:0", "dram", 65e9),
        zone("intel-rapl-mmio:0", "package-0"),
        {**zone("intel-rapl-mmio:0:0", "dram", 65e9), "unreadable": True}], "flat")
    zones, skipped = find_zones(str(root))
    assert [(z.label, z.component) for z in zones] == [
        ("intel-rapl:0 (package-0)", "cpu"), ("intel-rapl:0:0 (dram)", "dram")]
    assert "intel-rapl-mmio:0:0 (dram)" in skipped
    source = RaplSource(root=str(root))
    assert source.unavailable_reason() is None and source.components == ("cpu", "dram")


def test_a_meter_started_again_measures_its_new_window(tmp_path):
    """Stopped and started again: the restarted source's counter begins a new series, and
    a closing window reads it again (it read nothing, and the restart's first interval
    counted 0 W)."""
    root = powercap.build(tmp_path, [zone("intel-rapl:0", "package-0")], "nested")
    counter = powercap.zone_dir(root, "intel-rapl:0") / "energy_uj"
    meter = EnergyMeter(source=RaplSource(interval=5.0, root=str(root)),
                        attribution="device")
    for _ in range(2):
        with meter:
            assert meter.wait_for_sample(10)  # the timer's first read, then none for 5 s
            with meter.window() as window:
                add_joules(counter, 10.0)
                time.sleep(0.5)
        # Read again as the window closes: between the two readings the counter's 10 J
        # are spread evenly, and the window's share of them depends on when the first
        # reading came; the second start measured exactly 0 J.
        assert 0.0 < window.energy_j <= 10.0 + 1e-6 and window.reason is None


class PackageOneFailsOnceOpen(RaplSource):
    """RAPL whose second package is readable when probed and fails from its first read."""

    def open(self):
        super().open()
        counter = powercap.zone_dir(Path(self.root), "intel-rapl:1") / "energy_uj"
        counter.unlink()
        counter.mkdir()


def test_a_device_that_never_gives_a_reading_makes_its_component_unknown(tmp_path):
    root = powercap.build(tmp_path, [zone("intel-rapl:0", "package-0"),
                                     zone("intel-rapl:1", "package-1")], "nested")
    counter = powercap.zone_dir(root, "intel-rapl:0") / "energy_uj"
    with EnergyMeter(source=PackageOneFailsOnceOpen(0.05, root=str(root)),
                     attribution="device") as meter:
        assert meter.wait_for_sample(10)
        with meter.window() as window:
            add_joules(counter, 50.0)
    cpu = window.components["cpu"]
    assert math.isnan(cpu.energy_j) and cpu.devices == 2  # was 50 J from package 0 alone
    assert math.isnan(window.energy_j)
    assert "cpu 1 (rapl:intel-rapl:1) has no power sample" in window.reason
    silent = [d for d in window.devices if d.index == 1]  # named as its readings would be
    assert [(d.uuid, d.name) for d in silent] == [("rapl:intel-rapl:1", "package-1")]


def a_window_and_its_warnings(source: str):
    """A 0.3 s window of a meter of `source`, and every warning given meanwhile."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        with EnergyMeter(source=source, interval=0.05) as meter:
            assert meter.wait_for_sample(10)
            with meter.window() as window:
                time.sleep(0.3)
    return window, said


def test_gpus_whose_processes_cannot_be_listed_are_never_taken_as_alone(fake_smi, tmp_path):
    """The stream reads power, but listing the GPUs' processes fails: the figures are the
    whole GPUs', marked sharing-unknown with the reason, as for a container."""
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": 100.0}}],
                       listing_fails=True)
    window, said = a_window_and_its_warnings("nvidia-smi")
    assert window.source == "measured:nvidia-smi;attributed:sharing-unknown"
    assert window.shared_with == "unknown"
    assert any("compute processes were not listed" in str(w.message) for w in said)


def test_the_gpus_of_a_gpu_source_instance_are_its_own():
    with pytest.raises(ValueError, match="gpus=\\[1\\] is not valid.*NvmlSource\\(gpus=\\[1\\]\\)"):
        EnergyMeter(source=NvmlSource(), gpus=[1])


@pytest.mark.parametrize("make, said", [
    (lambda: NvmlSource(gpus="0,1"), "gpus='0,1' is not valid"),
    (lambda: NvmlSource(gpus=[-1]), "gpus=\\[-1\\] is not valid"),
    # iterated, "10" measured GPUs 1 and 0 (read-only review)
    (lambda: NvidiaSmiSource(gpus="10"), "gpus='10' is not valid"),
    (lambda: NvidiaSmiSource(gpus=[-1]), "gpus=\\[-1\\] is not valid"),
    (lambda: NvidiaSmiSource(gpus=[""]), "gpus=\\[''\\] is not valid"),
    (lambda: EnergyMeter(gpus=[" "]), "gpus=\\[' '\\] is not valid"),
    # checked, a generator was used up: the source then queried no GPU (read-only review)
    (lambda: NvidiaSmiSource(gpus=(g for g in [0])), "gpus=<generator .* is not valid"),
    (lambda: NvmlSource(counter="no"), "counter='no' is not valid"),
    (lambda: NvmlSource(counter=1), "counter=1 is not valid"),
    (lambda: RaplSource(root=123), "root=123 is not valid"),
    (lambda: RaplSource(root=""), "root='' is not valid"),
])
def test_source_arguments_are_checked_at_construction(make, said):
    with pytest.raises(ValueError, match=said):
        make()


def test_a_callback_with_a_source_instance_copies_and_shares_it(tmp_path):
    root = powercap.build(tmp_path, [zone("intel-rapl:0", "package-0")], "nested")
    source = RaplSource(root=str(root))
    twin = copy.deepcopy(SMICallback(log_dir=None, source=source))
    assert twin.source is source



class NvmlWithoutProcesses(FakeNvml):
    """The fake pynvml whose third session fails: the source's probe and its start open
    the first two, and the process watcher's own session fails, as where process listing
    is not permitted."""

    sessions = 0

    def nvmlInit(self):
        self.sessions += 1
        if self.sessions > 2:
            raise RuntimeError("Insufficient Permissions")


def test_nvml_gpus_whose_process_listing_cannot_start_are_sharing_unknown(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", NvmlWithoutProcesses())
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    window, said = a_window_and_its_warnings("nvml")
    assert window.source == "measured:nvml-counter;attributed:sharing-unknown"
    assert any("Insufficient Permissions" in str(w.message) for w in said)


def test_a_window_the_clock_went_back_in_is_nan_with_why_not_negative_joules(fake_smi):
    """Stepped back 30 s mid-window (NTP, `date -s`, a resumed VM), the window ended before
    it began: -2705 J "measured:rapl" with no reason (read-only review). A window opened
    30 s ahead of the clock and closed now ends the same way."""
    with EnergyMeter(source="nvidia-smi", interval=0.05) as meter:
        assert meter.wait_for_sample(10)
        window = meter.window(t_start=time.time() + 30).close()
        assert window.duration_s < 0 and math.isnan(window.energy_j)
        assert window.reason.startswith("the system clock went back 30.")
        assert window.reason.endswith("during this window (an NTP step, date -s, a resumed "
                                      "VM): its energy cannot be told")
        assert window.source.startswith("measured:nvidia-smi")
        with meter.window() as after:
            time.sleep(0.2)
        assert after.energy_j > 0 and after.reason is None  # the next one measures
