"""Faults a hunt found in resuming a sweep, each reproduced with real processes and signals.

1. A SIGTERM or SIGINT that reached a run between its epoch's logs.csv row and the epoch's
   checkpoint (latest.json) made the resume train that epoch again and overwrite its row;
   the attempts in summary.json overlapped. The stop is now held until the checkpoint.
2. A sweep folder was resumed with other settings.epochs (or loss, objective, your own
   loop) without a word, mixing runs of other lengths in one ranking.
3. A resumed run's rung record holds the energy of every attempt so far (it did: checked).

The stop of (1) is sent by the run's own model: a layer of the config's model function
(config.yaml "module:function", your own model) sends its process the signal while the
epoch's checkpoint saves its weights, which is exactly between the row and latest.json.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from greenscreen_pipeline import manifest, space
from greenscreen_pipeline.runfolder import RunFolder, Unreadable

ROOT = Path(__file__).resolve().parents[1]

# Your own model, with a layer that stops its own process during the second checkpoint
# of the process (epoch 1's), once: when the file $TRIPWIRE names holds the signal.
TRIPWIRE = '''
import os
import signal

import keras

SAVES = [0]


class Tripwire(keras.layers.Layer):
    def call(self, x):
        return x

    def save_own_variables(self, store):
        super().save_own_variables(store)
        SAVES[0] += 1
        armed = os.environ.get("TRIPWIRE", "")
        if SAVES[0] == 2 and armed and os.path.exists(armed):
            name = open(armed).read().strip()
            os.unlink(armed)
            os.kill(os.getpid(), getattr(signal, name))  # as Slurm, kill or Ctrl-C would

'''
MODEL = TRIPWIRE + '''


def model(input_shape, num_classes, params):
    inputs = keras.Input(input_shape)
    x = Tripwire()(keras.layers.Flatten()(inputs))
    x = keras.layers.Dense(32, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
'''

CONFIG = """
settings: {{runs: 1, epochs: {epochs}, seed: 5, energy_source: estimate{more}}}
configuration:
  model: {{values: ["tripwire:model"]}}
  batch_size: {{values: [64]}}
  lr: {{values: [0.01]}}
  optimizer: {{values: [SGD]}}
"""


def write_config(folder: Path, epochs: int, more: str = "") -> Path:
    (folder / "tripwire.py").write_text(MODEL)
    path = folder / "config.yaml"
    path.write_text(CONFIG.format(epochs=epochs, more=more))
    return path


def sweep(config: Path, out: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "sweep", "local",
                           "--config", str(config), "--sweep-dir", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def status(out: Path, i: int) -> dict:
    try:
        return RunFolder.of(out, i).outcome()
    except Unreadable:
        return {}


def rows(out: Path, i: int) -> list[dict]:
    with open(out / f"{i:03d}" / "logs.csv", newline="") as f:
        return list(csv.DictReader(f))


def assert_each_epoch_once_and_attempts_agree(out: Path, epochs: int) -> dict:
    """The invariant: every epoch has one row, each attempt's rows are the epochs
    summary.json says it trained, the next attempt starts where it ended, and no
    attempt's rows hold more energy than summary.json counts for it."""
    logged = rows(out, 0)
    summary = json.loads((out / "000" / "summary.json").read_text())
    assert [int(r["epoch"]) for r in logged] == list(range(epochs)), logged
    start = 0
    for k, attempt in enumerate(summary["attempts"], 1):
        mine = [r for r in logged if int(r["attempt"]) == k]
        assert attempt["first_epoch"] == start, summary["attempts"]
        assert [int(r["epoch"]) for r in mine] == \
            list(range(start, start + attempt["epochs"])), (k, summary["attempts"])
        assert sum(float(r["energy_j"]) for r in mine) <= attempt["energy_j"] + 1e-6
        start += attempt["epochs"]
    assert summary["energy_j"] == pytest.approx(sum(a["energy_j"] for a in summary["attempts"]))
    return summary


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT"])
def test_a_stop_between_an_epochs_row_and_its_checkpoint_trains_no_epoch_twice(tmp_path,
                                                                                stop):
    """Fault 1 (and 3): the stop comes while epoch 1's checkpoint is written, after its
    logs.csv row. The run ends once latest.json names epoch 1 (interrupted, not failed);
    the same command resumes at epoch 2, so no epoch is trained or logged twice. With
    halving (one run: its own peer), the rung at epoch 3, reached by the resumed attempt,
    records the energy of both attempts so far."""
    config = write_config(tmp_path, epochs=4, more=", early_stop: halving")
    out, armed = tmp_path / "sweep", tmp_path / "armed"
    armed.write_text(stop)
    first = sweep(config, out, {"TRIPWIRE": str(armed)})
    assert not armed.exists(), first.stdout + first.stderr  # the layer sent the signal
    assert status(out, 0)["status"] == "interrupted", (status(out, 0), first.stderr[-3000:])
    latest = json.loads((out / "000" / "checkpoint" / "latest.json").read_text())
    stopped_at = latest["epochs_done"], len(rows(out, 0))
    killed = json.loads((out / "000" / "summary.json").read_text())["attempts"][0]

    second = sweep(config, out)
    assert second.returncode == 0, second.stderr[-3000:]
    assert status(out, 0)["status"] == "done", status(out, 0)
    summary = assert_each_epoch_once_and_attempts_agree(out, 4)
    assert [(a["first_epoch"], a["epochs"]) for a in summary["attempts"]] == [(0, 2), (2, 2)]
    assert stopped_at == (2, 2)  # the stop waited for epoch 1's checkpoint: row and all
    assert summary["attempts"][0]["energy_j"] == pytest.approx(killed["energy_j"])

    rung1 = json.loads((out / "000" / "rungs" / "0001.json").read_text())
    rung3 = json.loads((out / "000" / "rungs" / "0003.json").read_text())
    first_attempt = summary["attempts"][0]["energy_j"]
    assert 0 < rung1["energy_j"] <= first_attempt  # recorded during the first attempt
    epoch_2 = float(rows(out, 0)[2]["energy_j"])  # the resumed attempt's first epoch
    assert rung3["energy_j"] >= first_attempt + epoch_2  # every attempt's energy so far


