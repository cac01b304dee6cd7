"""Warm workers (issue 31): runs trained one after another in one process give the results
a fresh process gives; a worker is replaced when it should be; one process per run at a
time, enforced by the run's lock; a `kill -9` of the sweep loses and doubles nothing."""

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from test_pipeline_sweep import wait_for

from greenscreen_pipeline.executors.progress import failure
from greenscreen_pipeline.executors.stop import never
from greenscreen_pipeline.executors.workers import WorkerSlot
from greenscreen_pipeline.run import ownership
from greenscreen_pipeline.run.execute import (
    BUSY,
    DIVERGED,
    FAILED,
    Request,
    needs_own_process,
)
from greenscreen_pipeline.run.worker import Growth
from greenscreen_pipeline.runfolder import RunFolder

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
settings: {{runs: {runs}, epochs: {epochs}, seed: 7, energy_source: nvidia-smi,
            isolate_runs: {isolate}}}
configuration:
  model: {{values: [ffnn, small_cnn]}}
  batch_size: {{values: [64, 32]}}
  lr: {{values: [0.01, 0.05]}}
  optimizer: {{values: [SGD, Adam]}}
"""


def write_config(tmp_path, runs=2, epochs=1, isolate="false"):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(runs=runs, epochs=epochs, isolate=isolate))
    return str(path)


def train(slot, config, folder, configuration, epochs=2):
    """Trains `configuration` into `folder` in `slot`'s worker (the final run's path)."""
    return slot.train(Request(config, str(folder), 0, epochs, configuration), never())


def weights(folder):
    return keras.saving.load_model(Path(folder) / "model.keras").get_weights()


def test_a_runs_result_does_not_depend_on_what_its_worker_trained_before(fake_smi, tmp_path):
    config = write_config(tmp_path)
    target = {"model": "ffnn", "optimizer": "SGD", "lr": 0.01, "batch_size": 64}
    others = [{"model": "small_cnn", "optimizer": "Adam", "precision": "mixed_bfloat16"},
              {"model": "ffnn", "lr": 0.05, "batch_size": 32, "precision": "global_policy_float16",
               "optimizer": "SGD"},
              {"model": "small_cnn", "method": "pruned", "optimizer": "Adam",
               "augmentation": "mixup"}]
    first = WorkerSlot()
    try:
        assert train(first, config, tmp_path / "first", target).code == 0
    finally:
        first.close()
    later = WorkerSlot()
    try:
        for k, other in enumerate(others):  # global state each of them changes
            assert train(later, config, tmp_path / f"other{k}", other).code == 0
        assert train(later, config, tmp_path / "later", target).code == 0
        assert later.started == 1  # all four in one process
    finally:
        later.close()
    a, b = (json.loads((tmp_path / f / "results.json").read_text()) for f in ("first", "later"))
    assert a["test_metrics"] == b["test_metrics"]
    learned = ("loss", "accuracy", "val_loss", "val_accuracy")  # not the energy or times
    assert [a["history"][k] for k in learned] == [b["history"][k] for k in learned]
    assert all(np.array_equal(x, y) for x, y in zip(weights(tmp_path / "first"),
                                                    weights(tmp_path / "later")))
    assert a["timing"]["pid"] != b["timing"]["pid"]
    # The later run trained on the splits its worker loaded for the first of the others
    # (run/datacache.py): the same dataset, partitioning and seed, not loaded again.
    assert a["timing"]["data_cached"] is False and b["timing"]["data_cached"] is True
    others_cached = [json.loads((tmp_path / f"other{k}" / "results.json").read_text())
                     ["timing"]["data_cached"] for k in range(len(others))]
    assert others_cached == [False, True, True]


def test_the_cached_splits_cannot_be_changed_by_a_run():
    """A run that changed its arrays in place would change the next run's data: the cached
    splits are read-only, and a different key loads afresh."""
    from greenscreen_pipeline.run import datacache

    datacache.clear()
    splits, cached = datacache.built_in("digits", "", 32, "80-10-10", 7)
    again, cached_again = datacache.built_in("digits", "", 32, "80-10-10", 7)
    assert (cached, cached_again) == (False, True) and again is splits
    with pytest.raises(ValueError, match="read-only"):
        splits.x_train[0, 0, 0, 0] = 1.0
    other, cached_other = datacache.built_in("digits", "", 32, "60-20-20", 7)
    assert not cached_other and len(other.y_train) < len(splits.y_train)
    datacache.clear()


@pytest.mark.backends("tensorflow", "jax")
def test_a_worker_is_replaced_after_a_run_that_failed(fake_smi, tmp_path):
    config = write_config(tmp_path)
    slot = WorkerSlot()
    try:
        ok = {"model": "ffnn", "optimizer": "SGD", "lr": 0.01, "batch_size": 64}
        assert train(slot, config, tmp_path / "a", ok, epochs=1).code == 0
        # A loss that became NaN is a failed run in a sound process: the worker stays.
        # (lr 1e12 gave NaN in one epoch on TensorFlow but a finite loss on JAX; 1e30
        # gives NaN on both.)
        diverged = train(slot, config, tmp_path / "nan", {**ok, "lr": 1e30}, epochs=1)
        assert diverged.code == DIVERGED and diverged.retired is None
        assert "loss became nan" in diverged.stderr_tail.lower()
        outcome = RunFolder(tmp_path / "nan").outcome()  # said without a place: not your code
        assert failure(outcome) == outcome["reason"] and "became nan" in outcome["reason"]
        broken = train(slot, config, tmp_path / "b", {**ok, "model": "no_such_model"},
                       epochs=1)
        assert broken.code == FAILED and broken.retired == "its run failed"
        assert "no_such_model" in broken.stderr_tail
        assert train(slot, config, tmp_path / "c", ok, epochs=1).code == 0
        assert slot.started == 2  # a fresh worker after the failure
    finally:
        slot.close()
    pids = {json.loads((tmp_path / f / "results.json").read_text())["timing"]["pid"]
            for f in ("a", "c")}
    assert len(pids) == 2


def test_a_worker_retires_when_its_memory_has_grown_past_the_bound():
    growth = Growth(bound_mb=100)
    assert growth.exceeded(800, None) is None  # the first run sets the baseline
    assert growth.exceeded(880, 1000) is None
    assert "RSS grew by 150 MiB" in growth.exceeded(950, None)
    gpu = Growth(bound_mb=100)
    gpu.exceeded(800, 2000)
    assert "GPU memory grew by 500 MiB" in gpu.exceeded(800, 2500)


LEAKY_MODEL = """
import json
import os
import sys
import warnings

