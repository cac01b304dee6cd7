"""When runs fail (issue 33): the console says why and where, a sweep whose runs all fail
the same way stops, `--retry-failed` trains them again, and a checkpoint that cannot be
loaded is set aside instead of failing the run for good."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from greenscreen_pipeline import space
from greenscreen_pipeline.run.execute import reason_line
from greenscreen_pipeline.runfolder import RunFolder

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
settings: {runs: 5, epochs: 1, seed: 7, energy_source: nvidia-smi}
configuration:
  dataset: {values: ["mydata:load"]}
  model: {values: [ffnn]}
  batch_size: {values: [32, 64]}
"""
BROKEN = """import numpy as np


def load(params):
    x = np.random.default_rng(0).random((120, 8, 8, 1)).astype("float32")
    raise ValueError(f"my data is broken ({len(x)} samples)")
"""
FIXED = """import numpy as np


def load(params):
    rng = np.random.default_rng(0)
    return rng.random((120, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 120)
"""


def sweep(config, out, *flags):
    return subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "sweep", "local",
                           "--config", str(config), "--sweep-dir", str(out), "--no-probe", *flags],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_runs_failing_alike_stop_the_sweep_and_retry_failed_trains_them(fake_smi, tmp_path):
    (tmp_path / "mydata.py").write_text(BROKEN)
    config, out = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(CONFIG)
    first = sweep(config, out)
    assert first.returncode == 1, first.stderr
    # Why and where, on the console, run by run.
    assert "run 000 failed: ValueError: my data is broken (120 samples)" in first.stdout
    assert f"({tmp_path / 'mydata.py'}:6)" in first.stdout
    # Three alike (the number in the message aside) stop it; what is left is not trained.
    assert "runs 000, 001, 002 failed one after another with the same error" in first.stderr
    assert "--retry-failed" in first.stderr
    # one worker, whose run has just failed: no run in flight to speak of (a review)
    assert "stopping: runs failed one after another\n" in first.stderr
    states = [RunFolder.of(out, i).state() for i in range(5)]
    assert states[:3] == ["failed"] * 3 and "done" not in states
    again = sweep(config, out)  # without the flag, failed runs are kept
    assert "run 000" in again.stdout and "kept" in again.stdout
    (tmp_path / "mydata.py").write_text(FIXED)
    retried = sweep(config, out, "--retry-failed")
    assert retried.returncode == 0, retried.stderr
    assert "run 000 failed before (ValueError: my data is broken" in retried.stdout
    assert [RunFolder.of(out, i).state() for i in range(5)] == ["done"] * 5


def test_a_checkpoint_that_cannot_be_loaded_is_set_aside_and_the_run_starts_again(
        fake_smi, tmp_path):
    (tmp_path / "mydata.py").write_text(FIXED)
    config, out = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(CONFIG.replace("runs: 5", "runs: 1").replace("epochs: 1", "epochs: 2"))
    folder = out / "000"
    broken = folder / "checkpoint" / "epoch-00001"
    broken.mkdir(parents=True)
    (broken / "model.weights.h5").write_bytes(b"\0" * 4096)
    (folder / "checkpoint" / "latest.json").write_text(
        json.dumps({"epochs_done": 1, "dir": "epoch-00001"}))
    (folder / "status.json").write_text(json.dumps({"status": "interrupted"}))
    result = sweep(config, out)
    assert result.returncode == 0, result.stderr
    run = RunFolder.of(out, 0)
    assert run.state() == "done"
    aside = list(folder.glob("checkpoint.unreadable-*"))
    assert len(aside) == 1 and (aside[0] / "epoch-00001" / "model.weights.h5").exists()
    tail = run.attempts()[-1]["stderr_tail"]
    assert "model.weights.h5 cannot be loaded" in tail and "starts again from its first" in tail
    assert list(run.logs()["epoch"]) == [0, 1]


def test_an_error_in_a_layer_s_call_is_reported_by_its_own_line():
    """Keras wraps it: its message ends with the layer's arguments, one per line, and the
    error itself is printed in bold. status.json's reason (and the console's line) was
    "NotImplementedError: • training=True"; it is the error's own last line."""

    class Broken(keras.layers.Layer):
        def call(self, x, training=None):
            raise NotImplementedError("cannot blend\n\"dirichlet\" not implemented for 'Half'")

    with pytest.raises(NotImplementedError, match="Arguments received by") as caught:
        Broken()(np.zeros((2, 3), "float32"), training=True)  # Keras's wrapping, as it is
    assert reason_line(caught.value) == (
        "NotImplementedError: \"dirichlet\" not implemented for 'Half'")
    assert reason_line(ValueError("first\nsays why")) == "ValueError: says why"


