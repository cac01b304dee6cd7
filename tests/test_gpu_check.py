"""The one-command real-GPU check runs here against the fake nvidia-smi (no NVML, no counter)."""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.backends("tensorflow")  # runs once; the check itself always uses JAX
def test_gpu_check_runs_against_the_fake_and_says_why_the_counter_is_missing(fake_smi, tmp_path):
    # A driver from R535 on, so both power.draw (a 1 s mean) and power.draw.instant exist.
    fake_smi.configure([{"uuid": "GPU-0", "name": "NVIDIA H100", "power": {"base": 150.0}}],
                       power_draw="1s-mean")
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    run = subprocess.run([str(ROOT / "greenscreen.sh"), "gpu-check", "--scale", "0.05",
                          "--epochs", "1", "--out", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text())
    assert "nvidia-smi power.draw" in run.stdout and f"wrote {out}" in run.stdout
    # No NVML here: the reference and the NVML source are reported with their reasons.
    assert result["counter"]["available"] is False and result["counter"]["reason"]
    assert "nvml power 10 Hz" in result["unavailable"]
    assert result["nvidia_smi"]["startup_s"] > 0
    windows = {row["window"]: row for row in result["windows"]}
    assert list(windows) == ["idle", "steady", "square_2s", "square_0.5s", "burst_0.3s"]
    for name in ("idle", "steady", "square_2s", "square_0.5s"):
        row = windows[name]
        for source in ("nvidia-smi power.draw", "nvidia-smi power.draw.instant"):
            cell = row["sources"][source]
            # The fake draws a constant 150 W: energy = 150 W x the window's length.
            assert cell["energy_j"] == pytest.approx(150.0 * row["duration_s"], rel=0.02)
            assert cell["coverage"] > 0.95
    assert set(result["sampler_cpu_pct"]) == {"nvidia-smi power.draw",
                                              "nvidia-smi power.draw.instant"}
    fit = result["fit"]
    assert fit["backend"] == "jax" and fit["epochs"] == 1
    for source in ("nvidia-smi power.draw", "nvidia-smi power.draw.instant"):
        assert len(fit["sources"][source]["energy_j"]) == 1
        assert all(e > 0 for e in fit["sources"][source]["energy_j"])