import keras
import numpy


def leaky(input_shape, num_classes, params):  # changes what clear_session leaves alone
    keras.config.set_epsilon(0.5)
    keras.config.set_image_data_format("channels_first")
    keras.config.set_max_steps_per_epoch(1)
    keras.config.set_floatx("float16")
    sys.path.append("/leaked/by/leaky")
    numpy.seterr(over="ignore")
    warnings.filterwarnings("ignore", message="leaked by leaky")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.run_functions_eagerly(True)
        tf.config.optimizer.set_jit(True)
        tf.config.experimental.enable_op_determinism()
        tf.debugging.enable_check_numerics()
        tf.config.experimental.enable_tensor_float_32_execution(False)
    elif keras.backend.backend() == "torch":
        import torch

        torch.set_default_dtype(torch.float64)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = True
        # TF32 through PyTorch's newer API: the legacy getter raises after it (a worker
        # that read it died).
        torch.backends.cuda.matmul.fp32_precision = "tf32"
    else:
        import jax

        jax.config.update("jax_debug_nans", True)
        jax.config.update("jax_default_matmul_precision", "highest")
    return looks(input_shape, num_classes, params)


def switches():
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        from tensorflow.python.debug.lib import check_numerics_callback
        from tensorflow.python.framework import config

        return [tf.config.functions_run_eagerly(), tf.config.optimizer.get_jit(),
                config.is_op_determinism_enabled(),
                hasattr(check_numerics_callback._state, "check_numerics_callback"),
                tf.config.experimental.tensor_float_32_execution_enabled()]
    if keras.backend.backend() == "torch":
        import torch

        return [str(torch.get_default_dtype()), torch.are_deterministic_algorithms_enabled(),
                torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.benchmark]
    import jax

    return [jax.config.jax_debug_nans, jax.config.jax_default_matmul_precision]


