"""The energy budget (issue 37 item 1): `settings.budget` parsed and checked, the energy
spent read from every run folder's attempts, the one rule the executors call, and a
local sweep that stops at its budget and, run again, trains nothing new."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import build_once

from greenscreen_pipeline import budget, manifest, space
from greenscreen_pipeline.executors.ray import dispatch
from greenscreen_pipeline.runfolder import RunFolder
from greenscreen_pipeline.yamlload import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
settings: {{epochs: 1, seed: 7, energy_source: nvidia-smi, budget: {budget}}}
configuration:
  dataset: {{values: [digits]}}
  model: {{values: [ffnn]}}
  batch_size: {{values: [32, 64]}}
"""


@pytest.mark.parametrize("given, joules", [
    (500, 500.0), (2.5, 2.5), ("2 kWh", 7.2e6), ("1.5 Wh", 5400.0), ("3 kJ", 3000.0),
    ("0.5 MJ", 5e5), ("10 J", 10.0), ("1e3 J", 1000.0), ("1.5 GJ", 1.5e9),
    ("2 MWh", 7.2e9), (None, None)])
def test_budget_units(given, joules):
    assert budget.parse(given) == joules


@pytest.mark.parametrize("given", [0, -1, float("inf"), float("nan"), True, "2", "kWh",
                                   "2 kwh x", [2], "-1 kWh"])
def test_bad_budgets_say_what_is_allowed(given):
    with pytest.raises(budget.BudgetError, match="allowed|unit"):
        budget.parse(given)


def test_a_quoted_number_is_told_to_give_a_unit():
    """budget: "500" read "allowed: a number of joules", which it seemed to be (review)."""
    with pytest.raises(budget.BudgetError, match=r"'500' is a number in quotes, without a "
                       r"unit: give one \('500 J', '500 kWh'\) or drop the quotes"):
        budget.parse("500")


def test_a_near_unit_is_suggested():
    with pytest.raises(budget.BudgetError, match="did you mean 'kWh'"):
        budget.parse("2 kwh")
    with pytest.raises(budget.BudgetError, match="did you mean 'kJ'"):
        budget.parse("2 KJ")
    with pytest.raises(budget.BudgetError, match="did you mean 'MWh'"):
        budget.parse("2 Mwh")
    with pytest.raises(budget.BudgetError, match="did you mean 'kWh'"):
        budget.parse("2 kW")


@pytest.mark.parametrize("given", ["2 mJ", "2 mWh", "2 mj", "2 TJ", "2 GWh", "2 mW"])
def test_no_unit_of_another_magnitude_is_suggested(given):
    """"2 mJ" suggested 'MJ' (milli for mega, 10^9 off) and "2 GWh" 'Wh': a user who took
    the hint set a budget orders of magnitude from the one meant."""
    with pytest.raises(budget.BudgetError) as caught:
        budget.parse(given)
    assert "did you mean" not in str(caught.value), str(caught.value)


def _load(tmp_path, settings: str):
    path = tmp_path / "config.yaml"
    path.write_text(f"settings: {{{settings}}}\nconfiguration:\n  model: {{values: [ffnn]}}\n")
    return space.load(path)


def test_the_config_check_names_the_key_and_runs_follow_the_budget(tmp_path):
    with pytest.raises(ConfigError, match=r"settings\.budget: got '2 kwh'.*did you mean 'kWh'"):
        _load(tmp_path, "budget: 2 kwh")
    assert _load(tmp_path, "budget: 2 kWh").settings["runs"] == budget.RUNS_WITH_BUDGET
    assert _load(tmp_path, "budget: 2 kWh").settings["budget"] == 7.2e6
    assert _load(tmp_path, "budget: 2 kWh, runs: 4").settings["runs"] == 4
    assert _load(tmp_path, "runs: 4").settings["budget"] is None


def _summary(sweep, index, source, attempts):
    folder = RunFolder.of(sweep, index).path
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({
        "energy_j": sum(attempts), "source": source,
        "attempts": [{"energy_j": e, "t_start": 0, "t_end": 1} for e in attempts]}))


