"""The cluster executors against the real thing: a single-node Slurm on localhost
(munged, slurmctld and slurmd started here) and a local Ray instance."""

import ipaddress
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from localslurm import LocalSlurm, Unavailable

from greenscreen_pipeline import runfolder, space

ROOT = Path(__file__).resolve().parents[1]
# Your own model next to the config (on the storage every node shares) and a built-in one
# in one sweep: runs 000 and 002 train tiny:net, run 001 ffnn.
CONFIG = """
settings: {runs: 3, epochs: 1, final_epochs: 1, final_seeds: 1, seed: 9,
           energy_source: nvidia-smi}
configuration:
  model: {values: ["tiny:net", ffnn]}
  width: {values: [4, 8]}
  batch_size: {values: [64]}
  lr: {values: [0.01, 0.05, 0.1]}
  optimizer: {values: [SGD]}
"""
TINY = """import keras


def net(input_shape, num_classes, params):
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(params["width"], activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
"""


# The same space with settings.repeats (issue 34): 2 configurations x 2 repeats, runs 000
# and 001 train tiny:net, 002 and 003 ffnn, each run with its own seed (seed + run).
REPEATED = CONFIG.replace("runs: 3,", "runs: 4, repeats: 2,")


def write_config(folder: Path, text: str = CONFIG) -> Path:
    """config.yaml and the own model it names, in `folder`."""
    (folder / "tiny.py").write_text(TINY)
    config = folder / "config.yaml"
    config.write_text(text)
    return config


def check_repeats(out: Path, analysed: dict) -> None:
    """Each configuration trained twice, with its own seed per run, and ranked by the two
    repeats' means."""
    params = [yaml.safe_load((out / f"{i:03d}" / "parameters.yaml").read_text())
              for i in range(4)]
    assert [p["model"] for p in params] == ["tiny:net", "tiny:net", "ffnn", "ffnn"]
    assert [p["run"] for p in params] == [0, 1, 2, 3]  # training seed: seed + run
    assert analysed["repeats"]["configurations"] == 2 and analysed["repeats"]["complete"] == 2
    objective = {i: json.loads((out / f"{i:03d}" / "results.json").read_text())[
        "objective"]["value"] for i in range(4)}
    ranked = {r["run"]: r for r in analysed["top_objective"]}
    assert set(ranked) == {"000", "002"} and ranked["000"]["repeats"] == 2
    assert ranked["000"]["objective"] == pytest.approx((objective[0] + objective[1]) / 2)


@pytest.fixture
def slurm():
    cluster = LocalSlurm()
    try:
        yield cluster.start()
    except Unavailable as exc:
        pytest.skip(f"no single-node Slurm on this machine: {exc}")
    finally:
        cluster.stop()


def sweep(config, out, executor, *options, env=None, timeout=600):
    cmd = [sys.executable, "-m", "greenscreen_pipeline", "sweep", executor, "--config",
           str(config), "--sweep-dir", str(out), *options]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=timeout)


def check_runs(config, out, runs=3):
    """Every run done exactly once, with run i's configuration, and no claim left."""
    attempts = [len(runfolder.RunFolder.of(out, i).attempts()) for i in range(runs)]
    assert attempts == [1] * runs and not (out / f"{runs:03d}").exists()
    for i in range(runs):
        folder = out / f"{i:03d}"
        assert json.loads((folder / "status.json").read_text())["status"] == "done"
        params = yaml.safe_load((folder / "parameters.yaml").read_text())
        assert params == {**params, **space.load(config).run(i)}
        if params["model"] == "tiny:net":  # your own model, imported on the worker
            assert params["n_parameters"] == 64 * params["width"] + params["width"] * 11 + 10
    assert not list((out / ".claims").iterdir())


def test_slurm_executor_runs_a_sweep_on_a_real_single_node_cluster(slurm, fake_smi, tmp_path):
    """With settings.repeats: the array tasks train folders, the report job ranks means.
    The sweep folder's name has a space and a '%': sbatch refused the #SBATCH --output
    line of such a folder ("Invalid directive found in batch script")."""
    config, out = write_config(tmp_path, REPEATED), tmp_path / "sweep 1%j"
    pdf = tmp_path / "report.pdf"
    submitted = sweep(config, out, "slurm", "--parallel", "2", "--time", "10",
                      "--out", str(pdf), env=slurm.env, timeout=120)
    assert submitted.returncode == 0, submitted.stderr
    report = re.search(r"report job (\d+)", submitted.stdout).group(1)
    twice = sweep(config, out, "slurm", "--parallel", "2", env=slurm.env, timeout=120)
    assert twice.returncode == 2  # refused while the first submission's jobs are queued
    assert f"report job {report} are still queued or running" in twice.stdout + twice.stderr
    slurm.wait_idle(timeout=480)
    assert slurm.job_state(report) == "COMPLETED", slurm.log("slurmctld.log")[-2000:]
    check_runs(config, out, runs=4)
    check_repeats(out, json.loads((out / "analysis.json").read_text()))
    for i in range(4):  # Slurm gave each task one GPU; its SMICallback measured only that one
        devices = json.loads((out / f"{i:03d}" / "summary.json").read_text())["devices"]
        assert len(devices) == 1 and devices[0]["index"] in (0, 1)
    assert json.loads((out / "final" / "status.json").read_text())["status"] == "done"
    assert (out / "final" / "model.keras").exists()  # the final run keeps its model
    assert pdf.read_bytes().startswith(b"%PDF")
    assert list((out / "slurm").glob("greenscreen-runs-*_*.out"))  # per-task logs
    again = sweep(config, out, "slurm", env=slurm.env, timeout=120)
    assert "nothing to submit" in again.stdout  # resubmission only runs what is not done
    assert "probed your code" in submitted.stdout and "probed" not in again.stdout