def looks(input_shape, num_classes, params):
    seen = {name: getattr(keras.config, name)() for name in
            ("epsilon", "image_data_format", "max_steps_per_epoch", "floatx")}
    seen["switches"] = switches()
    seen["leaked_path"] = "/leaked/by/leaky" in sys.path
    seen["numpy_over"] = numpy.geterr()["over"]
    seen["leaked_filter"] = any(f[1] is not None and f[1].pattern == "leaked by leaky"
                                for f in warnings.filters)
    with open(os.path.join(os.path.dirname(__file__), "seen.json"), "w") as fh:
        json.dump(seen, fh)
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
"""


@pytest.mark.backends("tensorflow", "jax", "torch")
def test_keras_settings_your_code_changes_are_put_back_before_the_next_run(fake_smi,
                                                                             tmp_path):
    """Keras keeps epsilon, the image data format, max_steps_per_epoch and the float type
    outside the state clear_session clears, and the backend has switches of its own
    (TensorFlow's eager functions, XLA autoclustering, op determinism, NaN checks and TF32;
    JAX's config; PyTorch's default dtype, determinism, TF32 and cuDNN benchmark); `sys.path` is the
    process's: a run of your code that changes them does not hand them to the next run in
    its worker, which sees a new process's values, and so are the warning filters and
    NumPy's floating-point error handling."""
    (tmp_path / "model.py").write_text(LEAKY_MODEL)
    config = tmp_path / "config.yaml"
    # "auto": the meter imports NVML's bindings (where installed) as it looks for a GPU.
    config.write_text("settings: {runs: 2, epochs: 1, seed: 7, energy_source: auto}\n"
                      "configuration:\n  model: {values: ['model:leaky', 'model:looks']}\n"
                      "  optimizer: {values: [SGD]}\n")
    slot = WorkerSlot()
    try:  # leaky first: what any run imports (its data's scikit-learn, its meter's NVML
        # bindings) the worker imported before it, so leaky's changes are put back
        for name in ("leaky", "looks"):
            ending = train(slot, str(config), tmp_path / name, {"model": f"model:{name}"},
                           epochs=1)
            assert ending.code == 0 and ending.retired is None
        assert slot.started == 1  # put back, not a new worker: leaky imported nothing new
    finally:
        slot.close()
    assert json.loads((tmp_path / "seen.json").read_text()) == {
        "epsilon": 1e-7, "image_data_format": "channels_last", "max_steps_per_epoch": None,
        "floatx": "float32",
        "switches": {"tensorflow": [False, "", False, False, True], "jax": [False, None],
                     "torch": ["torch.float32", False, "none", False]}[
                         keras.backend.backend()],
        "leaked_path": False, "leaked_filter": False, "numpy_over": "warn"}
    assert len(json.loads((tmp_path / "leaky" / "results.json").read_text())
               ["history"]["loss"]) == 1


SETTLED_MODEL = """
import json
import os
import sys

import keras


def _record(input_shape, num_classes, calls=0):
    with open(os.path.join(os.path.dirname(__file__), "seen.jsonl"), "a") as fh:
        fh.write(json.dumps([keras.config.epsilon(), calls]) + "\\n")
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))


def plain(input_shape, num_classes, params):
    return _record(input_shape, num_classes)


def settled(input_shape, num_classes, params):
    sys.path.insert(0, params["packages"])
    import settler  # sets epsilon when imported, and counts its calls

    settler.CALLS += 1
    return _record(input_shape, num_classes, settler.CALLS)
"""


def test_your_module_outside_the_config_s_folder_is_imported_afresh_for_each_run(
        fake_smi, tmp_path):
    """A module of yours on a folder of your own (not the config's, not installed) sets
    epsilon when imported and counts its calls at module level. It was kept from run to
    run: its count went on (a model sized by it changed with the worker's history) and
    the worker retired for the setting. It is imported afresh for each run, as in a new
    process: each run sees epsilon set and a count of 1, in one worker."""
    packages, folder = tmp_path / "packages", tmp_path / "config"
    packages.mkdir()
    folder.mkdir()
    (packages / "settler.py").write_text(
        "import keras\nkeras.config.set_epsilon(0.001)\nCALLS = 0\n")
    (folder / "model.py").write_text(SETTLED_MODEL)
    config = folder / "config.yaml"
    config.write_text("settings: {runs: 2, epochs: 1, seed: 7, energy_source: nvidia-smi}\n"
                      "configuration:\n  model: {values: ['model:plain', 'model:settled']}\n"
                      f"  packages: {{values: ['{packages}']}}\n")
    slot, retired = WorkerSlot(), []
    try:
        for k, name in enumerate(("plain", "settled", "settled")):
            ending = train(slot, str(config), tmp_path / f"run{k}",
                           {"model": f"model:{name}", "packages": str(packages)}, epochs=1)
            assert ending.code == 0
            retired.append(ending.retired)
        assert slot.started == 1 and retired == [None, None, None]
    finally:
        slot.close()
    seen = [json.loads(line) for line in (folder / "seen.jsonl").read_text().splitlines()]
    assert seen == [[1e-7, 0], [1e-3, 1], [1e-3, 1]]