def test_spent_counts_every_attempt_by_provenance(tmp_path):
    _summary(tmp_path, 0, "measured:nvidia-smi", [100.0, 50.0])  # resumed: two attempts
    _summary(tmp_path, 1, "measured:nvidia-smi", [30.0])  # unfinished
    (RunFolder.of(tmp_path, 1).path / "status.json").write_text('{"status": "interrupted"}')
    _summary(tmp_path, 2, "estimated:cpu-time", [20.0])
    (RunFolder.of(tmp_path, 3).path).mkdir()  # started, nothing measured yet
    now = budget.spent(tmp_path)
    assert (now.measured_j, now.estimated_j, now.total_j) == (180.0, 20.0, 200.0)
    assert now.provenance == "measured + estimated"
    settings = {"runs": 10, "budget": 200.0}
    assert not budget.allows_next(settings, tmp_path)
    assert budget.allows_next({**settings, "budget": 200.5}, tmp_path)
    assert budget.allows_next({**settings, "budget": None}, tmp_path)
    # Each kind's joules said (review: how much of the figure is an estimate was hidden)
    assert budget.line(settings, tmp_path) == \
        "spent 200.0 J of budget 200.0 J (measured + estimated: 180.0 J measured + 20.0 J " \
        "estimated)"
    # In J as the console's total above it: it read "spent 200.0 J of budget 0.005556 kWh".
    assert budget.line({**settings, "budget": 20000.0}, tmp_path) == \
        "spent 200.0 J of budget 20000.0 J = 0.005556 kWh (measured + estimated: 180.0 J " \
        "measured + 20.0 J estimated)"
    # Page 1: both in the budget's unit.
    assert budget.in_budget_units(200.0, 7.2e6) == "0.000056 kWh"
    assert budget.in_budget_units(7.2e6, 7.2e6) == "2.000 kWh"
    said = budget.stopped_line(settings, tmp_path)
    assert "energy budget reached after 0 runs done" in said
    assert said.endswith("; run(s) 001 stay interrupted (a larger settings.budget "
                         "resumes them)")  # 000 and 002 have no status; 003 never began
    # neither word is true yet, nor "nothing spent" once runs without a figure have ended
    assert budget.Spent().provenance == "no energy figure yet"


def test_a_run_whose_summary_cannot_be_read_starts_no_run_and_is_named(tmp_path, caplog):
    """Run 002's summary.json cut in half counted as 0 J: "spent 150.0 J of budget
    200.0 J", and runs went on starting past a budget that may have been spent."""
    _summary(tmp_path, 0, "measured:nvidia-smi", [100.0])
    _summary(tmp_path, 1, "measured:nvidia-smi", [50.0])
    _summary(tmp_path, 2, "measured:nvidia-smi", [90.0])
    path = RunFolder.of(tmp_path, 2).path / "summary.json"
    path.write_text(path.read_text()[:20])
    settings = {"runs": 10, "budget": 200.0}
    now = budget.spent(tmp_path)
    assert now.total_j == 150.0 and now.unreadable == (2,)
    assert now.to_json()["unreadable_runs"] == ["002"]
    with caplog.at_level("WARNING"):
        assert not budget.allows_next(settings, tmp_path)
    assert "what run(s) 002 spent is not known (summary.json unreadable)" in caplog.text
    assert str(path) in caplog.text
    assert budget.line(settings, tmp_path) == (
        "spent 150.0 J of budget 200.0 J (measured); what run(s) 002 spent is not known "
        "(summary.json unreadable)")
    assert "energy budget cannot be judged after 0 runs done" in \
        budget.stopped_line(settings, tmp_path)
    assert budget.allows_next({**settings, "budget": None}, tmp_path)  # no budget: no rule
    path.unlink()  # removed: the run is as one that has measured nothing yet
    assert budget.allows_next(settings, tmp_path)


def test_ray_dispatch_starts_nothing_once_the_budget_says_no():
    class Ref:
        def __init__(self, index):
            self.index = index

    class Actor:
        class train:  # noqa: N801 - Ray's actor.method.remote form
            @staticmethod
            def remote(index):
                return Ref(index)

    class FakeRay:
        class exceptions:  # noqa: N801
            RayError = RuntimeError

        @staticmethod
        def wait(refs, num_returns):
            return refs[:1], refs[1:]

        @staticmethod
        def get(ref):
            return ref.index

    reports: list = []
    dispatch(FakeRay, [Actor()], [0, 1, 2, 3], {}, reports.append, lambda: len(reports) < 2)
    assert reports == [0, 1]


