"""Which runs an executor hands out (`attempt.to_train`), read from the run folders that
exist only: `runs` may be a billion (issue 33)."""

import itertools
import subprocess
import sys
from pathlib import Path

from greenscreen_pipeline.executors.attempt import to_train
from greenscreen_pipeline.executors.slurm import array_spec
from greenscreen_pipeline.runfolder import RunFolder
from greenscreen_pipeline.space import SweepConfig

BILLION = 1_000_000_000
ROOT = Path(__file__).resolve().parents[1]


def config(runs: int = BILLION, **settings) -> SweepConfig:
    return SweepConfig(path="config.yaml", settings={"runs": runs, **settings},
                       space={})


def sweep_with(tmp_path, states: dict[int, str]):
    tmp_path.mkdir(exist_ok=True)
    for index, state in states.items():
        folder = RunFolder.of(tmp_path, index)
        folder.path.mkdir(parents=True)
        folder.write_status(state)
        if state == "done":  # a done run without its summary counts as half written
            (folder.path / "summary.json").write_text('{"energy_j": 1.0}')
    return tmp_path


def test_runs_through_are_skipped_and_the_rest_come_in_order(tmp_path):
    out = sweep_with(tmp_path, {0: "done", 1: "failed", 2: "skipped", 4: "stopped"})
    todo = to_train(config(), out)
    assert list(itertools.islice(todo, 4)) == [3, 5, 6, 7]
    assert len(todo) == BILLION - 4
    assert 3 in todo and 0 not in todo and 1 not in todo and BILLION not in todo


def test_retry_failed_hands_out_the_failed_runs_again(tmp_path):
    out = sweep_with(tmp_path, {0: "done", 1: "failed"})
    todo = to_train(config(retry_failed=True), out)
    assert list(itertools.islice(todo, 3)) == [1, 2, 3] and len(todo) == BILLION - 1


def test_an_unreadable_run_is_handed_out_for_the_executor_to_report(tmp_path):
    out = sweep_with(tmp_path, {0: "done"})
    (RunFolder.of(out, 1).path).mkdir()
    (RunFolder.of(out, 1).path / "status.json").write_bytes(b"\0\0\0")
    assert list(itertools.islice(to_train(config(), out), 2)) == [1, 2]


def test_nothing_to_train_is_empty(tmp_path):
    out = sweep_with(tmp_path, {0: "done", 1: "failed"})
    todo = to_train(SweepConfig(path="c", settings={"runs": 2}, space={}), out)
    assert not todo and list(todo) == []


def test_ranges_come_from_the_runs_through_alone(tmp_path):
    out = sweep_with(tmp_path, {0: "done", 3: "failed", 4: "stopped", 9: "skipped"})
    todo = to_train(config(), out)
    assert list(todo.ranges()) == [range(1, 3), range(5, 9), range(10, BILLION)]
    assert array_spec(todo) == "1-2,5-8,10-999999999"
    assert array_spec(to_train(config(runs=3), sweep_with(tmp_path / "b", {1: "done"}))) \
        == "0,2"


def test_a_slurm_dry_run_of_a_billion_runs_writes_its_array_at_once(tmp_path):
    """Issue 33 item 7 under Slurm: one array task per run, its --array written from the
    run folders that exist, not from a billion indices."""
    config_file = tmp_path / "config.yaml"
    config_file.write_text("settings: {runs: 1000000000, epochs: 1, seed: 3}\n"
                           "configuration:\n  model: {values: [ffnn]}\n")
    done = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "sweep", "slurm",
                           "--config", str(config_file), "--sweep-dir", str(tmp_path / "s"),
                           "--dry-run"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "#SBATCH --array=0-999999999" in done.stdout