def test_the_float_type_a_runs_precision_sets_is_no_reason_to_retire(tmp_path, monkeypatch):
    """A float16 run's float type is the pipeline's own change, put back before the next
    run: with a package the run imported (your data function's, say), the worker stays;
    a change the run's code made beside it still retires it."""
    from greenscreen_pipeline.run import recipe, reset

    (tmp_path / "first_imported_here").mkdir()
    (tmp_path / "first_imported_here" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    reset.reset_keras()
    before = reset.packages()
    try:
        recipe.set_precision("float16")
        import first_imported_here  # noqa: F401

        assert reset.retire_reason(before, None) is None
        keras.config.set_epsilon(0.5)
        assert "changed epsilon and imported first_imported_here" in \
            reset.retire_reason(before, None)
    finally:
        sys.modules.pop("first_imported_here", None)
        reset.reset_keras()
    assert keras.config.floatx() == "float32" and keras.config.epsilon() == 1e-7


def test_settings_a_worker_cannot_reset_get_a_process_of_their_own():
    assert needs_own_process({"precision": "float64"}, "jax")
    assert needs_own_process({"precision": "float64"}, "tensorflow") is None
    assert needs_own_process({"precision": "float32"}, "jax") is None
    # skipped by the pipeline's rules whatever the mode: in the worker, no process for it
    assert needs_own_process({"precision": "float64", "augmentation": "random"}, "jax") is None


def test_the_sweeps_own_process_imports_no_backend():
    """Only workers import the backend (seconds of CPU each): the sweep's process, which
    proposes, hands out and halves runs on every executor, imports none of it."""
    modules = ["greenscreen_pipeline.cli", "greenscreen_pipeline.commands",
               "greenscreen_pipeline.executors.local", "greenscreen_pipeline.executors.slurm",
               "greenscreen_pipeline.executors.parked", "greenscreen_pipeline.search.propose"]
    code = (f"import sys\nfor m in {modules!r}: __import__(m)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'keras', 'tensorflow', 'jax', 'torch'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.backends("jax")
def test_float64_on_jax_trains_in_its_own_process_and_computes_in_float64(fake_smi, tmp_path):
    from greenscreen_pipeline import space
    from greenscreen_pipeline.executors.attempt import train_attempt

    config = space.load(write_config(tmp_path))
    slot = WorkerSlot()
    try:
        folder = RunFolder(tmp_path / "x64")
        cfg = {**config.run(0), "precision": "float64"}
        request = Request(config.path, str(folder.path), 0, 1, cfg)
        assert train_attempt(config, folder, request, cfg, None, never(), slot) == 0
        assert slot.started == 0  # the warm worker was not used
        # A float64 run the pipeline's rules skip is skipped in the warm worker, with the
        # rule's reason, not in a process started for JAX's 64-bit mode.
        skipped = RunFolder(tmp_path / "x64-random")
        cfg = {**cfg, "augmentation": "random"}
        request = Request(config.path, str(skipped.path), 0, 1, cfg)
        assert train_attempt(config, skipped, request, cfg, None, never(), slot) == 0
        assert slot.started == 1
    finally:
        slot.close()
    assert folder.outcome()["status"] == "done"  # not skipped: 64-bit mode was on
    assert skipped.outcome()["status"] == "skipped"
    assert "augmentation random with precision float64" in skipped.outcome()["reason"]


def test_the_run_lock_lets_one_process_train_a_run(tmp_path):
    folder = tmp_path / "000"
    with ownership.Held(folder):
        assert ownership.locked(folder)
        assert ownership.holder(folder) == os.getpid()
        with pytest.raises(ownership.Busy, match=str(os.getpid())):
            ownership.Held(folder)
    assert not ownership.locked(folder)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from greenscreen_pipeline.run import ownership; "
        f"ownership.Held(__import__('pathlib').Path({str(folder)!r})); print('held', "
        "flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert ownership.locked(folder) and ownership.holder(folder) == holder.pid
    finally:
        holder.kill()  # the kernel releases a dead process's lock
        holder.wait()
    assert not ownership.locked(folder)


def test_a_worker_does_not_train_a_run_another_process_trains(fake_smi, tmp_path):
    config = write_config(tmp_path)
    slot = WorkerSlot()
    try:
        with ownership.Held(tmp_path / "busy"):
            ending = train(slot, config, tmp_path / "busy", {"model": "ffnn"}, epochs=1)
        assert ending.code == BUSY and ending.retired is None
        assert not (tmp_path / "busy" / "logs.csv").exists()
    finally:
        slot.close()


def sweep(config, out, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "greenscreen_pipeline", "sweep", "local",
                             "--config", config, "--sweep-dir", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def epochs_logged(out):
    try:
        return [int(r["epoch"]) for r in csv.DictReader(open(out / "000" / "logs.csv"))]
    except (OSError, ValueError, KeyError):
        return []


def test_kill_9_of_the_sweep_alone_ends_with_each_epoch_once_and_both_attempts(
        fake_smi, tmp_path):
    """The sweep alone is SIGKILLed (the OOM killer, a closed terminal's kill), not its
    worker: the worker stops with it, as on Ctrl-C, and the rerun resumes the run."""
    config, out = write_config(tmp_path, runs=1, epochs=12), tmp_path / "sweep"
    first = sweep(config, out)
    wait_for(lambda: len(epochs_logged(out)) >= 1)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    folder = RunFolder.of(out, 0)
    wait_for(lambda: not ownership.locked(folder.path), timeout=60)  # it did not train on
    again = sweep(config, out)
    stdout, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr
    assert folder.outcome()["status"] == "done"
    assert epochs_logged(out) == list(range(12))
    summary = json.loads((folder.path / "summary.json").read_text())
    assert len(summary["attempts"]) == 2  # the killed sweep's attempt is counted too
    assert summary["energy_j"] == pytest.approx(sum(a["energy_j"] for a in summary["attempts"]))
    assert all(a["energy_j"] > 0 for a in summary["attempts"])


def test_a_rerun_waits_for_a_run_that_a_gone_sweeps_process_still_trains(fake_smi, tmp_path):
    """The claim's holder (a sweep) is dead but a process still holds the run's lock: the
    rerun waits for it to let go instead of training the run at the same time."""
    config, out = write_config(tmp_path, runs=1), tmp_path / "sweep"
    dead = subprocess.Popen(["true"])
    dead.wait()
    (out / ".claims").mkdir(parents=True)
    (out / ".claims" / "000").write_text(json.dumps(
        {"pid": dead.pid, "host": __import__("socket").gethostname(), "time": 0}))
    # The orphan lets go once the sweep says it waits (an event, not a time: a loaded
    # machine may take longer than any fixed hold to start the sweep).
    orphan = subprocess.Popen([sys.executable, "-c", (
        "import pathlib, sys; from greenscreen_pipeline.run import ownership; "
        f"h = ownership.Held(pathlib.Path({str(out / '000')!r})); print('held', flush=True); "
        "sys.stdin.readline(); h.release(); print('released', flush=True); sys.stdin.read()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    said = []
    try:
        assert orphan.stdout.readline().strip() == "held"
        proc = sweep(config, out)
        for line in proc.stderr:  # until the sweep says it waits for the orphan
            said.append(line)
            if "waiting for it to stop" in line:
                break
        orphan.stdin.write("let go\n")
        orphan.stdin.flush()
        assert orphan.stdout.readline().strip() == "released"
        stdout, rest = proc.communicate(timeout=600)
    finally:
        orphan.kill()
        orphan.wait()
    stderr = "".join(said) + rest
    assert proc.returncode == 0, stderr
    assert "still being trained by pid" in stderr and "waiting for it to stop" in stderr
    assert RunFolder.of(out, 0).outcome()["status"] == "done"
    assert len(RunFolder.of(out, 0).attempts()) == 1


def test_isolate_runs_trains_each_run_in_a_fresh_process(fake_smi, tmp_path):
    config, out = write_config(tmp_path, runs=2, isolate="true"), tmp_path / "sweep"
    proc = sweep(config, out)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    pids = [json.loads((out / f"{i:03d}" / "results.json").read_text())["timing"]["pid"]
            for i in range(2)]
    assert pids[0] != pids[1]
    assert all("worker" not in e for i in range(2)  # no warm worker: no worker memory
               for e in RunFolder.of(out, i).attempts())
    (tmp_path / "w").mkdir()
    warm, out2 = write_config(tmp_path / "w", runs=2), tmp_path / "warm"
    Path(warm).write_text(Path(warm).read_text().replace(
        "isolate_runs: false", "isolate_runs: false, final_epochs: 1, final_seeds: 1"))
    done = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "all", "local",
                           "--config", warm, "--sweep-dir", str(out2), "--out",
                           str(tmp_path / "r.pdf")], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    pids = [json.loads((folder / "results.json").read_text())["timing"]["pid"]
            for folder in (out2 / "000", out2 / "001", out2 / "final")]
    # One warm worker trained both runs and then the final run (`all`): it was started
    # by the main thread, so it outlived the sweep's slot thread.
    assert pids[0] == pids[1] == pids[2]
    # Each attempt records the worker's memory after it: its growth over its runs.
    ends = [RunFolder(folder).attempts()[-1] for folder in (out2 / "000", out2 / "001")]
    assert [e["worker"]["pid"] for e in ends] == pids[:2]
    assert all(e["worker"]["rss_mb"] > 100 and e["worker"]["gpu_mb"] is None for e in ends)


def test_a_resumed_run_trains_what_its_first_attempt_recorded(tmp_path):
    """A run started under another visiting order (an older greenscreen) resumes with the
    configuration its parameters.yaml recorded, not with what run i would be drawn as now;
    a dimension recorded as n/a (your data decided it) is drawn as usual."""
    import yaml

    from greenscreen_pipeline import space
    from greenscreen_pipeline.run.execute import run_configuration

    config = space.load(write_config(tmp_path, runs=4))
    folder = RunFolder.of(tmp_path / "sweep", 3)
    drawn = config.run(3)
    assert run_configuration(folder, config, 3) == drawn  # nothing started: drawn
    started = {**drawn, "lr": 0.05 if drawn["lr"] != 0.05 else 0.01, "run": 3, "seed": 7}
    folder.path.mkdir(parents=True)
    (folder.path / "parameters.yaml").write_text(yaml.safe_dump(started))
    assert run_configuration(folder, config, 3) == {d: started[d] for d in config.space}
    (folder.path / "parameters.yaml").write_text(yaml.safe_dump({**started,
                                                                 "batch_size": "n/a"}))
    got = run_configuration(folder, config, 3)
    assert got["batch_size"] == drawn["batch_size"] and got["lr"] == started["lr"]


def test_the_modules_forgotten_are_yours_not_a_package_on_the_path_nor_compiled(
        tmp_path, monkeypatch):
    """Everything not installed was dropped between runs: a package on PYTHONPATH (as
    module systems provide them) was imported twice, and a compiled one cannot be
    (pybind11: "type ... is already registered"), so a worker's second run failed."""
    from greenscreen_pipeline.run import reset

    on_path, added, cwd = tmp_path / "pythonpath", tmp_path / "added", tmp_path / "cwd"
    for folder, name in ((on_path, "theirs"), (added, "mine_added"), (cwd, "mine_here")):
        folder.mkdir()
        (folder / f"{name}.py").write_text("STATE = []\n")
    (cwd / "compiled.so").write_bytes(b"")  # never imported: only its path is judged
    monkeypatch.syspath_prepend(str(on_path))
    monkeypatch.syspath_prepend(str(cwd))
    monkeypatch.chdir(cwd)
    state = reset.ProcessState()  # the worker's start: PYTHONPATH already on sys.path
    import types

    import mine_here  # noqa: F401
    import theirs  # noqa: F401

    sys.modules["compiled"] = types.ModuleType("compiled")
    sys.modules["compiled"].__file__ = str(cwd / "compiled.so")  # in a folder of yours
    sys.path.insert(0, str(added))  # your code adds a folder during its run
    import mine_added  # noqa: F401

    try:
        assert sorted(state.forget_own(str(tmp_path / "config"))) == ["mine_added", "mine_here"]
        assert "theirs" in sys.modules and "compiled" in sys.modules
    finally:
        for name in ("mine_here", "mine_added", "theirs", "compiled"):
            sys.modules.pop(name, None)
        sys.path.remove(str(added))