def sweep(config: Path, out: Path):
    return subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "sweep", "local",
                           "--config", str(config), "--sweep-dir", str(out), "--no-probe"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_sweep_stops_at_its_budget_and_resuming_trains_nothing_new(fake_smi, tmp_path):
    config, out = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(CONFIG.format(budget="'1 J'"))
    first = sweep(config, out)
    assert first.returncode == 0, first.stderr
    said = first.stdout + first.stderr
    assert "spent" in said and "of budget 1.0 J (measured)" in said
    assert "energy budget reached after 1 run done" in said, said
    assert "greenscreen: 1 run done; results in" in said  # not 1/1: no count planned
    assert sorted(p.name for p in out.iterdir() if p.name.isdigit()) == ["000"]
    assert RunFolder.of(out, 0).state() == "done"
    again = sweep(config, out)
    assert again.returncode == 0, again.stderr
    assert "energy budget reached after 1 run done" in again.stdout + again.stderr
    assert sorted(p.name for p in out.iterdir() if p.name.isdigit()) == ["000"]
    # A larger budget, just above what was spent: the resumed sweep counts run 000's
    # energy, so exactly one more run starts.
    spent = budget.spent(out).total_j
    config.write_text(CONFIG.format(budget=spent + 1e-6))
    more = sweep(config, out)
    assert more.returncode == 0, more.stderr
    assert "energy budget reached after 2 runs done" in more.stdout + more.stderr
    assert sorted(p.name for p in out.iterdir() if p.name.isdigit()) == ["000", "001"]
    assert budget.report_sentence(out).endswith("the sweep stopped at the budget after 2 "
                                                 "runs done.")
    assert "ETA" not in more.stdout and "[2] run 001 done" in more.stdout


def test_slurm_needs_shares_for_a_budget(tmp_path):
    from greenscreen_pipeline.errors import UsageError
    from greenscreen_pipeline.executors import slurm

    with pytest.raises(UsageError, match="slurm_parallel"):
        slurm.scripts(_load(tmp_path, "budget: 2 kWh"), tmp_path / "sweep")
    array, _, _ = slurm.scripts(_load(tmp_path, "budget: 2 kWh, slurm_parallel: 4"),
                                tmp_path / "sweep")
    assert '--share "$SLURM_ARRAY_TASK_ID/4"' in array


# -- the budget and halving: a peer that will never start is not waited for ----------------
HALVING = """
settings: {epochs: 3, seed: 7, runs: 2, energy_source: nvidia-smi, budget: 1 J,
           early_stop: halving, slurm_parallel: 2}
configuration:
  dataset: {values: [digits]}
  model: {values: [ffnn]}
  batch_size: {values: [32, 64]}
"""


