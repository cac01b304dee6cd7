"""Halving rules of issue 37 (grace period, brackets, non-dominated sorting): their decisions
on small hand-made rung tables, and the same decisions replayed from rung records.

Fast: no Keras training; rung files in a temporary folder.
"""

import pytest

from greenscreen_pipeline.search import halving, rungfiles
from greenscreen_pipeline.search.halving import GO_ON, STOP, WAIT, Rule, RungRecord


def table(rows, epoch=1):
    return [RungRecord(run, epoch, obj, energy) for run, obj, energy in rows]


def test_a_grace_period_puts_the_first_rung_at_a_share_of_the_run():
    assert Rule(3, grace=0.1).rungs(51) == [5, 15, 45]
    assert Rule(3, grace=0.2).rungs(50) == [10, 30]
    assert Rule(3, grace=0.1).rungs(9) == [1, 3]  # a short run: epoch 1, as before
    assert Rule(3).rungs(51) == halving.rungs(51, 3) == [1, 3, 9, 27]
    for bad in ({"grace": 1.0}, {"grace": -0.1}, {"brackets": 0}, {"ranking": "crowding"},
                {"eta": 1}):
        with pytest.raises(ValueError):
            Rule(**{"eta": 3, **bad})


def test_brackets_start_later_runs_at_later_rungs_and_judge_them_among_their_own():
    rule = Rule(3, brackets=3)
    assert [rule.rungs(51, run) for run in (0, 1, 2, 3)] == [[1, 3, 9, 27], [3, 9, 27],
                                                            [9, 27], [1, 3, 9, 27]]
    rule = Rule(3, brackets=2)
    records = {0: RungRecord(0, 1, 0.5, 1.0), 2: RungRecord(2, 1, 0.9, 1.0)}
    # runs 1 and 3 (bracket 1) are not judged at rung 1: run 0 waits for nobody but run 2
    assert halving.decide(0, records, ended=set(), group=[0, 1, 2, 3], eta=rule) == STOP
    assert halving.decide(2, records, ended=set(), group=[0, 1, 2, 3], eta=rule) == GO_ON
    assert halving.decide(0, {0: records[0]}, set(), [0, 1, 2, 3], rule) == WAIT


def test_non_dominated_sorting_keeps_whole_fronts_then_fills_by_the_objective():
    # (objective, energy so far): run 0 dominates all; front 2 = runs 1 and 3; run 4 is
    # third by objective but dominated by run 1. n = 9, eta 3: 3 go on.
    rows = [(0, 0.9, 1.0), (1, 0.8, 2.0), (3, 0.7, 1.5), (4, 0.75, 9.0), (5, 0.6, 3.0),
            (6, 0.5, 4.0), (7, 0.4, 6.0), (8, 0.3, 7.0), (9, 0.2, 8.0)]
    assert halving.nds_survivors(table(rows), eta=3) == {0, 1, 3}
    assert halving.survivors(table(rows), eta=3) == {0, 1, 4}  # issue 25's: by objective
    assert Rule(3, ranking="nds").survivors(table(rows)) == {0, 1, 3}
    # the first front always goes on, even when larger than ceil(n / eta)
    rows = [(0, 0.9, 10.0), (1, 0.8, 5.0), (2, 0.7, 1.0), (3, 0.85, 12.0), (4, 0.6, 6.0),
            (5, 0.5, 20.0)]
    assert halving.nds_survivors(table(rows), eta=3) == {0, 1, 2}
    assert halving.survivors(table(rows), eta=3) == {0, 1, 2, 3}
    # a front that overflows is filled by objective, then energy, then run index
    rows = [(0, 0.9, 1.0), (1, 0.8, 2.0), (2, 0.85, 5.0), (3, 0.7, 1.5)] + \
        [(i, 0.1, 9.0 + i) for i in range(4, 9)]
    assert halving.nds_survivors(table(rows), eta=3) == {0, 1, 2}
    nan = float("nan")
    assert halving.nds_survivors(table([(0, nan, 1.0), (1, 0.5, 9.0)]), eta=3) == {1}
    # minimising (val_loss): the same order read the other way round
    assert halving.nds_survivors(table([(0, 0.1, 5.0), (1, 0.2, 1.0), (2, 0.3, 6.0)]), 3,
                                 maximize=False) == {0, 1}


