"""Issue 33: studies written as Keras examples write them (examples/keras-examples/: the
"Simple MNIST convnet" classifier and the "Timeseries forecasting for weather prediction"
regression, each with its own train/validation splits) sweep as they are; and a sweep of
a billion runs starts its first run at once and stops on the first Ctrl-C."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "keras-examples"


def sweep_cmd(config: Path, sweep_dir: Path) -> list[str]:
    return [sys.executable, "-m", "greenscreen_pipeline", "sweep", "local", "--config",
            str(config), "--sweep-dir", str(sweep_dir)]


def sweep_example(name: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """Copies the example to tmp_path (nothing is written next to the repository's copy)
    and sweeps it as a user would; returns the finished process and its sweep folder."""
    folder = shutil.copytree(EXAMPLES / name, tmp_path / name)
    out = tmp_path / "sweep"
    done = subprocess.run(sweep_cmd(folder / "config.yaml", out), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "probed your code with run 000's configuration in " in done.stdout
    assert "no test split: runs are evaluated on the validation split" in done.stdout
    return done, out


def results(out: Path) -> list[dict]:
    folders = sorted(p for p in out.iterdir() if p.name.isdigit())
    assert folders
    return [json.loads((p / "results.json").read_text()) for p in folders]


def test_every_example_names_its_run_command_and_keeps_its_own_splits():
    for name in ("mnist-convnet", "weather-forecast"):
        config = yaml.safe_load((EXAMPLES / name / "config.yaml").read_text())
        assert config["settings"]["epochs"] == 1 and config["settings"]["runs"] <= 2
        readme = (EXAMPLES / "README.md").read_text()
        assert f"./greenscreen.sh --config examples/keras-examples/{name}/config.yaml" in readme


@pytest.mark.backends("tensorflow")  # ~35 s under JAX on 2 cores: the regression covers it
def test_the_mnist_convnet_example_sweeps_and_is_evaluated_on_its_validation_split(
        fake_smi, tmp_path):
    done, out = sweep_example("mnist-convnet", tmp_path)
    assert "(8, 8, 1)" in done.stdout  # the example's channel axis, added by the dataset
    for record in results(out):
        assert record["evaluated_on"] == "validation"
        assert record["objective"]["name"] == "val_accuracy"
        assert record["objective"]["split"] == "validation"
        assert 0 <= record["test_accuracy"] <= 1
        confusion = record["confusion_matrix"]  # the validation split's 360 samples
        assert len(confusion) == 10 and sum(map(sum, confusion)) == 360
    params = [yaml.safe_load((out / f"{i:03d}" / "parameters.yaml").read_text())
              for i in range(2)]
    assert all(0.2 <= p["dropout"] <= 0.5 for p in params)  # your own range, drawn per run
    assert {p["filters"] for p in params} == {16, 8}


@pytest.mark.backends("tensorflow", "jax")  # your own splits, a regression: any backend
def test_the_weather_forecast_regression_sweeps_ranked_by_its_validation_mae(
        fake_smi, tmp_path):
    done, out = sweep_example("weather-forecast", tmp_path)
    assert "1 target value(s) per sample" in done.stdout and " mae " in done.stdout
    for record in results(out):
        assert record["evaluated_on"] == "validation"
        objective = record["objective"]
        assert objective["name"] == "val_mae" and objective["mode"] == "min"
        assert objective["loss"] == "mse" and objective["split"] == "validation"
        assert math.isfinite(objective["value"]) and objective["value"] >= 0
        assert objective["value"] == pytest.approx(record["test_metrics"]["test_mae"])
        assert record["test_accuracy"] is None and record["confusion_matrix"] is None


HUGE = """settings: {runs: 1000000000, epochs: 1, seed: 3, energy_source: nvidia-smi}
configuration:
  dataset: {values: [digits]}
  model: {values: [ffnn]}
  batch_size: {values: [64]}
  lr: {values: [0.01]}
"""


def run_status(out: Path) -> str:
    try:
        return json.loads((out / "000" / "status.json").read_text()).get("status", "")
    except (OSError, ValueError):  # not written yet, or half written
        return ""


def test_a_billion_runs_start_at_once_and_the_first_ctrl_c_stops_them(fake_smi, tmp_path):
    """Issue 33 item 7: the sweep never lists every run index up front (a billion of them
    would take minutes and gigabytes); its first run starts at once and the first Ctrl-C
    stops it, as for a sweep of a few runs."""
    config, out = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(HUGE)
    proc = subprocess.Popen(sweep_cmd(config, out), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while run_status(out) not in ("running", "done"):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "run 000 did not start within 120 s"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # one Ctrl-C in a terminal
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stderr[-3000:]  # errors.Interrupted
    assert "stopping; runs in flight are kept as interrupted" in stderr
    assert "stopped with " in stderr and "/1000000000 runs done" in stderr
    assert "MemoryError" not in stderr and "Traceback" not in stderr
    assert "sweep of 1000000000 runs" in stdout
    runs = [p for p in out.iterdir() if p.name.isdigit()]
    assert 1 <= len(runs) <= 3  # no folder or claim per run up front, nor after the stop
    assert len(list(out.glob(".claims/*"))) <= 3
