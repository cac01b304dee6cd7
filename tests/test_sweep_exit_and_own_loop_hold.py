"""A sweep none of whose runs finished exits 1 and says so (it exited 0 when the runs
failed with different errors: `sweep && analyze` went on); and your own training loop's
epoch end is held against a stop as the pipeline's own fit is: a SIGTERM between an
epoch's logs.csv row and its BackupAndRestore save no longer trains that epoch again."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from test_failing_runs import CONFIG as FAILING_CONFIG
from test_resume_hunt_faults import TRIPWIRE

ROOT = Path(__file__).resolve().parents[1]
CONFIG = FAILING_CONFIG.replace("runs: 5", "runs: 2")  # two runs of your data function
# Each run fails with its own error (another word: not a streak of alike failures), or,
# with FINISH, the second call trains. The calls are counted in a file next to this one.
DATA = """from pathlib import Path

import numpy as np

FINISH = {finish}


def load(params):
    calls = Path(__file__).with_name("calls")
    n = len(calls.read_text()) if calls.exists() else 0
    calls.write_text("x" * (n + 1))
    if FINISH and n == 1:
        rng = np.random.default_rng(0)
        return rng.random((120, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 120)
    raise [ValueError("my data is broken"), KeyError("no such column")][n % 2]
"""


def greenscreen(*args, cwd=ROOT, env=None):
    return subprocess.run([sys.executable, "-m", "greenscreen_pipeline", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def failing_sweep(tmp_path, finish: bool):
    (tmp_path / "mydata.py").write_text(DATA.format(finish=finish))
    config, out = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(CONFIG)
    return greenscreen("sweep", "local", "--config", str(config), "--sweep-dir", str(out),
                       "--no-probe"), out


def test_a_sweep_whose_runs_all_failed_differently_exits_1_and_says_so(fake_smi, tmp_path):
    result, out = failing_sweep(tmp_path, finish=False)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "run 000 failed: ValueError: my data is broken" in result.stdout
    assert "run 001 failed: KeyError: 'no such column'" in result.stdout  # two errors
    assert "failed one after another" not in result.stderr
    assert f"greenscreen: no run finished: 2 failed (see the reasons above); their " \
           f"folders are in {out.resolve()}/" in result.stderr


def test_a_sweep_where_one_run_finished_exits_0_and_counts_the_failed(fake_smi, tmp_path):
    result, out = failing_sweep(tmp_path, finish=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1/2 runs done, 1 failed; results in" in result.stdout
    assert "no run finished" not in result.stdout + result.stderr
    # a review: a run kept failed was said so, the way to train it again was not
    assert "; `greenscreen sweep --retry-failed` trains the failed runs again" in result.stdout


# Your own loop, whose model has a layer that stops its own process during the second
# weights save of the process (BackupAndRestore's, of epoch 1), once, when $TRIPWIRE's
# file names the signal: after epoch 1's logs.csv row, before its backup names epoch 1.
LOOP = TRIPWIRE + '''
import numpy as np


def train(params, callbacks):
    rng = np.random.default_rng(params["seed"])
    x = rng.normal(0.0, 1.0, (200, 4)).astype("float32")
    y = x.sum(axis=1)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1)(Tripwire()(inputs)))
    model.compile(keras.optimizers.SGD(0.01), "mse")
    history = model.fit(x, y, validation_split=0.25, epochs=params["epochs"], verbose=0,
                        callbacks=callbacks)
    return {"val_loss": history.history["val_loss"][-1]}
'''
OWN = """
settings: {runs: 1, epochs: 4, seed: 5, energy_source: estimate, train: "loop:train",
           objective: val_loss}
configuration:
  units: {values: [4]}
"""


def test_a_stop_during_your_loops_backup_save_trains_no_epoch_twice(tmp_path):
    (tmp_path / "loop.py").write_text(LOOP)
    config, out, armed = tmp_path / "config.yaml", tmp_path / "sweep", tmp_path / "armed"
    config.write_text(OWN)
    armed.write_text("SIGTERM")
    args = ("sweep", "local", "--config", str(config), "--sweep-dir", str(out))
    first = greenscreen(*args, env={"TRIPWIRE": str(armed)})
    assert not armed.exists(), first.stdout + first.stderr[-3000:]  # the signal was sent
    status = json.loads((out / "000" / "status.json").read_text())
    assert status["status"] == "interrupted", (status, first.stderr[-3000:])
    meta = out / "000" / "checkpoint" / "own" / "training_metadata.json"
    assert json.loads(meta.read_text())["epoch"] == 2  # epochs done: the stop waited for epoch 1

    second = greenscreen(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    with open(out / "000" / "logs.csv", newline="") as f:
        logged = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in logged] == [0, 1, 2, 3], logged  # each epoch once
    assert [int(r["attempt"]) for r in logged] == [1, 1, 2, 2], logged
    summary = json.loads((out / "000" / "summary.json").read_text())
    assert [(a["first_epoch"], a["epochs"]) for a in summary["attempts"]] == [(0, 2), (2, 2)]


def test_a_hold_a_run_left_ends_when_the_worker_puts_its_state_back():
    """A loop that caught a fault raised inside an epoch's hold (its backup's save failing)
    returned with the hold on: the worker's next run would only note a SIGTERM, not stop."""
    import signal
    import time

    import pytest

    from greenscreen_pipeline.run import interrupt, reset

    state = reset.ProcessState()
    before = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))
    try:
        interrupt.install()
        interrupt.hold()  # as HoldSignals left it
        state.restore()
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(2)  # the handler raises at once; this only bounds the wait
    finally:
        signal.signal(signal.SIGTERM, before[0])
        signal.signal(signal.SIGINT, before[1])
        interrupt.requested.clear()
        interrupt.unhold()