def curves_of(finals):
    """Made-up learning curves of 12 epochs: run i rises towards finals[i], crossing."""
    out = {}
    for run, (start, end, joules) in finals.items():
        out[run] = [(start + (end - start) * e / 11, joules * (e + 1)) for e in range(12)]
    return out


CURVES = curves_of({0: (0.6, 0.70, 1.0), 1: (0.5, 0.90, 2.0), 2: (0.65, 0.66, 1.5),
                    3: (0.3, 0.95, 3.0), 4: (0.55, 0.60, 0.5), 5: (0.4, 0.80, 1.0),
                    6: (0.62, 0.64, 2.5), 7: (0.2, 0.85, 0.8)})
RULES = [Rule(3), Rule(2, grace=0.25), Rule(3, brackets=2), Rule(2, ranking="nds"),
         Rule(2, grace=0.25, ranking="nds"), halving.default_rule(3)]


def decide_from_records(sweep, curves, batch_size, rule):
    """Each run at each of its rungs writes its record and decides from the rung files
    alone, as a sweep does; returns the epochs each run trains."""
    trained = {run: len(c) for run, c in curves.items()}
    epochs = max(trained.values())
    for rung in sorted({r for run in curves for r in rule.rungs(epochs, run)}):
        at = [run for run in curves if rung in rule.rungs(epochs, run) and trained[run] >= rung]
        for run in at:  # every peer reaches the rung (it would wait for them otherwise)
            record = RungRecord(run, rung, *curves[run][rung - 1])
            rungfiles.write_rung(sweep / f"{run:03d}", record)
        for run in at:
            record = rungfiles.read_rung(sweep / f"{run:03d}", rung)
            group = halving.peers(run, batch_size, len(curves))
            decision = rungfiles.await_decision(sweep, record, group,
                                                lambda p, r=rung: trained[p] < r, rule,
                                                timeout_s=0, sleep=lambda s: None)
            trained[run] = rung if decision == STOP else trained[run]
    return trained


@pytest.mark.parametrize("rule", [Rule(3), halving.default_rule(3)])
def test_a_rung_whose_energies_mix_measured_and_estimated_is_decided_by_the_objective(
        tmp_path, rule):
    """A sweep resumed where RAPL became readable: runs 0-5 estimated at 50-70 J, run 6
    measured at 8 J. Run 6, the worst by far, went on as the cheapest (review)."""
    est, rapl = "estimated:cpu-time", "measured:rapl"
    records = {run: RungRecord(run, 1, 0.80 + run / 100, 50.0 + 4 * run, est)
               for run in range(6)}
    records[6] = RungRecord(6, 1, 0.49, 8.0, rapl)
    group = list(range(7))
    decided = {run: halving.decide(run, records, set(), group, rule) for run in group}
    assert decided == {run: GO_ON if run in (3, 4, 5) else STOP for run in group}
    # one kind, or records from before kinds were kept: the energies count as before
    older = {run: RungRecord(run, 1, r.objective, r.energy_j) for run, r in records.items()}
    assert halving.decide(6, older, set(), group, rule) == GO_ON
    same = {run: RungRecord(run, 1, r.objective, r.energy_j, rapl) for run, r in records.items()}
    assert halving.decide(6, same, set(), group, rule) == GO_ON
    # older records (no kind: the estimates of a sweep resumed where RAPL became readable)
    # beside measured ones: unknown kinds, decided by the objective too
    resumed = {**older, 6: records[6]}
    assert halving.decide(6, resumed, set(), group, rule) == STOP
    # the kind is kept in the record, so a resumed sweep decides the same
    rungfiles.write_rung(tmp_path, records[6])
    assert rungfiles.read_rung(tmp_path, 1) == records[6]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.describe())