# Seed 9's run 001 (batches of 2, lr 1e-6) is worse and dearer than run 000 at rung 1.
HALVING = """
settings: {runs: 4, epochs: 3, final_epochs: 1, seed: 9, energy_source: nvidia-smi,
           early_stop: halving, slurm_parallel: 2}
configuration:
  model: {values: [ffnn]}
  batch_size: {values: [128, 2]}
  lr: {values: [0.01, 0.000001]}
  optimizer: {values: [Adam, SGD]}
"""


def test_slurm_array_tasks_halve_at_their_rungs_from_the_shared_records(slurm, fake_smi,
                                                                         tmp_path):
    """Two array tasks (the batch), each a share of the 4 runs: each task records its rung
    on the shared sweep folder and applies the rule there; the report job runs after them.

    First task 0 runs alone (task 1 cancelled before it started, as `scancel 12_1`): its
    runs do not wait at rung 1 until --time for peers no task will bring; each is parked
    at the rung, says whom it waited for, and resumes there on resubmission."""
    config, out = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(HALVING)
    written = sweep(config, out, "slurm", "--time", "4", "--dry-run", "--no-probe",
                    env=slurm.env, timeout=120)
    assert written.returncode == 0, written.stderr
    alone = slurm.run("sbatch", "--parsable", "--array=0", str(out / "slurm" / "runs.sbatch"))
    slurm.wait_idle(timeout=200)  # before: task 0 waited at rung 1 until its --time
    assert slurm.job_state(alone) == "COMPLETED", slurm.log("slurmctld.log")[-2000:]
    for run in (0, 2):
        status = runfolder.RunFolder.of(out, run).status_record()
        assert status["status"] == "parked" and status["rung"] == 1, status
        assert f"whose Slurm array task(s) {alone}_1 ended" in status["reason"], status
        assert "001" in status["reason"] and "submitted again" in status["reason"]
    assert not (out / "001").exists() or runfolder.RunFolder.of(out, 1).state() == "pending"
    task_log = next((out / "slurm").glob(f"greenscreen-runs-{alone}_0.out")).read_text()
    assert "run 000 parked: parked at rung 1" in task_log, task_log[-2000:]
    assert "2 run(s) of this task left parked at a rung" in task_log

    submitted = sweep(config, out, "slurm", "--time", "10", "--out", str(tmp_path / "r.pdf"),
                      env=slurm.env, timeout=120)
    assert submitted.returncode == 0, submitted.stderr
    report = re.search(r"report job (\d+)", submitted.stdout).group(1)
    slurm.wait_idle(timeout=480)
    assert slurm.job_state(report) == "COMPLETED", slurm.log("slurmctld.log")[-2000:]
    states = {i: runfolder.RunFolder.of(out, i).state() for i in range(4)}
    assert set(states.values()) <= {"done", "stopped"} and states[1] == "stopped", states
    for i in range(4):
        assert (out / f"{i:03d}" / "rungs" / "0001.json").exists()  # every run reached rung 1
    assert "halving: stopped at epoch 1 of 3" in \
        runfolder.RunFolder.of(out, 1).status_record()["reason"]
    analysis = json.loads((out / "analysis.json").read_text())
    assert analysis["recommendation"]["run"] != "001"
    summary = json.loads((out / "000" / "summary.json").read_text())
    assert [a["first_epoch"] for a in summary["attempts"]] == [0, 1]  # resumed at its rung


