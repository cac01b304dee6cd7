"""`greenscreen status`: where a sweep stands, read from its folder, starting nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from greenscreen_pipeline import sweep_total
from greenscreen_pipeline.executors import claims
from greenscreen_pipeline.runfolder import RunFolder

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
settings: {{runs: {runs}, epochs: 1, seed: 7, energy_source: estimate{extra}}}
configuration:
  model: {{values: [ffnn]}}
  batch_size: {{values: [64, 128]}}
  lr: {{values: [0.01]}}
  optimizer: {{values: [SGD]}}
"""


def greenscreen(*args, cwd):
    return subprocess.run([sys.executable, "-m", "greenscreen_pipeline", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def listing(folder: Path) -> dict:
    return {str(p): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


def test_status_names_each_run_s_state_the_energy_and_the_budget_and_writes_nothing(
        tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(runs=2, extra=""))
    swept = greenscreen("sweep", "local", "--config", str(config), "--sweep-dir", "sweep",
                        cwd=tmp_path)
    assert swept.returncode == 0, swept.stderr
    sweep = tmp_path / "sweep"
    # Two more runs planned, with a budget: run 002 trained now by a live process (this
    # one holds its claim), run 003 failed; a Slurm submission recorded, no squeue here.
    config.write_text(CONFIG.format(runs=5, extra=", budget: 1 MJ"))
    assert claims.claim(sweep, 2)
    RunFolder.of(sweep, 2).write_status("pending")
    RunFolder.of(sweep, 3).write_status("failed", reason="ValueError: bad shape")
    (sweep / "slurm").mkdir()
    (sweep / "slurm" / "jobs.json").write_text(json.dumps({"array": "41", "report": "42"}))
    before = listing(sweep)
    env = {**os.environ, "PATH": "/usr/bin:/bin"}  # no squeue: Slurm cannot be asked
    done = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "status",
                           "--config", str(config), "--sweep-dir", "sweep"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    total = sweep_total.of(sweep)
    assert out.startswith("greenscreen: sweep/: 2/5 runs done, 1 failed (5 runs x 1 epoch)")
    assert f"  running: run 002 (pid {os.getpid()})" in out
    assert "  failed: run 003: ValueError: bad shape" in out
    assert "  not started: 1 run\n" in out
    assert f"  energy so far: {total.total_j:.1f} J (estimated)" in out
    assert f"  spent {total.total_j:.1f} J of budget 1000000.0 J = " in out
    assert "  Slurm: last submission: jobs 41 (the runs), 42 (the report); squeue cannot " \
           "say whether they still run" in out
    assert listing(sweep) == before  # nothing written, claimed or removed
    as_json = json.loads(greenscreen("status", "--config", str(config), "--sweep-dir",
                                     "sweep", "--json", cwd=tmp_path).stdout)
    assert as_json["counts"]["done"] == 2 and as_json["counts"]["failed"] == 1
    assert as_json["counts"]["running"] == 1 and as_json["counts"]["not_started"] == 1
    assert as_json["energy_j"] == total.total_j
    claims.release(sweep, 2)  # its process gone: the run is no longer running
    out = greenscreen("status", "--config", str(config), "--sweep-dir", "sweep",
                      cwd=tmp_path).stdout
    assert "  pending: run 002: the same sweep command trains it" in out
    # Fewer runs on the command line, as `greenscreen sweep --runs 1` would train: the
    # folders above are named, and their energy stays in the total.
    out = greenscreen("status", "--config", str(config), "--sweep-dir", "sweep", "--runs", "1",
                      cwd=tmp_path).stdout
    assert out.startswith("greenscreen: sweep/: 1/1 runs done (1 run x 1 epoch)")
    assert "  3 run folders above settings.runs (1): not trained by this sweep command, " \
           "their energy counted in the total" in out
    assert f"  energy so far: {total.total_j:.1f} J (estimated)" in out
    # Other epochs than the folder's runs train: its own said, and the difference (the
    # headline read "x 4 epochs" of runs that trained one).
    out = greenscreen("status", "--config", str(config), "--sweep-dir", "sweep", "--epochs",
                      "4", cwd=tmp_path).stdout
    assert out.startswith("greenscreen: sweep/: 2/5 runs done, 1 failed (5 runs x 1 epoch)")
    assert "  config.yaml differs from the settings this sweep trains by: settings.epochs: " \
           "1 (this config: 4): the sweep command refuses to resume it so" in out


def test_status_of_a_folder_with_no_sweep_is_one_line(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(runs=2, extra=""))
    done = greenscreen("status", "--config", str(config), "--sweep-dir", "none", cwd=tmp_path)
    assert done.returncode == 2
    assert "no sweep in none/ yet: `greenscreen sweep` starts it" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_analyze_and_report_take_no_runs_or_epochs_they_would_ignore(tmp_path):
    """They read the runs the sweep folder holds: `--runs 2` changed nothing, silently."""
    for command in ("analyze", "report"):
        done = greenscreen(command, "--runs", "3", cwd=tmp_path)
        assert done.returncode == 2 and "unrecognized arguments: --runs 3" in done.stderr


def test_a_reader_that_left_early_gets_no_traceback(tmp_path):
    """`greenscreen status --json | head -1`: the write into the closed pipe ended in a
    BrokenPipeError traceback."""
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(runs=2, extra=""))
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "sweep.json").write_text("{}")
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    try:
        done = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "status",
                               "--config", str(config), "--sweep-dir", "sweep", "--json"],
                              cwd=tmp_path, stdout=write, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 141 and "Traceback" not in done.stderr, done.stderr