def test_every_rule_decides_the_same_from_rung_records_as_its_replay(tmp_path, rule):
    expected = halving.replay(CURVES, batch_size=4, eta=rule)
    assert decide_from_records(tmp_path, CURVES, 4, rule) == expected
    assert any(e < 12 for e in expected.values())  # something was stopped
    # resumed: the records are read back, and every decision is the same
    assert decide_from_records(tmp_path, CURVES, 4, rule) == expected


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.describe())
def test_a_replay_batch_by_batch_decides_as_a_replay_of_the_whole_sweep(rule):
    known = {}
    for end in (4, 8):
        known = halving.replay({r: c for r, c in CURVES.items() if r < end}, 4, rule,
                               known=known)
    assert known == halving.replay(CURVES, 4, rule)


def test_the_grace_period_keeps_a_slow_starter_that_epoch_1_would_stop():
    # run 1 starts worst and ends best; at epoch 1 it is stopped, at epoch 3 of 12 it is not
    curves = curves_of({0: (0.6, 0.62, 1.0), 1: (0.3, 0.95, 1.0), 2: (0.58, 0.60, 1.0)})
    curves[1] = [(0.3, 1.0)] + [(0.9 + e / 100, e + 1.0) for e in range(1, 12)]
    assert halving.replay(curves, 3, Rule(3))[1] == 1
    assert halving.replay(curves, 3, Rule(3, grace=0.25))[1] == 12


def test_a_sweep_records_the_default_rule_and_keeps_it_for_life(tmp_path):
    """sweep.json records the rule a sweep starts with; its runs apply it (their callback,
    a parked run's decision), and a resumed sweep keeps it. A sweep.json from before rules
    were recorded applied issue 25's rule, and goes on with it."""
    import json

    from greenscreen_pipeline import manifest, space
    from greenscreen_pipeline.run.execute import halving_of

    path = tmp_path / "config.yaml"
    path.write_text("settings: {runs: 8, epochs: 51, early_stop: halving}\n"
                    "configuration: {lr: {values: [0.1, 0.01]}}\n")
    config, sweep = space.load(path), tmp_path / "sweep"
    manifest.record(config, sweep, batch_size=4)
    recorded = json.loads((sweep / "sweep.json").read_text())["search"]["halving_rule"]
    assert recorded == manifest.rule_json(halving.default_rule(3))
    callback = halving_of(config, str(sweep), 5, 51)
    assert callback.rule == halving.default_rule(3) == manifest.halving_rule(sweep, 3)
    assert callback.rungs == halving.default_rule(3).rungs(51, 5)
    assert halving.as_rule(2) == Rule(2)  # a bare eta is issue 25's rule
    # Started before rules were recorded: issue 25's rule, kept when the sweep resumes.
    data = json.loads((sweep / "sweep.json").read_text())
    del data["search"]["halving_rule"]
    (sweep / "sweep.json").write_text(json.dumps(data))
    assert manifest.halving_rule(sweep, 3) == Rule(3)
    manifest.record(config, sweep, batch_size=4)
    assert manifest.halving_rule(sweep, 3) == Rule(3)
    assert halving_of(config, str(sweep), 5, 51).rungs == Rule(3).rungs(51, 5)
    assert manifest.halving_rule(tmp_path / "none", 3) == halving.default_rule(3)


def test_a_parked_run_says_whom_it_waits_for_or_that_no_one_is_left():
    from greenscreen_pipeline.search.rung_callback import RunParked

    assert "waiting for run(s) 000, 002 to reach it or end" in str(RunParked(1, 3, [0, 1, 2],
                                                                           [0, 2]))
    alone = str(RunParked(1, 3, [0, 1, 2], []))  # the peers recorded as it parked
    assert "run(s)  " not in alone and "its last peers reached it or ended" in alone