def _pipeline(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "greenscreen_pipeline", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_a_share_at_a_rung_does_not_wait_for_a_batch_mate_the_budget_kept_out(fake_smi,
                                                                              tmp_path):
    """A Slurm array task (`run-one --share 0/2`) trains run 000, whose rung-1 peers are
    000 and 001. Task 1/2 has not started (queued) when the budget is spent, so run 001
    never will: run 000 is decided without it and finishes, where it used to wait at its
    rung until the task's --time ran out. Task 1/2 then starts nothing."""
    config, out = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(HALVING)
    flags = ["--config", str(config), "--sweep-dir", str(out)]
    submitted = _pipeline("sweep", "slurm", *flags, "--dry-run", "--no-probe")
    assert submitted.returncode == 0, submitted.stderr
    first = _pipeline("run-one", *flags, "--share", "0/2", timeout=240)
    said = first.stdout + first.stderr
    assert first.returncode == 0, said[-3000:]
    assert RunFolder.of(out, 0).state() == "done", said[-3000:]
    assert len(RunFolder.of(out, 0).logs()) == 3  # kept at its rung, alone, and trained on
    assert (RunFolder.of(out, 0).path / "rungs" / "0001.json").exists()
    assert "energy budget reached after 1 run done" in said
    second = _pipeline("run-one", *flags, "--share", "1/2")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "energy budget reached after 1 run done" in second.stdout + second.stderr
    assert sorted(p.name for p in out.iterdir() if p.name.isdigit()) == ["000"]


def test_a_peer_that_has_not_started_never_starts_once_the_budget_is_spent(tmp_path):
    """rungfiles.never_starts: only a run that has not started (or stopped, with no process
    on it) and is not parked, and only once the budget is spent."""
    from greenscreen_pipeline.executors import claims
    from greenscreen_pipeline.search.rungfiles import never_starts, will_not_reach

    settings = {"runs": 10, "budget": 100.0}
    _summary(tmp_path, 0, "measured:nvidia-smi", [60.0])
    assert not never_starts(settings, tmp_path, 1)  # 60 J of 100 J: it may still start
    _summary(tmp_path, 2, "measured:nvidia-smi", [50.0])
    assert never_starts(settings, tmp_path, 1)  # no folder at all
    assert not never_starts({**settings, "budget": None}, tmp_path, 1)
    assert will_not_reach(tmp_path, 1, settings) and not will_not_reach(tmp_path, 1)
    RunFolder.of(tmp_path, 2).write_status("interrupted", reason="stopped by SIGTERM")
    assert never_starts(settings, tmp_path, 2)
    RunFolder.of(tmp_path, 2).write_status("parked", rung=1, peers=[0, 1, 2])
    assert not never_starts(settings, tmp_path, 2)  # resumes once its rung is decided
    RunFolder.of(tmp_path, 0).write_status("done")
    assert not never_starts(settings, tmp_path, 0) and will_not_reach(tmp_path, 0)
    assert claims.claim(tmp_path, 1)  # a live process (this one) is about to train it
    assert not never_starts(settings, tmp_path, 1)
    claims.release(tmp_path, 1)


def test_a_parked_run_whose_peer_never_starts_may_resume(tmp_path):
    """The local pool's parked run (rungfiles.parked_is_decided) counts out a peer that the
    spent budget keeps from starting, and is decided; without the sweep's settings it
    would wait for that peer."""
    from greenscreen_pipeline.search import rungfiles
    from greenscreen_pipeline.search.halving import RungRecord

    settings = {"runs": 10, "budget": 100.0}
    _summary(tmp_path, 0, "measured:nvidia-smi", [150.0])
    rungfiles.write_rung(RunFolder.of(tmp_path, 0).path, RungRecord(0, 1, 0.9, 150.0))
    RunFolder.of(tmp_path, 0).write_status("parked", rung=1, peers=[0, 1])
    status = RunFolder.of(tmp_path, 0).status_record()
    assert not rungfiles.parked_is_decided(tmp_path, 0, status, 3, True)
    assert rungfiles.parked_is_decided(tmp_path, 0, status, 3, True, settings)


def test_a_run_claimed_after_the_budget_was_spent_does_not_start(tmp_path, capsys):
    """train_claimed reads the budget again once it holds the claim: a run that passed the
    executor's check just before the budget was spent does not start (its peers may
    already have counted it out), and its claim is let go."""
    from greenscreen_pipeline.executors import claims, train_claimed

    config = _load(tmp_path, "budget: 100 J, runs: 4")
    sweep = tmp_path / "sweep"
    _summary(sweep, 0, "measured:nvidia-smi", [120.0])
    report = train_claimed(config, sweep, 1, epochs=1)
    assert report.note == "not started: the energy budget is spent"
    assert report.outcome["status"] == "pending" and report.wall_s is None
    assert claims.owner(sweep, 1) is None and not RunFolder.of(sweep, 1).path.exists()
    # The progress line says so, and the run counts neither as one of the sweep's nor
    # in its energy (`[n]` is the runs this invocation reported on).
    from greenscreen_pipeline.executors.progress import Progress

    progress = Progress(None)
    progress.report(sweep, report)
    assert progress.done == 0 and progress.total == 0.0
    assert capsys.readouterr().out == "    run 001 not started: the energy budget is spent\n"


def _again(executor: str, config: Path, out: Path) -> list[str]:
    """The same command again, by executor (a Slurm array's task 0 runs `run-one`)."""
    where = ["--config", str(config), "--sweep-dir", str(out)]
    return {"local": ["sweep", "local", *where, "--workers", "2", "--no-probe"],
            "slurm task": ["run-one", *where, "--share", "0/2"],
            "ray": ["sweep", "ray", *where, "--num-cpus", "2", "--no-probe"]}[executor]


@pytest.mark.parametrize("executor", ["local", "slurm task", "ray"])
def test_a_run_an_earlier_sweep_left_parked_finishes_once_the_budget_is_spent(
        fake_smi, shared_root, tmp_path, executor):
    """A run parked at a rung by a sweep that is gone is in flight: run again with the
    budget spent, the sweep resumes it (its peer, which never started, is counted out)
    and it trains to the end, each epoch once; no new run starts. It used to stay parked
    (local), and under Ray and in a Slurm array task it still did, though they said "the
    same command again finishes them"."""
    if executor == "ray":
        pytest.importorskip("ray", reason='Ray is not installed: pip install ".[ray]"')

    def park(folder: Path) -> None:  # run 000 at rung 1, waiting for run 001
        config, out = folder / "config.yaml", folder / "sweep"
        config.write_text(HALVING.replace("budget: 1 J", "budget: null"))
        manifest.record(space.load(config), out, 2)  # as `sweep local --workers 2` starts it
        parked = subprocess.run([sys.executable, "-m", "greenscreen_pipeline.run",
                                 "--config", str(config), "--sweep-dir", str(out),
                                 "--index", "0", "--release"],
                                cwd=ROOT, capture_output=True, text=True, timeout=240)
        assert RunFolder.of(out, 0).state() == "parked", parked.stderr[-3000:]
        assert len(RunFolder.of(out, 0).logs()) == 1

    shared = build_once(shared_root, "budget-parked-run", park)
    config, out = tmp_path / "config.yaml", tmp_path / "sweep"
    shutil.copytree(shared / "sweep", out)
    config.write_text(HALVING)  # 1 J: run 000's first epoch spent it
    again = _pipeline(*_again(executor, config, out))
    said = again.stdout + again.stderr
    assert again.returncode == 0, said[-3000:]
    assert RunFolder.of(out, 0).state() == "done", said[-3000:]
    assert list(RunFolder.of(out, 0).logs()["epoch"]) == [0, 1, 2]
    assert "energy budget reached after 1 run done" in said, said[-3000:]
    assert sorted(p.name for p in out.iterdir() if p.name.isdigit()) == ["000"]
    if executor != "slurm task":  # of the 2 planned (it said 1/1: the runs started)
        assert "1/2 runs done; results in" in said, said[-3000:]


def test_spent_follows_every_change_to_the_run_folders(tmp_path):
    """`spent` keeps each sweep's figures between questions (it is asked before every
    run): a run that ends, one resumed and a new one are each counted at once."""
    from test_sweep_totals import SMI, settle, write_run

    from greenscreen_pipeline import sweep_total

    sweep = tmp_path / "sweep"
    write_run(sweep, 0, [(100.0, 110.0, {"gpu": 50.0})], {"gpu": SMI})
    settle(sweep / "000")  # older than two seconds: kept between questions
    assert budget.spent(sweep).total_j == 50.0
    write_run(sweep, 0, [(100.0, 110.0, {"gpu": 50.0}), (120.0, 125.0, {"gpu": 20.0})],
              {"gpu": SMI})
    settle(sweep / "000")
    write_run(sweep, 2, [(130.0, 131.0, {"gpu": 7.5})], {"gpu": SMI})
    assert budget.spent(sweep).total_j == 77.5 == sweep_total.of(sweep).total_j


def test_a_budget_passed_by_the_last_planned_run_did_not_stop_the_sweep(tmp_path):
    """runs: 2, budget 40 J, both runs trained (72 J): page 1 said "the sweep stopped at
    the budget after 2 runs done", though `runs` ended it and nothing was held back."""
    from test_sweep_totals import SMI, write_run

    sweep = tmp_path / "sweep"
    manifest.record(_load(tmp_path, "budget: 40, runs: 2"), sweep)
    write_run(sweep, 0, [(100.0, 110.0, {"gpu": 36.0})], {"gpu": SMI})
    write_run(sweep, 1, [(120.0, 130.0, {"gpu": 36.3})], {"gpu": SMI})
    said = budget.report_sentence(sweep)
    assert said.endswith("every one of the 2 planned runs trained (2 done), the last past "
                         "the budget: it is asked before a run starts."), said
    assert budget.stopped_line({**_load(tmp_path, "budget: 40, runs: 2").settings},
                               sweep) is None


def test_final_does_not_wait_for_runs_the_spent_budget_holds_back(tmp_path):
    """With the budget spent, an interrupted run and a proposed one that never started do
    not train when the same sweep command runs again: `final --if-complete` (the Slurm
    report job's) said "final not run: ... run the same sweep command again" for ever.
    Now it goes on, and says what the budget holds back; a parked run still blocks it."""
    sweep = tmp_path / "sweep"
    config = tmp_path / "config.yaml"
    config.write_text(f"settings: {{budget: 100 J, runs: 4, sweep_dir: {sweep}}}\n"
                      "configuration:\n  model: {values: [ffnn]}\n")
    _summary(sweep, 0, "measured:nvidia-smi", [90.0])
    RunFolder.of(sweep, 0).write_status("done")
    _summary(sweep, 1, "measured:nvidia-smi", [30.0])
    RunFolder.of(sweep, 1).write_status("interrupted")
    RunFolder.of(sweep, 2).path.mkdir()  # proposed (a pareto batch), never started
    RunFolder.of(sweep, 2).write_status("pending")
    final = ["final", "--config", str(config), "--if-complete"]
    done = _pipeline(*final)
    assert "final not run" not in done.stderr, done.stderr
    assert ("the sweep is not complete (runs 001 (interrupted), 002 (pending) held back by "
            "the spent budget): the recommendation is of the runs finished so far; a "
            "larger settings.budget trains what it holds back") in done.stderr, done.stderr
    assert done.returncode == 2 and "run greenscreen analyze first" in done.stderr
    RunFolder.of(sweep, 2).write_status("parked", rung=1, peers=[0, 2])  # it resumes
    blocked = _pipeline(*final)
    assert "final not run: run 002 (parked) not finished; run the same sweep command " \
           "again to train them, then final" in blocked.stderr, blocked.stderr
    assert blocked.returncode == 0


def test_a_run_left_parked_at_a_spent_budget_is_named_not_called_trained(tmp_path):
    """Every planned run started and one stays parked at a rung when the budget is spent:
    the sweep's last line said nothing, and page 1 said every planned run trained."""
    from test_sweep_totals import SMI, write_run

    sweep = tmp_path / "sweep"
    write_run(sweep, 0, [(100.0, 110.0, {"gpu": 600.0})], {"gpu": SMI}, status="done")
    write_run(sweep, 1, [(110.0, 112.0, {"gpu": 100.0})], {"gpu": SMI}, status="parked")
    settings = {"budget": 500.0, "runs": 2}
    said = budget.stopped_line(settings, sweep)
    assert said is not None and "run(s) 001 stay parked at a rung" in said, said
    (sweep / "sweep.json").write_text(json.dumps({"settings": settings}))
    assert budget.report_sentence(sweep).endswith("the sweep stopped at the budget after 1 "
                                                  "run done."), budget.report_sentence(sweep)


def test_a_budget_smaller_than_one_run_says_so(tmp_path):
    """A 10 J budget trained one run of 75 J and ended there, without a word (review)."""
    _summary(tmp_path, 0, "estimated:cpu-time", [75.0])
    (RunFolder.of(tmp_path, 0).path / "status.json").write_text('{"status": "done"}')
    said = budget.stopped_line({"runs": 5, "budget": 10.0}, tmp_path)
    assert said.endswith("; one run spent more than the whole budget (75.0 J of 10.0 J): "
                         "raise settings.budget to compare configurations"), said
    _summary(tmp_path, 1, "estimated:cpu-time", [5.0])  # two runs: no such line
    assert "whole budget" not in budget.stopped_line({"runs": 5, "budget": 10.0}, tmp_path)

