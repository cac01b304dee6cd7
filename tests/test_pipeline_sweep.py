"""The sweep as users run it: subprocesses, run folders, kills, NaN runs, resume."""

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from greenscreen_pipeline import space
from greenscreen_pipeline.run import cpus
from greenscreen_pipeline.runfolder import RunFolder, Unreadable

ROOT = Path(__file__).resolve().parents[1]
TINY = """
settings: {{runs: {runs}, epochs: {epochs}, seed: 7, energy_source: nvidia-smi}}
configuration:
  model: {{values: [ffnn]}}
  batch_size: {{values: [64]}}
  lr: {{values: {lr}}}
  optimizer: {{values: [SGD]}}
"""


def make_config(tmp_path, runs=3, lr="[0.01]", epochs=1):
    path = tmp_path / "config.yaml"
    path.write_text(TINY.format(runs=runs, lr=lr, epochs=epochs))
    return path


def sweep_cmd(config, sweep_dir, executor="local"):
    return [sys.executable, "-m", "greenscreen_pipeline", "sweep", executor, "--config",
            str(config), "--sweep-dir", str(sweep_dir)]


def status(sweep_dir, i):
    """The run's outcome as every stage reads it (RunFolder); {} while unreadable."""
    try:
        return RunFolder.of(sweep_dir, i).outcome()
    except Unreadable:
        return {}


