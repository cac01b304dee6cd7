"""The energy-aware search in a real sweep (issue 25): settings, pareto batches, halving."""

import subprocess
import sys
from pathlib import Path

import pytest

from greenscreen_pipeline import manifest, space

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
settings: {{runs: {runs}, epochs: {epochs}, seed: 7, energy_source: nvidia-smi{extra}}}
configuration:
  model: {{values: [ffnn]}}
  batch_size: {{values: [64, 128]}}
  lr: {{values: [0.001, 0.01, 0.05, 0.2]}}
  optimizer: {{values: [SGD, Adam]}}
"""
PARETO = ", search: pareto, early_stop: halving, halving_eta: 3"


def make_config(tmp_path, runs=8, epochs=3, extra=PARETO, name="config.yaml"):
    path = tmp_path / name
    path.write_text(CONFIG.format(runs=runs, epochs=epochs, extra=extra))
    return path


def cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "greenscreen_pipeline", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("key, value, allowed", [
    ("search", "bayes", "random or pareto"), ("early_stop", "asha", "off or halving"),
    ("halving_eta", 1, "an integer >= 2"), ("halving_eta", 2.5, "an integer >= 2"),
    ("search_sampler", "cmaes", "tpe, nsga2 or gp")])
def test_search_settings_are_checked(tmp_path, key, value, allowed):
    path = make_config(tmp_path, extra=f", {key}: {value}")
    with pytest.raises(space.ConfigError) as err:
        space.load(path)
    assert f"settings.{key}: got {value!r}; allowed: {allowed}" in str(err.value)


def test_search_defaults(tmp_path):
    s = space.load(make_config(tmp_path, extra="")).settings
    assert (s["search"], s["early_stop"], s["halving_eta"], s["search_sampler"]) == (
        "random", "off", 3, "tpe")


def test_a_random_sweep_is_not_resumed_as_pareto(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    manifest.record(space.load(make_config(tmp_path, extra="")), sweep, 2)
    with pytest.raises(manifest.OtherSweep, match="started with search: random, "
                       "early_stop: off; this config says search: pareto"):
        manifest.record(space.load(make_config(tmp_path)), sweep, 2)
    pareto = tmp_path / "pareto"
    pareto.mkdir()
    manifest.record(space.load(make_config(tmp_path)), pareto, 2)
    manifest.record(space.load(make_config(tmp_path)), pareto, 2)  # the same: resumes
    assert manifest.batch_size(pareto) == 2
    with pytest.raises(manifest.OtherSweep, match="pass --workers 2"):
        manifest.record(space.load(make_config(tmp_path)), pareto, 3)


@pytest.mark.parametrize("executor", ["slurm", "ray"])
def test_other_executors_refuse_the_search(tmp_path, executor):
    config = make_config(tmp_path)
    done = cli("sweep", executor, "--config", config, "--sweep-dir", tmp_path / "s",
               *(["--dry-run"] if executor == "slurm" else []))
    assert done.returncode == 2, done.stderr
    assert "search: pareto, early_stop: halving run under `greenscreen sweep local`" in \
        done.stderr + done.stdout
    assert not (tmp_path / "s" / "sweep.json").exists()