def test_status_says_what_a_parked_run_waits_for_and_which_energy_is_unknown(tmp_path):
    """Read in this process from run folders written as the run and the executor write
    them: a parked run named its peers with itself and runs already done (review); a
    summary.json that cannot be read made the budget look spent, unexplained."""
    from greenscreen_pipeline import status

    sweep = tmp_path / "sweep"
    RunFolder.of(sweep, 0).write_status("done")
    (sweep / "000" / "summary.json").write_text('{"energy_j": 12')  # cut short
    RunFolder.of(sweep, 1).write_status("parked", reason="waiting at rung 1 for run(s) 003",
                                        rung=1, peers=[0, 1, 2, 3])
    settings = {"sweep_dir": str(sweep), "runs": 4, "epochs": 3, "budget": 5000.0}
    said = status.lines(status.read(settings))
    assert "  parked: run 001 (waiting at rung 1 for run(s) 003): resumes once its rung is " \
           "decided" in said
    assert "  not started: 2 runs (no run starts while what run(s) 000 spent is unknown)" \
        in said
    assert "  energy so far: no energy figure yet; what run(s) 000 spent is unknown " \
           "(summary.json unreadable)" in said


def test_a_folder_that_holds_no_sweep_is_not_reported_as_one(tmp_path):
    from greenscreen_pipeline import status
    from greenscreen_pipeline.errors import UsageError

    (tmp_path / "photos").mkdir()
    with pytest.raises(UsageError, match="no sweep in .*photos/ yet"):
        status.read({"sweep_dir": str(tmp_path / "photos"), "runs": 2, "epochs": 1})


def test_a_budget_only_sweep_s_status_counts_no_cap_and_says_what_holds_a_run_back(tmp_path):
    """settings.budget without runs: status read "7/10000 runs done (10000 runs x 3
    epochs)" and "not started: 9993 runs", and an interrupted run the spent budget holds
    back "the same sweep command resumes it", where the sweep said it stays (review)."""
    from test_runfolder_faults import write_run

    from greenscreen_pipeline import budget, status

    sweep = tmp_path / "sweep"
    write_run(sweep, 0, energy=600.0)
    RunFolder.of(sweep, 1).write_status("interrupted", reason="stopped by SIGTERM")
    settings = {"sweep_dir": str(sweep), "runs": budget.RUNS_WITH_BUDGET, "epochs": 3,
                "budget": 500.0}
    state = status.read(settings)
    said = status.lines(state)
    assert said[0] == f"{sweep}/: 1 run done (runs until the energy budget is spent x 3 " \
                      "epochs)"
    assert not any("not started" in line for line in said), said
    assert "  interrupted: run 001 (stopped by SIGTERM): held back by the spent budget (a " \
           "larger settings.budget resumes it)" in said
    as_json = state.to_json()
    assert as_json["runs"] is None and as_json["counts"]["not_started"] == 0
    # What run 000 spent unknown: a larger budget is not what would resume run 001
    (sweep / "000" / "summary.json").write_text('{"energy_j": 6')
    said = status.lines(status.read(settings))
    assert "  interrupted: run 001 (stopped by SIGTERM): held back: no run starts while " \
           "what run(s) 000 spent is unknown" in said, said