def test_a_run_parked_in_a_slurm_array_names_only_the_peers_whose_task_ended():
    """Run 002 waits for runs 001 (its task still queued) and 003 (its task cancelled):
    the reason names 003 and its task 12_1 alone, and when the run resumes."""
    from greenscreen_pipeline.executors.slurm_tasks import ArrayJob
    from greenscreen_pipeline.search.rung_callback import RunParked

    job = ArrayJob("12", 0, shares=2)
    said = str(RunParked(2, 1, [0, 1, 2, 3], [1, 3], job, gone=[3]))
    assert "waiting for run(s) 003, whose Slurm array task(s) 12_1 ended" in said
    assert "001" not in said and "when the sweep is submitted again" in said
    assert [job.task_of(r) for r in range(4)] == [0, 1, 0, 1]
    assert ArrayJob("12", 5).task_of(5) == 5  # a task per run
    assert ArrayJob.here({"SLURM_ARRAY_JOB_ID": "12", "SLURM_ARRAY_TASK_ID": "1",
                          "GREENSCREEN_SLURM_SHARES": "2"}) == ArrayJob("12", 1, 2)
    assert ArrayJob.here({}) is None  # a local sweep, a run-one by hand


SLURM_HALVING = """
settings: {epochs: 3, seed: 7, runs: 2, energy_source: estimate, early_stop: halving,
           slurm_parallel: 2}
configuration:
  dataset: {values: [digits]}
  model: {values: [ffnn]}
  batch_size: {values: [32, 64]}
"""