def record(config_text: str, folder: Path, out: Path) -> None:
    (folder / "loop.py").write_text("def train(params, callbacks):\n    return {}\n")
    path = folder / "config.yaml"
    path.write_text(config_text)
    manifest.record(space.load(path), out)


BASE = """
settings: {runs: 1, epochs: 3, seed: 5, energy_source: estimate}
configuration:
  model: {values: [ffnn]}
  lr: {values: [0.01]}
"""


@pytest.mark.parametrize("key, was, now", [
    ("epochs", "epochs: 3", "epochs: 5"),
    ("loss", "epochs: 3", "epochs: 3, loss: sparse_categorical_crossentropy"),
    ("objective", "epochs: 3", "epochs: 3, objective: val_loss"),
    ("train", "epochs: 3", "epochs: 3, train: 'loop:train'"),
])
def test_a_folder_is_not_resumed_with_settings_its_runs_trained_otherwise(tmp_path, key, was,
                                                                         now):
    """Fault 2: settings.epochs (and the loss, the objective, your own loop) are part of
    what a sweep is; a folder started with one value is refused with another, in one
    error naming the key path, both values and what to do."""
    out = tmp_path / "sweep"
    out.mkdir()
    record(BASE, tmp_path, out)
    with pytest.raises(manifest.OtherSweep) as refused:
        record(BASE.replace(was, now), tmp_path, out)
    message = str(refused.value)
    assert f"settings.{key}: " in message and "--sweep-dir" in message and "back" in message
    assert json.loads((out / "sweep.json").read_text())["settings"]["epochs"] == 3  # kept


def test_naming_the_default_objective_or_changing_what_may_change_is_accepted(tmp_path):
    """What resolves to the same training is no change (objective '' is val_accuracy for
    a classification loss); runs, the budget, final_epochs and the energy source may
    change between invocations, as before."""
    out = tmp_path / "sweep"
    out.mkdir()
    record(BASE, tmp_path, out)
    record(BASE.replace("epochs: 3", "epochs: 3, objective: val_accuracy, "
                        "objective_mode: max"), tmp_path, out)
    record(BASE.replace("runs: 1, epochs: 3, seed: 5, energy_source: estimate",
                        "runs: 4, epochs: 3, seed: 5, energy_source: auto, final_epochs: 2"),
           tmp_path, out)
    recorded = json.loads((out / "sweep.json").read_text())["settings"]
    assert recorded["runs"] == 4 and recorded["final_epochs"] == 2


def test_the_command_refuses_other_epochs_before_any_run_trains(tmp_path):
    """Fault 2 as users meet it: `sweep local --epochs 5` on a folder of 3-epoch runs
    exits 2 with the one error, and starts nothing."""
    out = tmp_path / "sweep"
    out.mkdir()
    record(BASE, tmp_path, out)
    result = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "sweep", "local",
                             "--config", str(tmp_path / "config.yaml"), "--sweep-dir",
                             str(out), "--epochs", "5"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "settings.epochs: 3 (this config: 5)" in result.stderr + result.stdout
    assert not (out / "000").exists()
