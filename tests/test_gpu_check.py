"""The one-command real-GPU check runs here against the fake nvidia-smi (no NVML, no counter)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WHOLE = "auto: GPU + CPU + DRAM"  # SMICallback's default meter, every component it reads
PHASES = ["nvidia-smi", "NVML energy counter", "sources", "JAX matmul load", "window idle",
          "window steady", "window square_2s", "window square_0.5s", "window burst_0.3s",
          "Keras fit (JAX)"]


def fake_h100(fake_smi) -> None:
    # A driver from R535 on, so both power.draw (a 1 s mean) and power.draw.instant exist.
    fake_smi.configure([{"uuid": "GPU-0", "name": "NVIDIA H100", "power": {"base": 150.0}}],
                       power_draw="1s-mean")


@pytest.mark.backends("tensorflow")  # runs once; the check itself always uses JAX
def test_gpu_check_runs_against_the_fake_and_says_why_the_counter_is_missing(fake_smi, tmp_path):
    fake_h100(fake_smi)
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    run = subprocess.run([str(ROOT / "greenscreen.sh"), "gpu-check", "--scale", "0.05",
                          "--epochs", "1", "--out", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text())
    assert "nvidia-smi power.draw" in run.stdout and f"wrote {out}" in run.stdout
    # One line as each phase starts and one as it ends, in order; every phase ran.
    ends = [m[1] for m in re.finditer(r"^gpu-check: (.+) \(\d+\.\d s\): ", run.stdout, re.M)]
    assert ends == PHASES
    assert result["status"] == "done"
    assert [p["phase"] for p in result["phases"]] == PHASES
    assert all(p["error"] is None for p in result["phases"]), result["phases"]
    # No NVML here: the reference and the NVML source are reported with their reasons.
    assert result["counter"]["available"] is False and result["counter"]["reason"]
    assert "nvml power 10 Hz" in result["unavailable"]
    assert result["nvidia_smi"]["startup_s"] > 0
    assert result["nvidia_smi"]["auto_field"] == "power.draw.instant"
    assert result["provenance"] == {
        "nvidia-smi power.draw": "measured:nvidia-smi",
        "nvidia-smi power.draw.instant": "measured:nvidia-smi(power.draw.instant)",
        WHOLE: "measured:nvidia-smi(power.draw.instant)"}  # no readable RAPL: the GPU alone
    windows = {row["window"]: row for row in result["windows"]}
    assert list(windows) == ["idle", "steady", "square_2s", "square_0.5s", "burst_0.3s"]
    for name in ("idle", "steady", "square_2s", "square_0.5s"):
        row = windows[name]
        for source in ("nvidia-smi power.draw", "nvidia-smi power.draw.instant", WHOLE):
            cell = row["sources"][source]
            # The fake draws a constant 150 W: energy = 150 W x the window's length.
            assert cell["energy_j"] == pytest.approx(150.0 * row["duration_s"], rel=0.02)
            assert cell["coverage"] > 0.95
            # Its interval is recorded; with no counter there is nothing it could hold.
            assert cell["energy_err_j"] >= 0 and cell["inside"] is None
        whole = row["sources"][WHOLE]  # each component apart, and why CPU and DRAM are not
        assert list(whole["components"]) == ["gpu"] and set(whole["unmeasured"]) == {"cpu",
                                                                                     "dram"}
    assert set(result["sampler_cpu_pct"]) == {"nvidia-smi power.draw",
                                              "nvidia-smi power.draw.instant"}
    fit = result["fit"]
    assert fit["backend"] == "jax" and fit["epochs"] == 1 and fit["counter_reason"]
    for source in ("nvidia-smi power.draw", "nvidia-smi power.draw.instant"):
        assert len(fit["sources"][source]["energy_j"]) == 1
        assert all(e > 0 for e in fit["sources"][source]["energy_j"])
        assert all(e >= 0 for e in fit["sources"][source]["energy_err_j"])
    assert fit["sources"][WHOLE]["components"]["gpu"] == fit["sources"][WHOLE]["energy_j"]
    assert "no NVML energy counter" in result["intervals"]["reason"]
    assert "intervals: no NVML energy counter to check against" in run.stdout


def test_the_interval_summary_counts_what_holds_the_counter():
    """gpu_intervals.summary over windows and epochs: a window the interval holds, one it
    misses, an epoch without an interval (NaN: an estimate) left out."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_intervals

    cell = lambda energy, err: {"energy_j": energy, "energy_err_j": err}  # noqa: E731
    result = {"counter": {"available": True, "reason": None},
              "windows": [{"counter_j": 100.0, "sources": {"s": cell(101.0, 2.0)}},
                          {"counter_j": 200.0, "sources": {"s": cell(195.0, 3.0)}}],
              "fit": {"counter_j": [50.0, 60.0],
                      "sources": {"s": {"energy_j": [50.5, 61.0],
                                        "energy_err_j": [1.0, float("nan")]}}}}
    got = gpu_intervals.summary(result)["s"]
    assert (got["checked"], got["inside"]) == (3, 2) and got["coverage"] == pytest.approx(2 / 3)
    assert got["median_half_width_j"] == 2.0 and got["median_error_j"] == 1.0
    assert got["width_over_error"] == 2.0
    assert gpu_intervals.inside(101.0, 100.0, 2.0) and not gpu_intervals.inside(95, 100, 3)
    assert "holds the counter in 2/3 (67%)" in gpu_intervals.lines({"s": got})[0]
    unavailable = {**result, "counter": {"available": False, "reason": "no NVML"}}
    assert gpu_intervals.summary(unavailable) == {
        "reason": "no NVML energy counter to check against: no NVML"}


@pytest.mark.backends("tensorflow")
def test_a_gpu_check_cut_short_keeps_what_it_measured(fake_smi, tmp_path):
    fake_h100(fake_smi)
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONUNBUFFERED": "1"}
    check = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"),
                              "--scale", "0.05", "--out", str(out)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines, deadline = [], time.monotonic() + 300
    try:
        for line in check.stdout:  # wait until the steady window has been measured
            lines.append(line)
            if line.startswith("gpu-check: window steady (") or time.monotonic() > deadline:
                break
        check.send_signal(signal.SIGTERM)  # what a time limit sends
        rest, _ = check.communicate(timeout=60)
    finally:
        check.kill()
    assert check.returncode == 130, "".join(lines) + rest
    assert "interrupted (SIGTERM)" in rest
    result = json.loads(out.read_text())
    assert result["status"] == "interrupted: SIGTERM"
    assert [row["window"] for row in result["windows"]][:2] == ["idle", "steady"]
    assert result["windows"][1]["sources"]["nvidia-smi power.draw.instant"]["energy_j"] > 0
    assert "fit" not in result and result["phases"][-1]["phase"] != "Keras fit (JAX)"


def test_gpu_check_help_lists_every_option_the_check_takes():
    """`gpu-check --help` listed four options from a copy in cli.py, --fit-scale missing:
    it is now the check's own help."""
    shown = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "gpu-check",
                            "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    for option in ("--out", "--scale", "--epochs", "--fit-scale", "--no-fit"):
        assert option in shown.stdout
    assert shown.stdout.startswith("usage: ./greenscreen.sh gpu-check")