def test_ray_executor_runs_a_sweep_on_a_local_ray_instance(fake_smi, tmp_path):
    pytest.importorskip("ray", reason='Ray is not installed: pip install ".[ray]"')
    from greenscreen_pipeline import analysis

    config, out = write_config(tmp_path, REPEATED), tmp_path / "sweep"  # with repeats
    result = sweep(config, out, "ray", "--num-cpus", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "4 runs to train, each with 0 GPU(s) and 1 CPU(s)" in result.stdout
    assert "4/4 runs done" in result.stdout, result.stdout
    check_runs(config, out, runs=4)
    check_repeats(out, analysis.analyze(out))
    tasks = {json.loads((out / f"{i:03d}" / "summary.json").read_text())["job"]["ray_task_id"]
             for i in range(4)}  # each run process recorded the Ray task that started it
    assert None not in tasks and len(tasks) == 4 and all(len(t) >= 32 for t in tasks)
    again = sweep(config, out, "ray", "--num-cpus", "2")
    assert "0 runs to train" in again.stdout and "4/4 runs done" in again.stdout


def test_sigterm_stops_a_ray_sweep_as_it_stops_a_local_one(fake_smi, tmp_path):
    """Ray's core worker installs its own SIGTERM handler when the driver connects (a stack
    dump, then abort): the sweep ended with code 1, its runs trained on in orphaned actors
    and ended done. Its handler is replaced: the runs stop, interrupted, and it says so."""
    pytest.importorskip("ray", reason='Ray is not installed: pip install ".[ray]"')
    config, out = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(CONFIG.replace("runs: 3, epochs: 1", "runs: 1, epochs: 60"))
    (tmp_path / "tiny.py").write_text(TINY)
    cmd = [sys.executable, "-m", "greenscreen_pipeline", "sweep", "ray", "--config",
           str(config), "--sweep-dir", str(out), "--num-cpus", "1", "--no-probe"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        logs = out / "000" / "logs.csv"
        deadline = time.time() + 240
        while not (logs.exists() and len(logs.read_text().splitlines()) >= 3):
            assert proc.poll() is None and time.time() < deadline, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        said = "".join(proc.communicate(timeout=180))
    finally:
        proc.kill()
    assert proc.returncode == 130, said[-3000:]
    assert "stopping the Ray actors" in said and "SIGTERM received" not in said
    status = json.loads((out / "000" / "status.json").read_text())
    assert status["status"] == "interrupted" and "stopped by SIGTERM" in status["reason"]


HUGE_WITH_BUDGET = """settings: {runs: 1000000000, budget: 1 J, epochs: 1, seed: 3,
           energy_source: nvidia-smi}
configuration:
  dataset: {values: [digits]}
  model: {values: [ffnn]}
  batch_size: {values: [64]}
"""


def test_ray_hands_out_a_billion_runs_without_listing_them(fake_smi, tmp_path):
    """Issue 33: the Ray executor reads only the run folders that exist and hands out the
    next index as an actor frees up. Listing a billion indices up front took minutes and
    gigabytes; here the budget (1 J) ends the sweep after the first runs."""
    pytest.importorskip("ray", reason='Ray is not installed: pip install ".[ray]"')
    config, out = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(HUGE_WITH_BUDGET)
    result = sweep(config, out, "ray", "--num-cpus", "2", "--no-probe", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    said = result.stdout + result.stderr
    assert "1000000000 runs to train" in said and "MemoryError" not in said
    assert "energy budget reached after" in said, said[-3000:]
    runs = sorted(p.name for p in out.iterdir() if p.name.isdigit())
    assert 1 <= len(runs) <= 2 and runs[0] == "000"  # one per actor, none up front
    assert all(runfolder.RunFolder.of(out, int(r)).state() == "done" for r in runs)


RAY_LISTENERS = """
import ipaddress, json, os, sys
sys.path.insert(0, {tests!r})
from netsockets import listening_sockets_of_tree
from greenscreen_pipeline.executors import ray as ray_executor

ray = ray_executor.start(None, 1)  # the private instance, exactly as the sweep starts it

@ray.remote
def ping():
    return os.getpid()

ray.get(ping.remote())  # a worker process and its server exist
rows = listening_sockets_of_tree(os.getpid())
ray.shutdown()
print(json.dumps(rows))
"""


def test_private_ray_instance_listens_on_loopback_only():
    pytest.importorskip("ray", reason='Ray is not installed: pip install ".[ray]"')
    script = RAY_LISTENERS.format(tests=str(Path(__file__).parent))
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    names = {name for _, _, _, name in rows}
    assert "gcs_server" in names and "raylet" in names  # the servers were found
    for address, port, pid, name in rows:
        ip = ipaddress.ip_address(address)
        ip = getattr(ip, "ipv4_mapped", None) or ip
        assert ip.is_loopback, f"{name} (pid {pid}) listens on {address}:{port}"


RAY_DEAD_ACTOR = """
from greenscreen_pipeline.executors import ray as ray_executor

ray = ray_executor.start(None, 1)

@ray.remote
class Actor:
    def stop(self):
        return None

dead = Actor.remote()
ray.get(dead.stop.remote())
ray.kill(dead)  # it died with the signal, as an actor can
ray_executor.stop_actors(ray, [dead], {})
ray.shutdown()
print("stopped")
"""


def test_a_stopped_ray_sweep_whose_actor_died_is_still_said_to_be_stopped():
    """The sweep's stop asked each actor to stop in one `ray.get`: one dead actor's
    RayActorError replaced "stopped; run the same command again" (review)."""
    pytest.importorskip("ray", reason='Ray is not installed: pip install ".[ray]"')
    result = subprocess.run([sys.executable, "-c", RAY_DEAD_ACTOR], cwd=ROOT,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "stopped"