def test_a_tensorflow_runtime_error_is_reported_by_its_message_not_its_graph_node():
    import tensorflow as tf

    @tf.function
    def infinite(x):
        return tf.debugging.check_numerics(x * float("inf"), "x went infinite")

    with pytest.raises(tf.errors.InvalidArgumentError, match="node CheckNumerics") as caught:
        infinite(tf.ones(2))
    assert reason_line(caught.value) == (
        "InvalidArgumentError: x went infinite : Tensor had Inf values")
    # An out-of-memory error's form: the node, a hint and the op follow the cause; and
    # JAX ends some messages with a link.
    oom = ("OOM when allocating tensor with shape[4096,4096]\n\t [[{{node MatMul}}]]\n"
           "Hint: If you want to see a list of allocated tensors when OOM happens, add "
           "report_tensor_allocations_upon_oom to RunOptions.\n [Op:__inference_step_9]")
    assert reason_line(MemoryError(oom)) == (
        "MemoryError: OOM when allocating tensor with shape[4096,4096]")
    assert reason_line(TypeError("Attempted boolean conversion of traced array\n"
                                 "See https://docs.jax.dev/en/latest/errors.html")) == (
        "TypeError: Attempted boolean conversion of traced array")


def test_a_skipped_run_s_line_says_why(tmp_path, capsys):
    """README: runs the pipeline cannot train "are skipped with the reason": on the
    console too, as a failed run's line, not only in status.json and the report."""
    from greenscreen_pipeline.executors.attempt import RunReport
    from greenscreen_pipeline.executors.progress import Progress

    folder = RunFolder.of(tmp_path, 1)
    folder.path.mkdir(parents=True)
    folder.write_status("skipped", reason="augmentation mixup with precision float16: "
                                          "PyTorch's CPU has no float16 Beta sampler")
    Progress(2).report(tmp_path, RunReport(1, folder.outcome(), "skipped", 0.1))
    out = capsys.readouterr().out
    assert "[1/2] run 001 skipped" in out
    assert "    run 001 skipped: augmentation mixup with precision float16: PyTorch's" in out


def test_a_kept_run_s_reason_is_whole_on_a_line_of_its_own(tmp_path, capsys):
    """A resumed sweep's kept runs: the reason was cut at 60 characters, mid-word, inside
    the status column ("kept (halving: ... among its peers a) acc n/a"), and an ETA of
    0m00s was given before this invocation had trained anything."""
    from greenscreen_pipeline.executors.attempt import train_claimed
    from greenscreen_pipeline.executors.progress import Progress

    reason = ("halving: stopped at epoch 1 of 3: not kept among its peers at that rung by "
              "(val_accuracy, energy so far)")
    folder = RunFolder.of(tmp_path, 1)
    folder.path.mkdir(parents=True)
    folder.write_status("stopped", reason=reason)
    (tmp_path / "config.yaml").write_text(
        f"settings: {{runs: 2, epochs: 3, sweep_dir: {tmp_path}}}\n"
        "configuration: {model: {values: [ffnn]}}\n")
    report = train_claimed(space.load(tmp_path / "config.yaml"), tmp_path, 1, 3)
    assert (report.note, report.wall_s) == ("kept", None)
    Progress(2).report(tmp_path, report)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[1/2] run 001 kept     acc n/a  energy n/a  total 0.0 J")
    assert "ETA" not in lines[0]
    assert lines[1] == f"    run 001 kept: it stopped ({reason})"


def test_a_data_pipeline_error_s_reason_is_its_cause_not_the_iterator_node():
    # a corrupt image's run said "UnknownError: [[IteratorGetNext]] [Op:__inference_...]"
    message = ("Traceback (most recent call last):\n\n  File \"x.py\", line 3, in load\n"
               "    raise DatasetError(...)\n\nDatasetError: data_bad/class2/img99.png cannot "
               "be read as an image (PIL: cannot identify image file)\n\n\n"
               "\t [[{{node PyFunc}}]]\n"
               "\t [[IteratorGetNext]] [Op:__inference_multi_step_on_iterator_1714]")
    assert reason_line(RuntimeError(message)) == (
        "RuntimeError: DatasetError: data_bad/class2/img99.png cannot be read as an image "
        "(PIL: cannot identify image file)")