def test_a_stop_a_run_swallowed_is_no_reason_for_the_worker_to_ignore_the_next():
    """A SIGTERM handled during a run's evaluation, its KeyboardInterrupt swallowed there:
    the handler had set both signals to be ignored, the run ended done, and the worker
    ignored every later stop. It retires after such a run, and its state put back
    listens for the signals again."""
    import signal
    import time

    import pytest

    from greenscreen_pipeline.run import interrupt, reset, worker

    state = reset.ProcessState()
    before = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))
    try:
        interrupt.install()
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(2)
        except KeyboardInterrupt:
            pass  # swallowed, as a library's bare `except` would
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        assert worker.stop_requested() == "a stop (SIGTERM) came during its run"
        state.restore()
        assert worker.stop_requested() is None
        with pytest.raises(KeyboardInterrupt, match="SIGINT"):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(2)
    finally:
        signal.signal(signal.SIGTERM, before[0])
        signal.signal(signal.SIGINT, before[1])
        interrupt.requested.clear()
        interrupt.unhold()


# Your data function stopped by a SIGTERM that a library's bare `except:` swallows (Keras's
# TensorFlow ops.shape has one), then failing on what that left undone.
SWALLOWED = """import os, signal, time


def load(params):
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    except BaseException:
        pass
    raise TypeError("Failed to convert elements of (None, 64) to Tensor")
"""


def test_a_stop_a_library_swallowed_leaves_the_run_interrupted_not_failed(fake_smi, tmp_path):
    """The run was recorded failed (kept so on resume, trained again only with
    --retry-failed), though it was stopped, not broken (review, a SIGTERM mid-run)."""
    (tmp_path / "mydata.py").write_text(SWALLOWED)
    config, out = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(CONFIG.replace("runs: 2", "runs: 1"))
    result = greenscreen("sweep", "local", "--config", str(config), "--sweep-dir", str(out),
                         "--no-probe")
    assert "run 000 interrupted: it resumes when you run the same command again" \
        in result.stdout, result.stdout + result.stderr[-3000:]
    status = json.loads((out / "000" / "status.json").read_text())
    assert status["status"] == "interrupted"
    assert status["reason"].startswith("stopped by SIGTERM (then TypeError: Failed to convert")
