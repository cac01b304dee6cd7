"""An nvidia-smi that prints what does not parse, or hangs, is a source fault with its
reason; the next source measures, and asking never stalls a fit (issue 33)."""

import json
import math
import sys

import numpy as np
from conftest import UUID0, UUID1, processes_running

from greenscreen.meters import registry
from greenscreen.meters.nvidia_smi import NvidiaSmiSource, parse_line


def test_a_line_of_junk_of_the_right_width_is_not_a_sample():
    line = "junk, 0, uuid x, name y, lots, hot, busy, full"
    assert parse_line(line, 0.0) is None
    good = "2025/01/01 10:00:00.000, 0, GPU-1, NVIDIA H200, [N/A], 45, 80, 1024"
    assert parse_line(good, 0.0) is not None and math.isnan(parse_line(good, 0.0).power_w)


def test_an_nvidia_smi_whose_lines_do_not_parse_is_a_fault_with_its_reason(fake_smi):
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200"}], garbage=True)
    reason = NvidiaSmiSource(0.05).unavailable_reason()
    assert reason is not None and "does not parse" in reason and "uuid x" in reason
    plan = registry.plan("auto")  # the CPU fallback measures instead
    assert [s.name for s in plan.sources] == ["estimate"]
    assert "does not parse" in plan.unmeasured["gpu"]


def test_a_hung_nvidia_smi_is_unavailable_with_a_timeout_reason(fake_smi):
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200"},
                        {"uuid": UUID1, "name": "NVIDIA H200"}], hang=True)
    source = NvidiaSmiSource(0.05)
    reason = source.unavailable_reason()
    assert reason is not None and "did not answer within 2 s" in reason
    assert source.field == "power.draw"  # decided: a hung nvidia-smi is not asked again
    assert processes_running(fake_smi.exe) == []  # killed, not left behind
    plan = registry.plan("auto")
    assert [s.name for s in plan.sources] == ["estimate"]
    assert "did not answer within" in plan.skipped["nvidia-smi"]


def fit_once(log_dir) -> dict:
    """One epoch of a one-layer model under SMICallback(source "auto"): its summary.json."""
    import keras

    from greenscreen import SMICallback

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.zeros((32, 4), "float32")
    model.fit(x, x[:, :1], epochs=1, verbose=0,
              callbacks=[SMICallback(log_dir=log_dir, interval=0.05)])
    return json.loads((log_dir / "summary.json").read_text())


def test_a_fit_with_a_hung_nvidia_smi_is_measured_by_the_fallback(fake_smi, tmp_path):
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200"}], hang=True)
    summary = fit_once(tmp_path)
    assert summary["source"].startswith("estimated:cpu-time")
    assert "did not answer within" in summary["skipped_sources"]["nvidia-smi"]


def test_a_greenscreen_nvidia_smi_that_names_no_file_is_a_reason_not_a_crash(tmp_path,
                                                                            monkeypatch):
    """`greenscreen meters` ended in a traceback, and a fit's meter did not start at all
    (energy NaN, no fallback): the variable is the environment's, not an argument."""
    monkeypatch.setenv("GREENSCREEN_NVIDIA_SMI", str(tmp_path / "nowhere"))
    monkeypatch.setenv("GREENSCREEN_POWERCAP_ROOT", str(tmp_path / "no-powercap"))
    row = next(r for r in registry.available() if r["source"] == "nvidia-smi")
    assert not row["available"] and "GREENSCREEN_NVIDIA_SMI=" in row["reason"]
    summary = fit_once(tmp_path)
    if "nvml" not in summary["skipped_sources"]:
        return  # a machine with a real NVML measures with it: nothing more to see here
    assert summary["source"] == "estimated:cpu-time" and summary["energy_j"] > 0
    assert "is not valid" in summary["skipped_sources"]["nvidia-smi"]


def test_a_slow_nvidia_smi_on_a_busy_machine_is_not_taken_for_a_hung_one(fake_smi):
    from greenscreen.meters import _probe

    # Busy for 2.5 s (running, not asleep): past the 2 s a hung one gets, and answered.
    # Without site (-S -E): the interpreter starts from memory in milliseconds, instead of
    # looking up some 230 files for the environment's site-packages first, which on a loaded
    # machine could leave it waiting on the disk, not running, when the 2 s are up.
    done = _probe.ask([sys.executable, "-S", "-E", "-c", "import time\nt = time.time()\n"
                       "while time.time() - t < 2.5: pass\nprint('answer')"])
    assert done.returncode == 0 and done.stdout == "answer\n"