def test_a_run_killed_while_it_waits_at_a_rung_resumes_at_the_rung(tmp_path):
    """A Slurm task cancelled (or out of --time) while its run waits at rung 1 for a peer:
    the rung epoch was trained again on resubmission, since the run waited before that
    epoch's checkpoint was written. It now waits after it, and resumes at the rung."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from greenscreen_pipeline.runfolder import RunFolder

    root = Path(__file__).resolve().parents[1]
    config, out = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(SLURM_HALVING)
    flags = ["--config", str(config), "--sweep-dir", str(out)]
    cmd = [sys.executable, "-m", "greenscreen_pipeline"]
    assert subprocess.run([*cmd, "sweep", "slurm", *flags, "--dry-run", "--no-probe"],
                          cwd=root, capture_output=True, timeout=120).returncode == 0
    task = subprocess.Popen([*cmd, "run-one", *flags, "--index", "0"], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 180
        while not (out / "000" / "rungs" / "0001.json").exists() and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)  # waiting for run 001, which never comes
        assert task.poll() is None
        os.killpg(task.pid, signal.SIGTERM)  # scancel
        task.wait(timeout=60)
    finally:
        if task.poll() is None:
            os.killpg(task.pid, signal.SIGKILL)
    assert RunFolder.of(out, 0).state() == "interrupted"
    # run 001 reaches the rung, worse and dearer: run 000 goes on
    rungfiles.write_rung(out / "001", RungRecord(1, 1, 0.0, 1e9))
    again = subprocess.run([*cmd, "run-one", *flags, "--index", "0"], cwd=root,
                           capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads((out / "000" / "summary.json").read_text())
    assert [a["first_epoch"] for a in summary["attempts"]] == [0, 1]  # not 0 again
    assert [int(r["epoch"]) for r in RunFolder.of(out, 0).logs().to_dict("records")] == \
        [0, 1, 2]


@pytest.mark.parametrize("process", ["warm worker", "process of its own"])
def test_a_run_past_the_config_s_runs_is_judged_among_the_sweep_s_peers(tmp_path, process):
    """`--runs 4` over a config of 2: the run process reloaded config.yaml and judged run 3
    among runs 0 and 1 alone (the config's runs), itself left out, and stopped it at its
    first rung whatever it scored. Now the executor's runs go with the request: run 3,
    alone at rung 1, parks to wait for its peers 0 to 3. The Slurm array's tasks are given
    the submitter's --runs and --epochs too."""
    import subprocess
    import sys
    from pathlib import Path

    from greenscreen_pipeline.executors.stop import never
    from greenscreen_pipeline.executors.workers import WorkerSlot
    from greenscreen_pipeline.run.execute import PARKED, Request
    from greenscreen_pipeline.runfolder import RunFolder

    root = Path(__file__).resolve().parents[1]
    config, out = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(SLURM_HALVING)
    cmd = [sys.executable, "-m", "greenscreen_pipeline"]
    flags = ["--config", str(config), "--sweep-dir", str(out)]
    written = subprocess.run([*cmd, "sweep", "slurm", *flags, "--runs", "4", "--dry-run",
                              "--no-probe"], cwd=root, capture_output=True, text=True,
                             timeout=120)
    assert written.returncode == 0, written.stderr[-2000:]
    array = (out / "slurm" / "runs.sbatch").read_text()
    assert "--runs 4 --epochs 3" in array.splitlines()[-1]
    if process == "warm worker":
        slot = WorkerSlot()
        try:
            ending = slot.train(Request(str(config), str(out), 3, 3, release=True, runs=4),
                                never())
        finally:
            slot.close()
        code = ending.code
    else:
        code = subprocess.run([sys.executable, "-m", "greenscreen_pipeline.run", *flags,
                               "--index", "3", "--epochs", "3", "--runs", "4", "--release"],
                              cwd=root, capture_output=True, text=True, timeout=240).returncode
    status = RunFolder.of(out, 3).status_record()
    assert code == PARKED and status["status"] == "parked", status
    assert status["rung"] == 1 and status["peers"] == [0, 1, 2, 3], status


def test_a_resumed_run_keeps_the_decision_its_rung_made(tmp_path):
    """Run 0 went on at its first rung with peer 2 counted out (the budget spent before it
    started). The budget is raised, run 2 trains and reaches the rung better and cheaper,
    and run 0 resumes from a later epoch: it decided that rung again, now "stop" (review).
    The decision is recorded once made and read back."""
    from test_sweep_totals import SMI, write_run

    from greenscreen_pipeline.search.rung_callback import RungCallback

    sweep, rule = tmp_path, halving.default_rule(3)
    write_run(sweep, 0, [(100.0, 110.0, {"gpu": 300.0})], {"gpu": SMI}, status="running")
    write_run(sweep, 1, [(100.0, 110.0, {"gpu": 300.0})], {"gpu": SMI}, status="stopped")

    def callback(budget_j):
        return RungCallback(sweep, 0, range(3), 9, rule, "val_accuracy", True,
                            settings={"budget": budget_j, "runs": 3})

    first = callback(500.0).rungs[0]
    rungfiles.write_rung(sweep / "001", RungRecord(1, first, 0.50, 300.0))
    record = RungRecord(0, first, 0.90, 300.0)
    rungfiles.write_rung(sweep / "000", record)
    assert callback(500.0).decide(record) == GO_ON  # 600 J of 500 spent: run 2 never starts
    rungfiles.write_rung(sweep / "002", RungRecord(2, first, 0.95, 100.0))  # budget raised
    resumed = callback(5000.0)
    assert rungfiles.decision_now(sweep, record, [0, 1, 2], resumed.has_ended, rule) == STOP
    resumed.check_resumed(first + 2)  # neither stopped nor parked: the rung's decision stands
    assert resumed.stopped_at is None and resumed.parked_at is None
    assert rungfiles.read_decision(sweep / "000", first) == GO_ON


def test_a_run_whose_loss_is_nan_is_recorded_at_its_rung_as_nan(tmp_path):
    """A diverged run recorded its broken model's val_accuracy (0.1) at the rung: cheap,
    it stood on the rung's front and pushed a healthy peer out. It is recorded as NaN,
    which never goes on, and a healthy peer keeps its place."""
    import math

    from test_sweep_totals import SMI, write_run

    from greenscreen_pipeline.search.rung_callback import RungCallback

    rule = halving.default_rule(3)
    write_run(tmp_path, 3, [(100.0, 110.0, {"gpu": 40.0})], {"gpu": SMI}, status="running")
    callback = RungCallback(tmp_path, 3, range(4), 9, rule, "val_accuracy", True,
                            settings={"budget": None, "runs": 4})
    first = callback.rungs[0]
    callback.on_epoch_end(first - 1, {"loss": float("nan"), "val_accuracy": 0.1})
    record = rungfiles.read_rung(tmp_path / "003", first)
    assert math.isnan(record.objective) and record.energy_j == 40.0
    records = {0: RungRecord(0, first, 0.90, 100.0), 1: RungRecord(1, first, 0.85, 100.0),
               2: RungRecord(2, first, 0.80, 100.0), 3: record}
    decided = {r: halving.decide(r, records, set(), [0, 1, 2, 3], rule) for r in records}
    assert decided[3] == STOP and decided[1] == GO_ON, decided
