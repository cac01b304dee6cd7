"""`final` passing over a recommendation that diverges in its first final run, and the
runs that stand in for it (final.py, recommend.runners_up)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_analysis_report import page_texts, write_run

from greenscreen_pipeline import analysis, comparison, comparison_words, report, space
from greenscreen_pipeline.errors import UsageError
from greenscreen_pipeline.final import candidates, final_run
from greenscreen_pipeline.objective import Objective
from greenscreen_pipeline.recommend import FALLBACKS, runners_up
from greenscreen_pipeline.report.inputs import ReportInputs

ROOT = Path(__file__).resolve().parents[1]


FRAGILE = """
settings: {runs: 4, epochs: 1, final_epochs: 1, final_seeds: 1, seed: 7,
           energy_source: estimate, accuracy_floor: 0.05}
configuration:
  model: {values: [ffnn]}
  batch_size: {values: [128]}
  lr: {values: [0.01, 1.0e+10, 1.0e+12, 0.05]}
  optimizer: {values: [SGD]}
"""


def test_a_recommendation_that_diverges_in_its_final_run_is_passed_over(tmp_path):
    """The sweep's cheapest runs (lr 1e10, then 1e12) diverge when trained again: each is
    passed over after its first final run, and the next cheapest within the floor (lr
    0.05) is compared with the baseline instead. The diverged runs stay, are not trained
    again by a rerun, count in the energy, and page 1 says what was passed over."""
    config, sweep = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(FRAGILE)
    loaded = space.load(config)
    energy = {0.01: 300.0, 1e10: 100.0, 1e12: 150.0, 0.05: 200.0}
    run_of = {}
    for i in range(4):
        lr = loaded.run(i)["lr"]
        run_of[lr] = f"{i:03d}"
        write_run(sweep / f"{i:03d}", loaded.run(i), energy=energy[lr], power=100.0, acc=0.9,
                  epochs=1)
    rec = analysis.analyze(sweep)["recommendation"]
    assert rec["run"] == run_of[1e10] and rec["next"] == [run_of[1e12], run_of[0.05]]
    assert FALLBACKS == 2
    done = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "final", "--config",
                           str(config), "--sweep-dir", str(sweep)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    final = sweep / "final"
    doc = json.loads((final / "comparison.json").read_text())
    stand_in = run_of[0.05]
    assert doc["final_run"] == stand_in
    assert doc["final_folder"] == f"final/fallback-{stand_in}-s0"
    gone = doc["passed_over"]
    assert [g["run"] for g in gone] == [run_of[1e10], run_of[1e12]]
    assert [g["folder"] for g in gone] == ["final", f"final/fallback-{run_of[1e12]}-s0"]
    assert all(re.fullmatch(r"loss became (nan|inf) in epoch 1", g["reason"]) for g in gone)
    assert doc["recommended"]["folders"] == [doc["final_folder"]]
    assert doc["baseline"]["folders"] == ["final/baseline-s0"]
    assert doc["energy_saving"]["mean"] is not None  # one seed: a mean, no interval
    assert doc["final_is_baseline"] is False and "final_diverged" not in doc
    # The saving is the stand-in's, not the diverged recommendation's.
    # (it "saves" or "uses ... more", as the measured energy fell: one seed, no interval)
    assert re.search(rf"run {stand_in}'s configuration \(standing in for the recommendation\) "
                     "(saves|uses)", comparison_words.saving_words(doc))
    params = yaml.safe_load((sweep / doc["final_folder"] / "parameters.yaml").read_text())
    assert (params["lr"], params["seed"], params["run"]) == (0.05, 7, int(run_of[1e10]))
    said = done.stdout + done.stderr
    assert said.count("diverged in its first final run") == 2 * 2  # when, and the summary
    # Nothing is trained again; every final run's energy, the diverged ones' too, counts.
    attempts = sorted((p, p.read_text()) for p in final.rglob("attempts.jsonl"))
    assert len(attempts) == 4  # two passed over, the stand-in, the baseline
    assert final_run(space.load(config, {"sweep_dir": str(sweep)}), sweep)["comparison"] == doc
    assert sorted((p, p.read_text()) for p in final.rglob("attempts.jsonl")) == attempts
    inputs = ReportInputs.read(sweep)
    spent = [json.loads((p / "summary.json").read_text())["energy_j"]
             for p in comparison.final_folders(final)]
    assert len(spent) == 4 and inputs.final_energy_j == pytest.approx(sum(spent))
    assert inputs.final_folder == doc["final_folder"] and inputs.final is not None
    first = " ".join(page_texts(report.build(sweep, tmp_path / "r.pdf"))[0].split())
    assert f"Passed over: run {run_of[1e10]}'s configuration diverged" in first
    assert "It diverged when trained for final_epochs (loss became" in first
    assert f"In its place the final runs compare run {stand_in}'s configuration" in first


def test_the_runners_up_are_the_rule_s_picks_once_each_pick_before_is_set_aside():
    """recommend.runners_up: the best remaining value moves the floor with it, so a run
    outside the first floor can be picked once the runs above it are set aside."""
    from greenscreen_pipeline.recommend import recommend

    ok = pd.DataFrame({"run": ["a", "b", "c", "d", "e"], "objective": [0.95, 0.80, 0.85, 0.84, 0.7],
                       "energy_j": [100.0, 50.0, 300.0, 80.0, float("nan")], "lr": [1, 2, 3, 4, 5]})
    rec = recommend(ok, 0.02, ["lr"], Objective())
    assert rec["run"] == "a" and rec["eligible_runs"] == ["a"]
    assert rec["next"] == ["d", "c"]  # then 0.85's floor: c and d, d the cheaper; then c
    loss = Objective(loss="mse", name="val_loss", maximise=False)
    assert recommend(ok.assign(objective=[0.1, 0.5, 0.2, 0.21, 0.3]), 0.05, ["lr"],
                     loss)["next"] == ["d", "c"]


def test_a_fallback_that_is_the_baseline_is_the_baseline_s_own_runs(tmp_path, caplog):
    """The rule's next pick is run 000: its final runs are the baseline's (same
    configuration, same seeds), trained once, and compared with nothing."""
    config, sweep = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(FRAGILE.replace("runs: 4", "runs: 2").replace(
        "[0.01, 1.0e+10, 1.0e+12, 0.05]", "[0.01, 1.0e+10]"))
    loaded = space.load(config)
    for i, energy in enumerate((300.0, 100.0)):
        write_run(sweep / f"{i:03d}", loaded.run(i), energy=energy, power=100.0, acc=0.9,
                  epochs=1)
    assert analysis.analyze(sweep)["recommendation"]["next"] == ["000"]
    with caplog.at_level("INFO"):
        outcome = final_run(space.load(config, {"sweep_dir": str(sweep)}), sweep)
    doc = outcome["comparison"]
    assert outcome["status"] == "done" and doc["final_run"] == "000"
    assert doc["final_folder"] == doc["recommended"]["folders"][0] == "final/baseline-s0"
    assert doc["final_is_baseline"] is True
    assert [g["folder"] for g in doc["passed_over"]] == ["final"]
    # it said "recommended seed 0 into .../baseline-s0"
    assert f"the baseline (the fallback) seed 0 into {sweep / 'final' / 'baseline-s0'}" in \
        caplog.text
    assert doc["energy_saving"]["reason"] == ("with run 001 passed over (diverged), the rule's "
                                              "pick is the baseline's configuration (run 000): "
                                              "keep it; nothing to compare")
    first = " ".join(page_texts(report.build(sweep, tmp_path / "r.pdf"))[0].split())
    assert "the same rule then picks the baseline's configuration itself: keep the baseline" \
        in first
    final = sweep / "final"
    # The diverged run's epoch is not checkpointed (its weights are NaN): no checkpoint/.
    assert sorted(p.name for p in final.iterdir() if p.is_dir()) == ["baseline-s0"]
    assert len(list(final.rglob("attempts.jsonl"))) == 2


def test_a_runner_up_with_a_configuration_already_picked_is_not_picked_again():
    """Where configurations repeat (more runs than the space has, or a search proposing
    one twice), a copy of the recommendation would diverge again: set aside, as is a copy
    of a runner-up. Nothing varying: no runner-up at all."""
    ok = pd.DataFrame({"run": ["a", "b", "c", "d"], "objective": [0.9, 0.9, 0.9, 0.9],
                       "energy_j": [10.0, 20.0, 30.0, 40.0], "lr": [1e10, 1e10, 0.05, 0.05]})
    rest = ok.drop(0)
    assert runners_up(rest, 0.02, Objective(), ["lr"], ok.loc[0]) == ["c"]
    assert runners_up(rest, 0.02, Objective(), [], ok.loc[0]) == []
    assert runners_up(rest, 0.02, Objective()) == ["b", "c"]  # not told: each run its own


def test_a_runner_up_that_cannot_be_read_or_repeats_a_candidate_is_left_out(tmp_path, caplog):
    """`final` reads the runners-up before anything trains: one whose parameters.yaml is
    gone (collect still ranks such a run) is left out with a warning, not a crash, and one
    with a configuration already among the candidates (an analysis.json written before
    runners-up were told apart) is left out too."""
    config, sweep = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(FRAGILE)
    loaded = space.load(config)
    for i in range(4):  # run 002: a copy of run 001's configuration
        write_run(sweep / f"{i:03d}", loaded.run(1 if i == 2 else i), energy=100.0,
                  power=100.0, acc=0.9)
    (sweep / "003" / "parameters.yaml").unlink()
    with caplog.at_level("WARNING"):
        got = candidates(loaded, sweep, {"rule": "run", "run": "001", "next": ["003", "000"]})
    assert [run for run, _, _ in got] == ["001", "000"]
    assert "run 003 cannot stand in for the recommendation" in caplog.text
    got = candidates(loaded, sweep, {"rule": "run", "run": "001", "next": ["002", "000"]})
    assert [run for run, _, _ in got] == ["001", "000"]


def test_a_final_folder_of_another_configuration_stops_final_with_what_to_move(tmp_path):
    """final/ trained for an earlier recommendation (the sweep grew, or the analysis
    changed) is neither the new one's run nor trained over: `final` stops, before any
    training, saying which values differ and what to move aside."""
    config, sweep = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(FRAGILE)
    loaded = space.load(config)
    energy = {0.01: 300.0, 1e10: 400.0, 1e12: 500.0, 0.05: 100.0}
    for i in range(4):
        write_run(sweep / f"{i:03d}", loaded.run(i), energy=energy[loaded.run(i)["lr"]],
                  power=100.0, acc=0.9)
    assert loaded.run(int(analysis.analyze(sweep)["recommendation"]["run"]))["lr"] == 0.05
    earlier = next(loaded.run(i) for i in range(4) if loaded.run(i)["lr"] == 1e10)
    write_run(sweep / "final", earlier, energy=50.0, power=100.0, acc=0.9, status="failed")
    with pytest.raises(UsageError, match=r"final/ holds a final run of another "
                       r"configuration than run \d+'s configuration: lr 10000000000\.0 "
                       r"\(now 0\.05\)\. Move the final runs aside \(mv "):
        final_run(space.load(config, {"sweep_dir": str(sweep)}), sweep)
    assert not (sweep / "final" / "attempts.jsonl").exists()  # nothing trained
    # The baseline's folders too (config.yaml's first values changed), whatever the
    # recommendation's say; a value recorded "n/a" or as a float of the same number is
    # the same value.
    write_run(sweep / "final" / "baseline-s0", {**loaded.run(0), "lr": 0.02}, energy=50.0,
              power=100.0, acc=0.9)
    (sweep / "final" / "parameters.yaml").write_text(yaml.safe_dump(
        {**loaded.run(3), "lr": 0.05, "batch_size": 128.0, "optimizer": "n/a"}))
    with pytest.raises(UsageError, match=r"baseline-s0/ holds a final run of another "
                       r"configuration than the baseline's \(run 000's\): lr 0\.02 "
                       r"\(now 0\.01\)"):
        final_run(space.load(config, {"sweep_dir": str(sweep)}), sweep)


def test_an_estimated_run_is_not_recommended_over_measured_ones_by_its_estimate():
    """A sweep resumed with a GPU after runs without one: run 001's CPU-time estimate
    (36.5 J) won against runs measured at 416 and 356 J, every one within the floor."""
    import pandas as pd

    from greenscreen_pipeline import analysis
    from greenscreen_pipeline.objective import Objective
    from greenscreen_pipeline.recommend import recommend

    ok = pd.DataFrame({"run": ["000", "001", "002", "003"],
                       "objective": [0.90, 0.95, 0.96, 0.955],
                       "energy_j": [30.0, 36.5, 416.0, 356.0],
                       "source": ["estimated:cpu-time", "estimated:cpu-time",
                                  "measured:nvidia-smi", "measured:nvidia-smi"],
                       "lr": [0.1, 0.01, 0.01, 0.05]})
    rec = recommend(ok, 0.02, ["lr"], Objective())
    assert rec["run"] == "003" and rec["set_aside"] == ["001"]
    assert "among the measured runs: 001 set aside, their energy an estimate, never " \
           "compared with a measurement" in \
        "\n".join(analysis.recommendation_lines(rec, Objective()))
    alike = recommend(ok.assign(source="estimated:cpu-time"), 0.02, ["lr"], Objective())
    assert alike["run"] == "001" and "set_aside" not in alike  # all estimated


def test_a_run_measured_otherwise_is_not_recommended_over_the_others_by_its_figure():
    """Run 002's GPU alone (74 J, NVML) won against GPU + CPU figures (NVML + RAPL) of the
    same kind of runs, with nothing said, where the rankings set it aside."""
    import pandas as pd

    from greenscreen_pipeline import analysis
    from greenscreen_pipeline.objective import Objective
    from greenscreen_pipeline.recommend import recommend

    both = "measured:nvml-counter + measured:rapl;attributed:cpu-time-share"
    ok = pd.DataFrame({"run": ["000", "001", "002", "003"],
                       "objective": [0.90, 0.80, 0.95, 0.95],
                       "energy_j": [100.0, 90.0, 74.4, 120.0],
                       "source": [both, both, "measured:nvml-counter", both],
                       "lr": [0.1, 0.01, 0.05, 0.02]})
    rec = recommend(ok, 0.02, ["lr"], Objective())
    assert rec["run"] == "003" and rec["set_aside"] == ["002"]
    assert rec["compared_kind"] == "measured:nvml-counter + measured:rapl"
    assert rec["set_aside_kinds"] == {"002": "measured:nvml-counter"}
    assert "  among the runs whose energy is measured:nvml-counter + measured:rapl: 002 set " \
           "aside, their energy obtained otherwise (measured:nvml-counter), never compared " \
           "with these" in analysis.recommendation_lines(rec, Objective())
    assert recommend(ok.assign(source=both), 0.02, ["lr"], Objective())["run"] == "002"


def test_the_explanation_and_the_words_follow_the_kind_the_pick_was_compared_in():
    """The explanation's means used the kind chosen over every run, not the pick's: it
    left the recommended run itself out; "the measured runs" was said of figures of no
    recorded provenance."""
    import pandas as pd

    from greenscreen_pipeline import analysis
    from greenscreen_pipeline.objective import Objective
    from greenscreen_pipeline.recommend import recommend

    both = "measured:nvml-counter + measured:rapl;attributed:cpu-time-share"
    ok = pd.DataFrame({"run": ["000", "001", "002", "003"],
                       "objective": [0.80, 0.81, 0.95, 0.95],
                       "energy_j": [100.0, 90.0, 80.0, 85.0],
                       "source": [both, both, "measured:nvml-counter",
                                  "measured:nvml-counter"], "lr": [0.1, 0.01, 0.05, 0.02]})
    rec = recommend(ok, 0.02, ["lr"], Objective())
    assert rec["run"] == "002" and rec["explanation"]["lr"]["mean_energy_j_with"] == 80.0
    assert rec["explanation_left_out"] == ["000", "001"]
    unknown = ok.assign(source=["none", "estimated:cpu-time", "none", "none"],
                        objective=[0.95, 0.95, 0.95, 0.80])
    said = "\n".join(analysis.recommendation_lines(recommend(unknown, 0.02, ["lr"],
                                                             Objective()), Objective()))
    assert "the measured runs" not in said and "among the runs whose energy is of no " \
        "recorded provenance: 001 set aside, their energy obtained otherwise " \
        "(estimated:cpu-time)" in said
