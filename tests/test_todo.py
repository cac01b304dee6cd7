"""Which runs an executor hands out (`attempt.to_train`), read from the run folders that
exist only: `runs` may be a billion (issue 33)."""

import itertools

from greenscreen_pipeline.executors.attempt import to_train
from greenscreen_pipeline.runfolder import RunFolder
from greenscreen_pipeline.space import SweepConfig

BILLION = 1_000_000_000


def config(**settings) -> SweepConfig:
    return SweepConfig(path="config.yaml", settings={"runs": BILLION, **settings},
                       space={})


def sweep_with(tmp_path, states: dict[int, str]):
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
