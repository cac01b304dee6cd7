"""A GPU whose compute processes nvidia-smi cannot list (a container: other PID namespaces
are invisible): a meter says "sharing unknown" instead of assuming it was alone, and the
local sweep, which knows which of its runs were on the GPU and when, splits the GPU's
energy evenly among them. Real processes and the fake nvidia-smi ("container": true)."""

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from conftest import UUID0, build_once, make_fake_smi, trace_energy
from test_callbacks import newest_readings, readings, sampling_bound

from greenscreen.meters import EnergyMeter
from greenscreen_pipeline import analysis, collect, ledger

ROOT = Path(__file__).resolve().parents[1]
POWER = {"base": 300.0, "amp": 60.0, "period": 2.0}
GPU = [{"uuid": UUID0, "name": "NVIDIA H200", "power": POWER}]
# 20 epochs, so that the two runs overlap for long whatever their start; a fifth of the
# digits to train on, so that each epoch is short.
SWEEP = """
settings: {runs: 2, epochs: 20, seed: 7, energy_source: nvidia-smi}
configuration:
  model: {values: [small_cnn]}
  batch_size: {values: [8]}
  partitioning: {values: ["20-10-70"]}
"""


def test_a_meter_that_sees_no_process_says_sharing_unknown(fake_smi):
    fake_smi.configure(GPU, container=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with EnergyMeter(source="nvidia-smi", interval=0.05) as meter:
            assert meter.wait_for_sample(10)
            time.sleep(1.5)  # the watcher's first poll, at start, has listed nothing
            with meter.window("w") as w:
                time.sleep(1.5)
                newest = newest_readings(meter)[0]  # before the window closes
            times = readings(meter)[0]
    assert w.source == "measured:nvidia-smi;attributed:sharing-unknown"
    assert w.shared_with == "unknown"
    assert w.components["gpu"].source == w.source
    # the whole device's energy, charged as measured: never a guessed share (to within
    # what its readings can miss of the trace: test_callbacks.sampling_bound)
    room = sampling_bound(times, w.t_start, w.t_end, newest, POWER)
    assert abs(w.energy_j - trace_energy(POWER, w.t_start, w.t_end)) <= room
    assert sum("not even this one" in str(c.message) for c in caught) == 1
    with EnergyMeter(source="nvidia-smi", interval=0.05, attribution="device") as meter:
        assert meter.wait_for_sample(10)
        with meter.window("w") as w:
            time.sleep(0.5)
    assert w.source == "measured:nvidia-smi"  # "device" charges the whole GPU by choice


def sweep(shared_root: Path, tmp_path: Path) -> tuple[Path, Path]:
    """--workers 2 on one GPU whose process list is empty, swept once per test run (both
    tests below read it): a copy of its config and sweep folder in `tmp_path`."""
    def build(folder: Path) -> None:
        fake, env = make_fake_smi(folder)
        fake.configure(GPU, container=True, register_callers={
            "dir": str(folder / "computing"), "sm": 50, "cmdline": "greenscreen_pipeline.run"})
        (folder / "config.yaml").write_text(SWEEP)
        env = {k: v for k, v in {**os.environ, **env}.items() if k != "CUDA_VISIBLE_DEVICES"}
        done = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "sweep", "local",
                               "--config", str(folder / "config.yaml"), "--sweep-dir",
                               str(folder / "sweep"), "--workers", "2"],
                              cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
        assert done.returncode == 0, done.stderr

    shared = build_once(shared_root, "invisible-gpu-sweep", build)
    config, out = tmp_path / "config.yaml", tmp_path / "sweep"
    shutil.copy(shared / "config.yaml", config)
    shutil.copytree(shared / "sweep", out)
    return config, out


def test_two_runs_on_an_invisible_gpu_are_split_evenly_by_the_sweep(shared_root, tmp_path):
    """--workers 2 on one GPU whose process list is empty: each run's meter charged itself
    the whole GPU (sharing unknown); the sweep's even split adds up to the device."""
    config, out = sweep(shared_root, tmp_path)
    summaries = [json.loads((out / f"{i:03d}" / "summary.json").read_text()) for i in (0, 1)]
    (a0, b0), (a1, b1) = [(a["t_start"], a["t_end"]) for s in summaries for a in s["attempts"]]
    assert min(b0, b1) > max(a0, a1)  # they did overlap
    truth = trace_energy(POWER, min(a0, a1), max(b0, b1))  # the GPU over the union
    for s in summaries:
        assert s["source"] == "measured:nvidia-smi;attributed:sharing-unknown"
    own = sum(s["energy_j"] for s in summaries)
    # Each run charged itself the whole GPU over its own window: the seconds they shared,
    # however many the two runs' starts left them, counted twice.
    both = trace_energy(POWER, max(a0, a1), min(b0, b1))  # the GPU while both ran
    assert own == pytest.approx(truth + both, rel=0.02)
    runs = collect.load_sweep(out)
    assert set(runs["source"]) == {"measured:nvidia-smi;attributed:even-split-by-sweep"}
    assert runs["energy_j"].sum() == pytest.approx(truth, rel=0.02)
    assert runs["energy_own_j"].sum() == pytest.approx(own)  # the runs' own figures kept
    assert (runs["shared_s"] > 0).all()
    assert set(ledger.shares(out)) == {"000", "001"}
    result = analysis.analyze(out)
    assert result["shared_devices"] and not result["sharing_unknown"]
    page1 = report_page1(config, out, tmp_path / "r.pdf")
    assert "split evenly among the runs on it at each moment" in page1


def test_without_the_sweep_s_meter_the_report_says_sharing_unknown(shared_root, tmp_path):
    """The same runs with the sweep's figures gone (as under Slurm or Ray, or one run
    measured by SMICallback on its own): their figures stay marked, and the report says
    the sharing is unknown."""
    config, out = sweep(shared_root, tmp_path)
    (out / ledger.FILE).unlink()
    runs = collect.load_sweep(out)
    assert set(runs["source"]) == {"measured:nvidia-smi;attributed:sharing-unknown"}
    result = analysis.analyze(out)
    assert result["sharing_unknown"] and not result["shared_devices"]
    assert "GPU sharing unknown" in analysis.summary_text(result)
    page1 = report_page1(config, out, tmp_path / "r.pdf")
    assert "GPU sharing unknown" in page1


def report_page1(config, out, pdf) -> str:
    """`greenscreen report` run on the sweep; the text of the PDF's first page."""
    from pypdf import PdfReader

    done = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "report", "--config",
                           str(config), "--sweep-dir", str(out), "--out", str(pdf)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return " ".join(PdfReader(str(pdf)).pages[0].extract_text().split())