def wait_for(predicate, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_sweep_writes_complete_run_folders(fake_smi, tmp_path):
    config, out = make_config(tmp_path, runs=2), tmp_path / "sweep"
    config.write_text(config.read_text().replace("seed: 7,", "seed: 7, country: FR,"))
    result = subprocess.run(sweep_cmd(config, out), cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "[2/2] run 001 done" in result.stdout and "ETA" in result.stdout
    for i in range(2):
        folder = out / f"{i:03d}"
        params = yaml.safe_load((folder / "parameters.yaml").read_text())
        summary = json.loads((folder / "summary.json").read_text())
        results = json.loads((folder / "results.json").read_text())
        assert params["n_parameters"] > 0 and params["flops_per_train_step"] > 0
        assert params["seed"] == 7 and "keras" in params["versions"]
        backend = params["versions"]["backend"]  # the backend and its version, in both files
        assert backend == "tensorflow" and params["versions"][backend]
        assert results["versions"] == params["versions"]
        assert summary["keras_backend"] == backend  # SMICallback records it too
        assert summary["backend_version"] == params["versions"][backend]
        assert 0 <= params["test_accuracy"] <= 1
        assert summary["source"] == "measured:nvidia-smi" and summary["energy_j"] > 0
        assert len(summary["attempts"]) == 1 and summary["attempts"][0]["ended"] == "completed"
        # the CO2 of settings.country, as the report's (it was the world average's)
        assert summary["carbon"]["intensity_g_per_kwh"] == pytest.approx(67.4, abs=0.05)
        assert "France" in summary["carbon"]["intensity_source"]
        assert results["test_accuracy"] == params["test_accuracy"]
        confusion = np.array(results["confusion_matrix"])  # rows: true class; columns: predicted
        assert confusion.shape == (10, 10) and np.trace(confusion) / confusion.sum() == \
            pytest.approx(results["test_accuracy"], abs=1e-6)
        assert status(out, i)["status"] == "done"
        header = (folder / "logs.csv").read_text().splitlines()[0]
        assert "energy_j" in header and "val_accuracy" in header
    assert params == {**params, **space.load(config).run(1)}


def rows(sweep_dir, i):
    return list(csv.DictReader(open(Path(sweep_dir) / f"{i:03d}" / "logs.csv")))


def start_sweep(config, out, **kwargs):
    return subprocess.Popen(sweep_cmd(config, out), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs)


def wait_for_epochs(out, i, n):
    wait_for(lambda: (Path(out) / f"{i:03d}" / "logs.csv").exists() and len(rows(out, i)) >= n)


def test_killed_sweep_resumes_from_its_checkpoint_and_keeps_every_joule(fake_smi, tmp_path):
    config, out = make_config(tmp_path, runs=1, epochs=14), tmp_path / "sweep"
    proc = start_sweep(config, out)
    try:
        wait_for_epochs(out, 0, 3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker, mid-epoch
        proc.wait()
    before = rows(out, 0)
    killed = json.loads((out / "000" / "summary.json").read_text())  # written every epoch
    assert status(out, 0)["status"] == "interrupted"
    result = subprocess.run(sweep_cmd(config, out), cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert "run 000 was interrupted; resuming it" in result.stdout
    after, summary = rows(out, 0), json.loads((out / "000" / "summary.json").read_text())
    first_resumed = summary["attempts"][1]["first_epoch"]
    assert 1 <= first_resumed <= len(before)  # from the checkpoint, not from epoch 0
    assert after[:first_resumed] == before[:first_resumed]  # earlier rows kept unchanged
    assert [int(r["epoch"]) for r in after] == list(range(14))  # none missing or doubled
    assert len(summary["attempts"]) == 2 and summary["attempts"][0]["energy_j"] >= \
        killed["attempts"][0]["energy_j"] > 0
    assert summary["energy_j"] == pytest.approx(sum(a["energy_j"] for a in summary["attempts"]))
    assert status(out, 0)["status"] == "done"
    assert not (out / "000" / "checkpoint").exists()  # removed once the run is done
    # results.json's history is the run's, every epoch: it held the resumed attempt's alone.
    history = json.loads((out / "000" / "results.json").read_text())["history"]
    assert history["loss"] == pytest.approx([float(r["loss"]) for r in after], rel=1e-12)
    assert len(history["val_accuracy"]) == len(history["energy_j"]) == 14
    # The resumed epochs trained on the batches (their shuffled order) an uninterrupted
    # run has there, so the run ends as if it had never stopped.
    straight = tmp_path / "straight"
    subprocess.run(sweep_cmd(config, straight), cwd=ROOT, capture_output=True, timeout=600,
                   check=True)
    assert [(r["loss"], r["val_loss"]) for r in after] == \
        [(r["loss"], r["val_loss"]) for r in rows(straight, 0)]


@pytest.mark.parametrize("how", ["SIGINT to the process group", "SIGTERM to the sweep",
                                 "two SIGINTs to the sweep"])
def test_a_signal_stops_the_sweep_fails_nothing_and_a_rerun_finishes(fake_smi, tmp_path, how):
    config, out = make_config(tmp_path, runs=1, epochs=14), tmp_path / "sweep"
    proc = start_sweep(config, out)
    wait_for_epochs(out, 0, 2)
    if how.startswith("SIGINT"):
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    elif how.startswith("SIGTERM"):
        proc.send_signal(signal.SIGTERM)  # what Slurm's time limit or kill does
    else:  # a second Ctrl-C ends at once: the run process is killed, nothing waits
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGINT)
    try:
        stdout, stderr = proc.communicate(timeout=30)  # "within a few seconds", generously
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert "stopping; runs in flight are kept as interrupted" in stderr
    assert status(out, 0)["status"] == "interrupted" and "failed" not in stdout
    if not how.startswith("two"):  # exiting at once leaves the claim of a dead process,
        assert not list((out / ".claims").glob("[0-9][0-9][0-9]"))  # which is taken over
        # not counted as through ("[1/1] run 000 interrupted ... energy nan J (none)")
        assert re.search(r"^    run 000 interrupted \(\d+\.\d J spent so far "
                         r"\(measured:nvidia-smi\S*\), kept\): it resumes when you run the "
                         r"same command again$", stdout, re.M), stdout
        assert "[1/1]" not in stdout and "stopped with 0/1 runs done;" in stderr
    result = subprocess.run(sweep_cmd(config, out), cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert status(out, 0)["status"] == "done", status(out, 0)
    assert re.search(r"^\[1/1\] run 000 done ", result.stdout, re.M), result.stdout


def test_an_interrupt_swallowed_where_it_was_raised_still_ends_the_fit_after_its_epoch():
    """The run process's SIGTERM handler raised KeyboardInterrupt inside code that swallowed
    it (a finaliser, a bare except): the fit still ends once that epoch is checkpointed."""
    import keras
    import numpy as np

    from greenscreen_pipeline.run import interrupt
    from greenscreen_pipeline.run.training import StopOnSignal

    class SwallowsASignal(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1 and not interrupt.requested:
                try:
                    interrupt.handle(signal.SIGTERM, None)  # as the signal would run it
                except KeyboardInterrupt:
                    pass

    class Checkpoint(keras.callbacks.Callback):
        epochs: list = []

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append(epoch)

    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            model.fit(np.zeros((8, 2)), np.zeros((8, 1)), batch_size=2, epochs=5, verbose=0,
                      callbacks=[SwallowsASignal(), Checkpoint(), StopOnSignal()])
    finally:
        interrupt.requested.clear()
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
    assert Checkpoint.epochs == [0]  # the epoch it was in ended, checkpointed, and no other


def test_unreadable_result_files_leave_their_folders_alone_and_are_named(fake_smi, tmp_path):
    config, out = make_config(tmp_path, runs=3), tmp_path / "sweep"
    assert subprocess.run(sweep_cmd(config, out), cwd=ROOT, capture_output=True,
                          timeout=300).returncode == 0
    broken = {1: out / "001" / "status.json", 2: out / "002" / "summary.json"}
    files = {}
    for i, path in broken.items():
        path.unlink()
        path.mkdir()  # a directory in the file's place: reading it fails, as EIO would
        files[i] = sorted(p.name for p in path.parent.iterdir())
    result = subprocess.run(sweep_cmd(config, out), cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    for i, path in broken.items():
        assert f"run {i:03d} left alone: {path} cannot be read" in result.stdout
        assert sorted(p.name for p in path.parent.iterdir()) == files[i] and path.is_dir()
    assert "run 000 kept" in result.stdout
    assert attempts(out) == ["000", "001", "002"]  # nothing retrained, nothing deleted


def test_two_workers_racing_for_stale_claims_train_each_run_once(fake_smi, tmp_path):
    config, out = make_config(tmp_path, runs=3), tmp_path / "sweep"
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid of this host that is gone
    (out / ".claims").mkdir(parents=True)
    for i in range(3):
        (out / ".claims" / f"{i:03d}").write_text(json.dumps(
            {"pid": dead.pid, "host": socket.gethostname(), "time": 0}))
    procs = [start_sweep(config, out) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert attempts(out) == ["000", "001", "002"]  # each stale claim taken over once
    assert [status(out, i)["status"] for i in range(3)] == ["done"] * 3


def test_a_worker_killed_like_the_oom_killer_fails_only_its_run(fake_smi, tmp_path):
    config, out = make_config(tmp_path, runs=2), tmp_path / "sweep"
    proc = subprocess.Popen(sweep_cmd(config, out), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    wait_for(lambda: "pid" in status(out, 0))
    os.kill(status(out, 0)["pid"], signal.SIGKILL)
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0
    assert status(out, 0)["status"] == "failed"
    assert "worker killed by SIGKILL (out of memory?)" in status(out, 0)["reason"]
    assert status(out, 1)["status"] == "done"


def test_a_nan_run_is_isolated(fake_smi, tmp_path):
    config = make_config(tmp_path, runs=6, lr="[0.01, 1.0e+12]")
    runs = space.load(config)
    bad = next(i for i in range(1, 6) if runs.run(i)["lr"] > 1)
    config = make_config(tmp_path, runs=bad + 1, lr="[0.01, 1.0e+12]")
    out = tmp_path / "sweep"
    result = subprocess.run(sweep_cmd(config, out), cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    st = status(out, bad)
    assert st["status"] == "failed" and "loss became nan" in st["reason"].lower()
    assert "traceback_tail" in st
    assert status(out, 0)["status"] == "done"


def test_bad_config_stops_before_any_training(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("configuration: {optimizer: {values: [Nadam]}}\n")
    result = subprocess.run(sweep_cmd(path, tmp_path / "sweep"), cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert "configuration.optimizer.values[0]: got 'Nadam'; allowed: one of" in result.stderr
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("other", [{"seed": 8}])
def test_a_sweep_folder_is_not_mixed_with_another_sweep(fake_smi, tmp_path, other):
    config, out = make_config(tmp_path, runs=1), tmp_path / "sweep"
    subprocess.run(sweep_cmd(config, out), cwd=ROOT, capture_output=True, timeout=300)
    text = config.read_text().replace("seed: 7", f"seed: {other['seed']}")
    config.write_text(text)
    result = subprocess.run(sweep_cmd(config, out), cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0 and "another seed or search space" in result.stderr


def attempts(sweep_dir):
    """The run of every training attempt, as each run folder's attempts.jsonl records it."""
    runs = sorted(p.name for p in Path(sweep_dir).iterdir() if p.name.isdigit())
    return [run for run in runs
            for _ in RunFolder.of(sweep_dir, int(run)).attempts()]


def configs(sweep_dir, runs):
    out = []
    for i in range(runs):
        params = yaml.safe_load((Path(sweep_dir) / f"{i:03d}" / "parameters.yaml").read_text())
        out.append({k: v for k, v in params.items() if k in space.DIMENSIONS})
    return out


def test_two_workers_train_the_same_runs_as_sequential_mode(fake_smi, tmp_path):
    config = make_config(tmp_path, runs=3, lr="[0.01, 0.05, 0.1]")
    par = tmp_path / "par"
    result = subprocess.run(sweep_cmd(config, par) + ["--workers", "2"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    # Sequential mode trains run i with space.run(i) (the killed-sweep and complete-folder
    # tests check that); two workers must train exactly those configurations.
    sequential = space.load(config)
    assert configs(par, 3) == [sequential.run(i) for i in range(3)]
    assert attempts(par) == ["000", "001", "002"]  # each run trained once
    assert [status(par, i)["status"] for i in range(3)] == ["done"] * 3
    assert not list((par / ".claims").iterdir())  # every claim released
    # Each worker on its share of the CPUs (run/cpus.py), so their thread pools fit.
    used = {tuple(json.loads((par / f"{i:03d}" / "results.json").read_text())["timing"]
                  ["cpus"]) for i in range(3)}
    assert used == {tuple(share) for share in cpus.shares(2)}


def test_two_sweeps_on_one_folder_train_each_run_exactly_once(fake_smi, tmp_path):
    config, out = make_config(tmp_path, runs=4), tmp_path / "sweep"
    out.mkdir()
    procs = [subprocess.Popen(sweep_cmd(config, out), cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert attempts(out) == ["000", "001", "002", "003"]
    assert [status(out, i)["status"] for i in range(4)] == ["done"] * 4


def test_gpus_pin_each_worker_to_one_gpu(fake_smi, tmp_path):
    config, out = make_config(tmp_path, runs=2), tmp_path / "sweep"
    result = subprocess.run(sweep_cmd(config, out) + ["--workers", "2", "--gpus", "0,1"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    seen = []
    for i in range(2):
        summary = json.loads((out / f"{i:03d}" / "summary.json").read_text())
        seen.append([d["index"] for d in summary["devices"]])
    assert sorted(seen) == [[0], [1]]  # each run measured only its own GPU


def test_slurm_scripts_cover_unfinished_runs_and_depend_afterany(tmp_path):
    from greenscreen_pipeline.executors import slurm

    config = space.load(make_config(tmp_path, runs=5), {
        "slurm_partition": "gpu", "slurm_time": "04:00:00", "slurm_account": "lab",
        "slurm_parallel": 2})
    out = tmp_path / "sweep"
    (out / "001").mkdir(parents=True)
    (out / "001" / "status.json").write_text('{"status": "failed"}')
    (out / "003").mkdir()
    (out / "003" / "status.json").write_text('{"status": "running"}')
    array, report, todo = slurm.scripts(config, out)
    assert list(todo) == [0, 2, 3, 4]  # failed runs are finished; running ones are redone
    lines = array.splitlines()
    assert "#SBATCH --array=0-1" in lines and "#SBATCH --gres=gpu:1" in lines
    assert {"#SBATCH --partition=gpu", "#SBATCH --time=04:00:00",
            "#SBATCH --account=lab"} <= set(lines)
    assert '--share "$SLURM_ARRAY_TASK_ID/2"' in lines[-1] and "run-one" in lines[-1]
    config.settings["slurm_parallel"] = 0  # a task per run
    array, _, _ = slurm.scripts(config, out)
    lines = array.splitlines()
    assert "#SBATCH --array=0,2-4" in lines
    assert '--index "$SLURM_ARRAY_TASK_ID"' in lines[-1] and "run-one" in lines[-1]
    assert [stage in report for stage in ("analyze", "final", "report")] == [True] * 3
    # after a cancelled or timed-out array the report job trained final on a partial sweep
    assert " final --config " in report and report.count("--if-complete") == 1
    done = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "final", "--config",
                           str(config.path), "--sweep-dir", str(out), "--if-complete"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "final not run: run 003 (running) not finished; 3 run(s) not started; run " \
           "the same sweep command again" in done.stderr
    assert not (out / "final").exists()
    # Without the flag, final goes on, saying the recommendation is of the runs so far
    # (here it then stops: nothing was analysed).
    anyway = subprocess.run(done.args[:-1], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert "the sweep is not complete (run 003 (running) not finished; 3 run(s) not " \
           "started): the recommendation is of the runs finished so far" in anyway.stderr
    assert anyway.returncode == 2 and "run greenscreen analyze first" in anyway.stderr


def test_the_whole_pipeline_on_slurm_only_submits(tmp_path):
    config, out = make_config(tmp_path, runs=2), tmp_path / "sweep"
    cmd = [sys.executable, "-m", "greenscreen_pipeline", "all", "slurm", "--config", str(config),
           "--sweep-dir", str(out), "--dry-run"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "#SBATCH --array=0-1" in result.stdout and not (out / "analysis.json").exists()


def test_slurm_array_spec_compresses_runs_into_ranges():
    from greenscreen_pipeline.executors.slurm import array_spec

    assert array_spec([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert array_spec([3]) == "3" and array_spec(list(range(100))) == "0-99"


def test_slurm_dry_run_prints_and_submits_nothing(tmp_path):
    config, out = make_config(tmp_path, runs=2), tmp_path / "sweep"
    result = subprocess.run(sweep_cmd(config, out, "slurm") + ["--dry-run"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "#SBATCH --array=0-1" in result.stdout
    assert "--dependency=afterany:" in result.stdout
    assert (out / "slurm" / "runs.sbatch").exists() and not (out / "000").exists()


def test_run_one_trains_a_single_run_as_an_array_task_would(fake_smi, tmp_path):
    config, out = make_config(tmp_path, runs=3), tmp_path / "fresh" / "sweep"
    cmd = [sys.executable, "-m", "greenscreen_pipeline", "run-one", "--config", str(config),
           "--sweep-dir", str(out), "--index", "2"]
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert status(out, 2)["status"] == "done" and not (out / "000").exists()
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "run 002 kept" in again.stdout and attempts(out) == ["002"]


@pytest.mark.parametrize("flag, value", [("--partition", "gpu\necho injected"),
                                         ("--time", "4h"), ("--account", "lab one")])
def test_slurm_values_that_could_break_the_batch_script_are_refused(tmp_path, flag, value):
    config, out = make_config(tmp_path, runs=2), tmp_path / "sweep"
    result = subprocess.run(sweep_cmd(config, out, "slurm") + ["--dry-run",
                                                      flag, value],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2  # named by the option that gave it, not by config.yaml
    assert (f"{flag} (the command line's, for settings.slurm_{flag[2:]}): got {value!r}; "
            "allowed:") in result.stderr
    assert not out.exists()


def test_slurm_options_come_from_the_config_and_flags_override_them(tmp_path):
    config, out = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(TINY.format(runs=2, lr="[0.01]", epochs=1).replace(
        "energy_source: nvidia-smi", "energy_source: nvidia-smi, slurm_partition: gpu, "
        "slurm_time: '1-00:00:00'"))
    result = subprocess.run(sweep_cmd(config, out, "slurm") + ["--dry-run",
                                                      "--time", "30:00", "--gpus-per-run", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "#SBATCH --partition=gpu" in result.stdout
    assert "#SBATCH --time=30:00" in result.stdout and "1-00:00:00" not in result.stdout
    assert "--gres" not in result.stdout  # a CPU-only cluster


def test_a_run_claimed_on_another_machine_is_left_alone_and_its_claim_named(tmp_path):
    from greenscreen_pipeline.executors import train_claimed

    config, out = space.load(make_config(tmp_path, runs=1)), tmp_path / "sweep"
    (out / ".claims").mkdir(parents=True)
    (out / ".claims" / "000").write_text(json.dumps({"pid": 4242, "host": "node17"}))
    report = train_claimed(config, out, 0, 1)
    assert report.note == "claimed" and report.detail == \
        f"by pid 4242 on node17 (if it is gone: rm {out / '.claims' / '000'})"
    assert not (out / "000").exists() and report.wall_s is None


def test_a_claim_never_written_is_not_left_in_the_run_s_way(tmp_path):
    """A claim is created, then written: a full disk (here a file size limit of 0, a real
    write error) left it empty, and an empty claim was never taken over: its run was
    "claimed by pid ?" on every rerun and a parked peer waited for it for ever."""
    import errno
    import os
    import time

    from greenscreen_pipeline.executors import claims

    out = tmp_path / "sweep"
    script = ("import resource, signal, sys\nfrom pathlib import Path\n"
              "from greenscreen_pipeline.executors import claims\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))\n"
              "try:\n    claims.claim(Path(sys.argv[1]), 0)\n"
              "except OSError as exc:\n    print(exc.errno)\n")
    done = subprocess.run([sys.executable, "-c", script, str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == str(errno.EFBIG), done.stderr[-2000:]
    path = claims.claim_path(out, 0)
    assert not path.exists()  # the failed write took its empty file with it
    # An empty claim left by a creator that died before writing it: left alone while it
    # may still be being written, taken over once older than any write takes.
    path.write_text("")
    assert claims.trained_now(out, 0) and not claims.claim(out, 0)
    old = time.time() - claims.WRITING_S - 1
    os.utime(path, (old, old))
    assert not claims.trained_now(out, 0)
    assert claims.claim(out, 0) and claims.owner(out, 0)["pid"] == os.getpid()


def test_a_claim_whose_pid_another_process_took_since_is_stale(tmp_path):
    """After a reboot a dead sweep's pid may belong to another live process: its claim
    looked held for ever ("claimed by pid N", a parked peer waiting). A claim records when
    its process started (clock ticks after the boot, which a clock step leaves alone);
    a live process that started at another time is not the one that wrote it."""
    import os
    import socket
    import time

    from greenscreen_pipeline.executors import claims
    from greenscreen_pipeline.processes import process_start

    out = tmp_path / "sweep"
    path = claims.claim_path(out, 0)
    path.parent.mkdir(parents=True)
    mine = {"pid": os.getpid(), "host": socket.gethostname()}
    ticks = process_start(os.getpid())
    assert isinstance(ticks, int)
    now = time.time()
    for held in ({**mine, "pid_started": ticks}, {**mine, "time": now}, mine):
        path.write_text(json.dumps(held))  # this process's; one from before pid_started
        assert claims.trained_now(out, 0) and not claims.claim(out, 0)
    for reused in ({**mine, "pid_started": ticks - 1}, {**mine, "time": now - 10 ** 7}):
        path.write_text(json.dumps(reused))  # the pid taken by a later process
        assert not claims.trained_now(out, 0)
    assert claims.claim(out, 0) and claims.owner(out, 0)["pid_started"] == ticks
    # The same for a run whose executor's pid is alive again under another process.
    folder = RunFolder.of(out, 1).path
    folder.mkdir()
    (folder / "status.json").write_text(json.dumps({"status": "running"}))
    for started, state in ((ticks, "running"), (ticks - 1, "interrupted")):
        (folder / "attempts.jsonl").write_text(json.dumps({
            "event": "start", **mine, "time": 1.0, "pid_started": started}) + "\n")
        assert RunFolder.of(out, 1).state() == state


@pytest.mark.parametrize("executor, options, message", [
    ("ray", ["--workers", "2"], "unrecognized arguments: --workers 2"),
    ("local", ["--gpus-per-run", "1"], "unrecognized arguments: --gpus-per-run 1"),
    ("slurm", ["--address", "auto"], "unrecognized arguments: --address auto"),
    ("ray", ["--cpus-per-run", "0"], "argument --cpus-per-run: '0' is not an integer >= 1"),
    ("local", ["--executor", "ray"], "--executor is a subcommand now: greenscreen sweep "
                                     "local|slurm|ray"),
])
def test_a_flag_the_executor_would_ignore_is_refused(tmp_path, executor, options, message):
    config, out = make_config(tmp_path, runs=2), tmp_path / "sweep"
    result = subprocess.run(sweep_cmd(config, out, executor) + options, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and message in result.stderr
    assert not out.exists()


def test_a_sweep_recorded_before_the_method_settings_existed_still_resumes(tmp_path):
    from greenscreen_pipeline.manifest import OtherSweep
    from greenscreen_pipeline.manifest import record as check_manifest

    config, out = space.load(make_config(tmp_path, runs=1)), tmp_path / "sweep"
    out.mkdir()
    older = {dim: v for dim, v in config.space.items() if dim not in space.METHOD_DIMENSIONS}
    (out / "sweep.json").write_text(json.dumps({"seed": 7, "space": older}))
    check_manifest(config, out)  # the new dimensions hold their baseline: the same sweep
    (out / "sweep.json").write_text(json.dumps({"seed": 7, "space": {**older, "lr": [0.5]}}))
    with pytest.raises(OtherSweep, match="another seed or search space"):
        check_manifest(config, out)
