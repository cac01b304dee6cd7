"""The original pipeline's run folders (the seed format, tests/fixtures/seed-runs: real
runs; no status.json) have one state wherever a folder's state is asked: done where the
original finished them (parameters.yaml holds test_accuracy, written after training),
else skipped. `RunFolder.outcome()` read them as "pending": the budget's sentence said
"1 runs done" for one greenscreen run beside three seed runs, its `held_back` and
stopped line counted seed runs as waiting, and a sweep over such a folder trained the
seed runs into it. The seed format is read only: nothing here may write into it. Run
folders copied here; no Keras training."""

import json
import shutil
from pathlib import Path

import pytest
from test_analysis_mixed_sources import MEASURED, PARAMS, write
from test_analysis_report import SEED_RUNS

from greenscreen_pipeline import budget, cli, collect, runfolder
from greenscreen_pipeline.runfolder import RunFolder

SEEDS = ("002", "017", "033")
CONFIG = """
settings: {{epochs: 1, seed: 7, runs: {runs}}}
configuration:
  dataset: {{values: [digits]}}
  model: {{values: [ffnn]}}
  batch_size: {{values: [32, 64, 128]}}
"""


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` and its bytes: what "not written to" compares."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def renumbered(folder: Path) -> Path:
    """The seed runs as runs 000, 001, 002 of one sweep folder (runs: 3 covers them all)."""
    for i, name in enumerate(SEEDS):
        shutil.copytree(SEED_RUNS / name, folder / f"{i:03d}")
    return folder


def unfinished(folder: Path) -> Path:
    """A seed folder whose run died in the original pipeline: no test_accuracy written."""
    params = folder / "parameters.yaml"
    params.write_text("".join(line for line in params.read_text().splitlines(True)
                              if not line.startswith("test_accuracy")))
    return folder


def test_a_finished_seed_folder_is_done_and_left_as_it_was(tmp_path):
    for name in SEEDS:
        folder = tmp_path / name
        shutil.copytree(SEED_RUNS / name, folder)
        before = files_of(folder)
        run = RunFolder(folder)
        assert run.is_seed_format()
        assert run.state() == "done"
        outcome = run.outcome()
        assert outcome["status"] == "done" and outcome["attempts"] == 0
        assert outcome["test_accuracy"] == run.parameters()["test_accuracy"]
        assert "reason" not in outcome
        assert files_of(folder) == before and not (folder / "status.json").exists()
    rows = runfolder.statuses(renumbered(tmp_path / "sweep"), 3)
    assert [r["status"] for r in rows] == ["done"] * 3


def test_an_unfinished_seed_folder_is_skipped_with_its_reason(tmp_path):
    folder = unfinished(shutil.copytree(SEED_RUNS / "033", tmp_path / "033"))
    before = files_of(folder)
    outcome = RunFolder(folder).outcome()
    assert outcome["status"] == "skipped" and outcome["status"] in runfolder.FINAL
    assert outcome["reason"] == runfolder.SEED_UNFINISHED
    assert "did not finish" in outcome["reason"] and "test_accuracy" not in outcome
    assert files_of(folder) == before


def test_the_state_agrees_with_the_analysis_row(tmp_path):
    """collect reads a seed folder as done: the folder's own state now says the same."""
    sweep = renumbered(tmp_path / "sweep")
    table = collect.load_sweep(sweep)
    assert list(table["status"]) == [RunFolder.of(sweep, i).state() for i in range(3)]
    assert set(table["format"]) == {"seed"}


def test_an_unfinished_seed_folder_is_skipped_in_the_analysis_too(tmp_path):
    sweep = renumbered(tmp_path / "sweep")
    unfinished(sweep / "002")
    table = collect.load_sweep(sweep)
    assert list(table["status"]) == ["done", "done", "skipped"]
    assert table["reason"].iloc[2] == runfolder.SEED_UNFINISHED


def test_the_budget_sentence_counts_seed_runs_done(tmp_path):
    """One greenscreen run (000) beside the three seed runs, a budget not spent: it said
    "1 runs done within the budget"."""
    sweep = tmp_path / "mix"
    for name in SEEDS:
        shutil.copytree(SEED_RUNS / name, sweep / name)
    write(sweep / "000", PARAMS, 600.0, source=MEASURED)
    (sweep / "sweep.json").write_text(json.dumps({"settings": {"budget": 1e12, "runs": 40}}))
    said = budget.report_sentence(sweep)
    assert said.endswith("; 4 runs done within the budget."), said


def test_a_spent_budget_over_seed_runs_holds_nothing_back(tmp_path):
    """Every planned run is a finished seed run and the budget is spent: none is waiting.
    held_back counted them as pending, so the stopped line and page 1's sentence said the
    budget stopped the sweep "after 0 runs done"."""
    sweep = renumbered(tmp_path / "sweep")
    before = {name: files_of(sweep / name) for name in ("000", "001", "002")}
    settings = {"budget": 1.0, "runs": 3}
    assert not budget.allows_next(settings, sweep)
    started = runfolder.started(sweep, 3)
    assert [r["status"] for r in started] == ["done"] * 3
    assert not budget.held_back(settings, started)
    assert budget.stopped_line(settings, sweep) is None
    (sweep / "sweep.json").write_text(json.dumps({"settings": settings}))
    said = budget.report_sentence(sweep)
    assert said.endswith("; every one of the 3 planned runs trained (3 done), the last past "
                         "the budget: it is asked before a run starts."), said
    assert {name: files_of(sweep / name) for name in before} == before


@pytest.mark.parametrize("retry", [False, True])
def test_a_sweep_over_seed_folders_trains_none_and_writes_nothing_into_them(
        tmp_path, capsys, retry):
    """`greenscreen sweep local` on the seed runs (000 to 002, one unfinished): every one
    is kept, none trained, resumed or retried (--retry-failed), and no file of theirs is
    written or added. It trained all three, writing status.json and our logs.csv into
    them (which the comparison of their files below would show)."""
    sweep = renumbered(tmp_path / "sweep")
    unfinished(sweep / "002")
    before = {name: files_of(sweep / name) for name in ("000", "001", "002")}
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(runs=3))
    args = ["sweep", "local", "--config", str(config), "--sweep-dir", str(sweep), "--no-probe"]
    code = cli.main(args + (["--retry-failed"] if retry else []))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "run 000 kept     acc 0.8880" in out and "run 001 kept     acc 0.6170" in out
    assert "run 002 kept     acc n/a" in out
    assert f"run 002 kept: it skipped ({runfolder.SEED_UNFINISHED})" in out
    assert {name: files_of(sweep / name) for name in before} == before
    assert sorted(p.name for p in sweep.iterdir() if p.name.isdigit()) == ["000", "001", "002"]
