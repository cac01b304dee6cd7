"""The final comparison over seeds (issue 34, items 3 and 5): settings.final_seeds, the
recommendation and the baseline trained interleaved, final/comparison.json, page 1."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from test_analysis_report import page_texts, write_run

from greenscreen_pipeline import analysis, comparison, comparison_words, report, space
from greenscreen_pipeline.errors import UsageError
from greenscreen_pipeline.final import final_run
from greenscreen_pipeline.objective import Objective
from greenscreen_pipeline.report import answer
from greenscreen_pipeline.report.inputs import ReportInputs

ROOT = Path(__file__).resolve().parents[1]
KEYS = ["seeds", "recommended", "baseline", "energy_saving", "objective_change", "method"]
# final.py: which run, where, and the recommendation it was trained for
FINAL_KEYS = [*KEYS, "final_run", "final_folder", "final_is_baseline", "recommendation"]
CONFIG = """
settings: {{runs: 2, epochs: 1, final_epochs: 1, final_seeds: {seeds}, seed: 7,
            energy_source: estimate}}
configuration:
  model: {{values: [ffnn]}}
  batch_size: {{values: [128]}}
  lr: {{values: [0.01, 0.05]}}
  optimizer: {{values: [SGD]}}
"""


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "3"])
def test_final_seeds_must_be_a_positive_integer(tmp_path, value):
    path = tmp_path / "config.yaml"
    path.write_text(f"configuration: {{lr: {{values: [0.1]}}}}\nsettings: {{final_seeds: "
                    f"{json.dumps(value)}}}\n")
    with pytest.raises(space.ConfigError) as err:
        space.load(path)
    assert str(err.value).startswith(f"{path}: settings.final_seeds: got ")
    assert "allowed: a positive integer" in str(err.value)


def test_final_seeds_defaults_to_three_and_the_runs_interleave(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("configuration: {lr: {values: [0.1]}}\n")
    assert space.load(path).settings["final_seeds"] == 3
    final = tmp_path / "final"
    assert [(side, k, p.relative_to(tmp_path).as_posix())
            for side, k, p in comparison.plan(final, 2)] == [
        ("recommended", 0, "final"), ("baseline", 0, "final/baseline-s0"),
        ("recommended", 1, "final/recommended-s1"), ("baseline", 1, "final/baseline-s1")]
    assert [side for side, _, _ in comparison.plan(final, 2, baseline=False)] == \
        ["recommended"] * 2


def runs_of(energy: dict, objective: dict, source: dict | None = None) -> dict:
    """read_runs' form: each side's runs by seed, all done."""
    source = source or {}
    return {side: [{"folder": f"{side}-s{k}", "status": "done", "reason": None,
                    "objective": objective[side][k], "energy_j": e,
                    "source": source.get(side, "measured:nvidia-smi")}
                    for k, e in enumerate(values)] for side, values in energy.items()}


def test_a_seed_left_out_is_said_beside_the_saving():
    """The recommendation diverged in seed 3 of 4: the sentence said "saves 18.8 % (...,
    3 seeds)" and nothing of the seed it lost (comparison.json's left_out alone had it)."""
    energy = {"recommended": [80.0, 84.0, 90.0, 85.0], "baseline": [100.0, 103.0, 110.0, 104.0]}
    accuracy = {"recommended": [0.90, 0.91, 0.89, 0.90], "baseline": [0.91, 0.92, 0.90, 0.93]}
    runs = runs_of(energy, accuracy)
    runs["recommended"][3].update(status="failed", objective=None,
                                  reason="Diverged: loss became nan in epoch 2")
    said = comparison_words.outcome_words(comparison.compare(runs, [8, 9, 10, 11], Objective()),
                                    Objective())
    assert "3 seeds)" in said
    assert said.endswith("; 1 of 4 seeds left out: recommended recommended-s3 failed "
                         "(Diverged: loss became nan in epoch 2)"), said
    whole = comparison.compare(runs_of(energy, accuracy), [8, 9, 10, 11], Objective())
    assert "left out" not in comparison_words.outcome_words(whole, Objective())


def test_the_saving_is_paired_by_seed_with_t_intervals():
    energy = {"recommended": [80.0, 84.0, 90.0, 85.0], "baseline": [100.0, 103.0, 110.0, 104.0]}
    accuracy = {"recommended": [0.90, 0.91, 0.89, 0.90], "baseline": [0.91, 0.92, 0.90, 0.93]}
    doc = comparison.compare(runs_of(energy, accuracy), [8, 9, 10, 11], Objective())
    again = comparison.compare(runs_of(energy, accuracy), [8, 9, 10, 11], Objective())
    assert list(doc) == KEYS and doc == again  # the same figures every time
    assert doc["seeds"] == [8, 9, 10, 11]
    rec, base, saving = doc["recommended"], doc["baseline"], doc["energy_saving"]
    assert rec["energy_j"]["values"] == energy["recommended"]
    assert rec["energy_j"]["mean"] == pytest.approx(84.75)
    assert rec["energy_j"]["sd"] == pytest.approx(np.std(energy["recommended"], ddof=1))
    assert base["objective"]["name"] == "val_accuracy"
    assert saving["mean"] == pytest.approx(1 - 84.75 / 104.25)
    low, high = saving["ci95"]
    assert 0 < low <= saving["mean"] <= high < 1
    change = doc["objective_change"]
    assert change["mean"] == pytest.approx(-0.015)
    differences = np.subtract(accuracy["recommended"], accuracy["baseline"])
    half = stats.t.ppf(0.975, 3) * np.std(differences, ddof=1) / 2  # paired: the seeds' sd
    assert change["ci95"] == pytest.approx([-0.015 - half, -0.015 + half])
    mean, sd = np.mean(energy["recommended"]), np.std(energy["recommended"], ddof=1)
    assert rec["energy_j"]["ci95"] == pytest.approx(
        [mean - stats.t.ppf(0.975, 3) * sd / 2, mean + stats.t.ppf(0.975, 3) * sd / 2])
    assert rec["source"] == ["measured:nvidia-smi"] and "Fieller" in doc["method"]["interval"]
    assert comparison_words.saving_words(doc) == (
        f"the recommendation saves {saving['mean'] * 100:.1f} % of the baseline's energy "
        f"(95 % CI {low * 100:.1f} to {high * 100:.1f} %, 4 seeds)")


@pytest.mark.parametrize("seeds", [3, 5])
def test_the_95_percent_interval_of_the_saving_holds_the_true_saving_in_95_percent_of_draws(
        seeds):
    """A percentile bootstrap's "95 %" interval held it in 72 % at 3 seeds (82 % at 5): it
    cannot reach past the seeds' own extremes. Normal seed noise, true saving 0.5, seeded."""
    rng = np.random.default_rng(1)
    held, draws = 0, 600
    for _ in range(draws):
        energy = {"recommended": list(rng.normal(10, 1, seeds)),
                  "baseline": list(rng.normal(20, 1, seeds))}
        doc = comparison.compare(runs_of(energy, {side: [0.9] * seeds for side in energy}),
                                 list(range(seeds)), Objective())
        low, high = doc["energy_saving"]["ci95"]
        held += low <= 0.5 <= high
    assert 0.92 <= held / draws <= 0.98


def test_the_comparison_names_the_split_its_values_come_from_and_splits_that_differ():
    # comparison.json said "mean(recommended val_accuracy)" of test accuracies, and that
    # both sides "share their ... data split" where their partitioning differed
    energy = {"recommended": [80.0, 84.0, 90.0], "baseline": [100.0, 103.0, 110.0]}
    accuracy = {"recommended": [0.90, 0.91, 0.89], "baseline": [0.91, 0.92, 0.90]}
    runs = runs_of(energy, accuracy)
    for side, rows in runs.items():
        for row in rows:
            row.update(split="test", partitioning="80-10-10" if side == "baseline" else
                       "60-20-20")
    doc = comparison.compare(runs, [1, 2, 3], Objective())
    assert doc["recommended"]["objective"]["name"] == "test_accuracy"
    assert doc["method"]["objective_change"].startswith("mean(recommended test_accuracy)")
    assert ("share their training seed, but not their data split (partitioning 60-20-20 "
            "against 80-10-10): their test_accuracy values come from different test sets"
            ) in doc["method"]["pairing"]
    for rows in runs.values():
        for row in rows:
            row["partitioning"] = "80-10-10"
    assert "share their training seed and data split," in comparison.compare(
        runs, [1, 2, 3], Objective())["method"]["pairing"]


def test_too_few_seeds_or_an_interval_holding_zero_show_no_saving():
    two = runs_of({"recommended": [80.0, 90.0], "baseline": [100.0, 95.0]},
                  {"recommended": [0.9, 0.9], "baseline": [0.9, 0.9]})
    doc = comparison.compare(two, [1, 2], Objective())
    assert doc["energy_saving"]["ci95"] is None and doc["energy_saving"]["mean"] is not None
    assert "needs at least 3 seeds" in doc["energy_saving"]["reason"]
    assert doc["recommended"]["energy_j"]["ci95"] is None
    assert comparison_words.saving_words(doc).startswith("no saving could be shown: ")
    mixed = runs_of({"recommended": [80.0, 120.0, 100.0], "baseline": [100.0, 95.0, 101.0]},
                    {"recommended": [0.9] * 3, "baseline": [0.9] * 3})
    doc = comparison.compare(mixed, [1, 2, 3], Objective())
    low, high = doc["energy_saving"]["ci95"]
    assert low < 0 < high
    assert "holds 0" in comparison_words.saving_words(doc)
    assert "no saving could be shown" in comparison_words.saving_words(doc)


def test_an_estimate_is_never_compared_with_a_measurement():
    runs = runs_of({"recommended": [80.0, 84.0, 90.0], "baseline": [100.0, 103.0, 110.0]},
                   {"recommended": [0.9] * 3, "baseline": [0.9] * 3},
                   {"baseline": "estimated:cpu-time"})
    doc = comparison.compare(runs, [1, 2, 3], Objective())
    assert doc["energy_saving"]["mean"] is None and doc["energy_saving"]["ci95"] is None
    assert "estimated:cpu-time" in doc["energy_saving"]["reason"]
    assert doc["baseline"]["source"] == ["estimated:cpu-time"]
    assert doc["objective_change"]["mean"] == pytest.approx(0.0)  # the objective still is
    runs["recommended"][1]["source"] = "estimated:cpu-time"  # one side, mixed within
    doc = comparison.compare(runs, [1, 2, 3], Objective())
    assert doc["recommended"]["energy_j"]["mean"] is None
    assert "not obtained the same way" in doc["recommended"]["energy_j"]["reason"]


def test_a_recommendation_that_is_the_baseline_is_not_compared_with_itself():
    runs = runs_of({"recommended": [80.0, 84.0, 90.0]}, {"recommended": [0.9, 0.8, 0.85]})
    doc = comparison.compare(runs, [1, 2, 3], Objective(), "it is the baseline")
    assert list(doc) == KEYS and doc["baseline"] == {"reason": "it is the baseline",
                                                     "folders": []}
    assert doc["energy_saving"] == {"mean": None, "ci95": None, "reason": "it is the baseline"}
    assert doc["recommended"]["objective"]["sd"] == pytest.approx(0.05)


def test_page_one_states_the_noise_floor_and_warns_below_the_tolerance(tmp_path):
    runs = runs_of({"recommended": [80.0, 84.0, 90.0], "baseline": [100.0, 103.0, 110.0]},
                   {"recommended": [0.80, 0.90, 0.85], "baseline": [0.9, 0.91, 0.9]})
    doc = comparison.compare(runs, [1, 2, 3], Objective())
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "comparison.json").write_text(json.dumps(doc))
    inputs = ReportInputs(tmp_path, {"recommendation": {"objective_floor": 0.02}},
                          pd.DataFrame())
    texts = [re.sub("<[^>]+>", "", p.text) for p in answer.final_comparison(inputs)]
    assert texts[0] == ("Final runs against the baseline: " + comparison_words.saving_words(doc)
                        + "; accuracy -5.3 pt (95 % CI -16.5 pt to +5.9 pt).")
    assert texts[1] == ("The intervals are 95 % intervals over seeds paired by seed: the "
                        "saving's is 1 - Fieller's interval for the ratio of the mean "
                        "energies, the accuracy change's a paired Student t interval (none "
                        "below 3 seeds; final/comparison.json has the method in full).")
    assert "final recommended runs (3 seeds): accuracy 0.05" in texts[2]
    assert texts[3].startswith("Warning: the recommendation's tolerance (settings.accuracy_floor "
                               "0.02) is below the seed-to-seed spread of accuracy (0.05")
    inputs = ReportInputs(tmp_path, {"recommendation": {"objective_floor": 0.1}},
                          pd.DataFrame())
    assert not any("Warning" in p.text for p in answer.final_comparison(inputs))


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "before-recorded"])
def test_final_runs_of_an_earlier_recommendation_are_not_reported_as_this_one(tmp_path,
                                                                            recorded):
    """The sweep grew after `final`, and run 007 is recommended now: page 1 reported the
    final runs of run 001's configuration as run 007's saving."""
    runs = runs_of({"recommended": [80.0, 84.0, 90.0], "baseline": [100.0, 103.0, 110.0]},
                   {"recommended": [0.80, 0.90, 0.85], "baseline": [0.9, 0.91, 0.9]})
    doc = {**comparison.compare(runs, [1, 2, 3], Objective()), "final_run": "001",
           "final_folder": "final"}
    if recorded:
        doc["recommendation"] = {"run": "001", "rule": "run", "parameters": {"lr": 0.05}}
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "comparison.json").write_text(json.dumps(doc))
    now = {"run": "007", "rule": "run", "parameters": {"lr": 0.01}, "objective_floor": 0.1}
    inputs = ReportInputs(tmp_path, {"recommendation": now}, pd.DataFrame())
    assert inputs.comparison is None and inputs.final is None
    texts = [re.sub("<[^>]+>", "", p.text) for p in answer.final_comparison(inputs)]
    assert texts[0].startswith("The final runs in final/ were trained for an earlier "
                               "recommendation (run 001's configuration), not this one")
    same = ReportInputs(tmp_path, {"recommendation": {**now, "run": "001",
                                                      "parameters": {"lr": 0.05}}},
                        pd.DataFrame())
    assert same.comparison == doc  # the recommendation it was made for: reported


def write_sweep(tmp_path: Path, seeds: int) -> tuple[Path, Path]:
    """Runs 000 (the baseline, lr 0.01) and 001 (lr 0.05, cheaper: recommended), as
    finished run folders; the final runs are trained for real."""
    config, sweep = tmp_path / "config.yaml", tmp_path / "sweep"
    config.write_text(CONFIG.format(seeds=seeds))
    loaded = space.load(config)
    for i, energy in enumerate((200.0, 100.0)):
        write_run(sweep / f"{i:03d}", loaded.run(i), energy=energy, power=100.0, acc=0.9,
                  epochs=1)
    analysis.analyze(sweep)
    return config, sweep


def test_final_trains_both_over_seeds_writes_comparison_and_the_report_states_it(tmp_path):
    """Energy from CPU time (energy_source: estimate): a meter no load can keep from
    starting, unlike a fake nvidia-smi on a busy machine."""
    config, sweep = write_sweep(tmp_path, seeds=3)
    done = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "final", "--config",
                           str(config), "--sweep-dir", str(sweep)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    doc = json.loads((sweep / "final" / "comparison.json").read_text())
    assert list(doc) == FINAL_KEYS and doc["seeds"] == [8, 9, 10]  # seed 7 + run 1 + k
    assert (doc["final_run"], doc["final_folder"]) == ("001", "final")
    assert doc["recommendation"] == {"run": "001", "rule": "run", "parameters": {"lr": 0.05}}
    final = sweep / "final"
    for side, lr in (("recommended", 0.05), ("baseline", 0.01)):
        folders = [comparison.folder_of(final, side, k) for k in range(3)]
        assert doc[side]["folders"] == [f.relative_to(sweep).as_posix() for f in folders]
        energies = []
        for k, folder in enumerate(folders):
            params = yaml.safe_load((folder / "parameters.yaml").read_text())
            assert (params["lr"], params["run"], params["seed"]) == (lr, 1 + k, 7)
            energies.append(json.loads((folder / "summary.json").read_text())["energy_j"])
        assert doc[side]["energy_j"]["values"] == pytest.approx(energies)
        low, high = doc[side]["energy_j"]["ci95"]
        assert low <= doc[side]["energy_j"]["mean"] <= high
        assert doc[side]["source"] == ["estimated:cpu-time"]
        assert len(doc[side]["objective"]["values"]) == 3
    saving = doc["energy_saving"]
    assert saving["mean"] == pytest.approx(1 - doc["recommended"]["energy_j"]["mean"]
                                           / doc["baseline"]["energy_j"]["mean"])
    assert len(saving["ci95"]) == 2 and len(doc["objective_change"]["ci95"]) == 2
    # The console says what page 1 says: the saving, the objective's change, and that the
    # energy is an estimate (it said only the saving).
    said = comparison_words.outcome_words(doc, Objective())
    assert "; accuracy " in said and said.endswith("(energy estimated, not measured)")
    assert "final comparison: " + said in done.stdout
    counted = re.findall(r"final run (\d+)/(\d+): (\w+ seed \d)", done.stdout)
    assert [(int(i), int(n)) for i, n, _ in counted] == [(i, 6) for i in range(1, 7)]
    assert counted[0][2] == "recommended seed 0"  # the first is trained on its own first
    # A rerun trains nothing again and writes the same comparison.
    attempts = sorted((p, p.read_text()) for p in final.rglob("attempts.jsonl"))
    assert len(attempts) == 6
    outcome = final_run(space.load(config, {"sweep_dir": str(sweep)}), sweep)
    assert outcome["status"] == "done" and outcome["comparison"] == doc
    assert sorted((p, p.read_text()) for p in final.rglob("attempts.jsonl")) == attempts
    first = " ".join(page_texts(report.build(sweep, tmp_path / "r.pdf"))[0].split())
    assert f"Final runs against the baseline: {comparison_words.saving_words(doc)}" in first
    assert "3 seeds" in first and "(energy estimated, not measured)" in first
    assert "Seed-to-seed spread" in first
    # Trained for another final_epochs (or seed): refused, not compared with new runs. The
    # 1-epoch seeds were kept beside a 5-epoch one: "saves 50 %".
    config.write_text(CONFIG.format(seeds=4).replace("final_epochs: 1", "final_epochs: 5"))
    with pytest.raises(UsageError, match=r"final run of another configuration than .*"
                                         r"epochs 1 \(now 5\).*Move the final runs aside"):
        final_run(space.load(config, {"sweep_dir": str(sweep)}), sweep)
    assert sorted((p, p.read_text()) for p in final.rglob("attempts.jsonl")) == attempts


def test_the_sweep_s_repeated_configurations_give_a_noise_floor_without_final_runs(tmp_path):
    runs = pd.DataFrame({"run": ["000", "001", "002", "003"], "status": ["done"] * 4,
                         "lr": [0.1, 0.2, 0.1, 0.2], "batch_size": [32, 32, 32, 64],
                         "objective": [0.80, 0.85, 0.90, 0.86],
                         "energy_j": [100.0, 50.0, 110.0, 60.0]})
    inputs = ReportInputs(tmp_path, {"recommendation": {"objective_floor": 0.02}}, runs)
    spread = inputs.repeat_spread()  # runs 000 and 002 share a configuration; no other does
    assert (spread["configurations"], spread["runs"]) == (1, 2)
    assert spread["objective_sd"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    assert spread["energy_cv"] == pytest.approx(np.std([100, 110], ddof=1) / 105)
    texts = [re.sub("<[^>]+>", "", p.text) for p in answer.final_comparison(inputs)]
    assert texts[0].startswith("No final comparison yet")
    assert "the sweep's 1 repeated configuration(s) (2 runs): accuracy 0.0707" in texts[1]
    assert texts[2].startswith("Warning: ")


def test_repeats_of_zero_joules_give_no_energy_spread(tmp_path):
    """Two repeats at 0 J: page 1 said "energy nan % of the mean". 0 J is a meter that saw
    nothing, no figure (`provenance.usable_energy`): those runs are not ranked, so they
    give no spread at all; beside a repeat with a figure, none either."""
    runs = pd.DataFrame({"run": ["000", "001", "002"], "status": ["done"] * 3,
                         "lr": [0.1, 0.2, 0.1], "objective": [0.80, 0.85, 0.90],
                         "energy_j": [0.0, 50.0, 0.0]})
    inputs = ReportInputs(tmp_path, {"recommendation": {"objective_floor": 0.02}}, runs)
    assert inputs.repeat_spread() is None
    texts = " ".join(re.sub("<[^>]+>", "", p.text) for p in answer.final_comparison(inputs))
    assert "nan" not in texts
    runs["energy_j"] = [0.0, 50.0, 40.0]
    inputs = ReportInputs(tmp_path, {"recommendation": {"objective_floor": 0.02}}, runs)
    assert inputs.repeat_spread() is None


def test_a_final_run_that_failed_is_kept_until_retry_failed(tmp_path):
    """Every `final` trained a failed final seed again (it read "not done"), silently, and
    `final --retry-failed` was refused: failed runs are kept and said, as in the sweep."""
    from greenscreen_pipeline.runfolder import RunFolder

    config, sweep = write_sweep(tmp_path, seeds=1)
    failed = RunFolder(sweep / "final" / "baseline-s0")
    failed.write_status("failed", reason="RuntimeError: out of memory")
    failed.log_attempt_end(failed.log_attempt_start(), 1, "RuntimeError: out of memory")
    final = [sys.executable, "-m", "greenscreen_pipeline", "final", "--config", str(config),
             "--sweep-dir", str(sweep)]
    done = subprocess.run(final, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "final run baseline-s0/ failed before (RuntimeError: out of memory): kept, not " \
           "trained again; `greenscreen final --retry-failed` trains it again" in done.stderr
    assert "final run 1/1: recommended seed 0" in done.stdout
    assert len(failed.attempts()) == 1 and failed.state() == "failed"
    again = subprocess.run([*final, "--retry-failed"], cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "final run 1/1: baseline seed 0" in again.stdout
    assert failed.state() == "done" and len(failed.attempts()) == 2


def test_a_baseline_of_zero_joules_has_no_saving_and_says_why():
    """A baseline whose energy reads 0 J: "uses inf % more energy than the baseline ...
    but the baseline's energy varies too much", though it did not vary at all (review).
    0 J is a meter that saw nothing: those seeds have no energy figure, as a NaN's."""
    energy = {"recommended": [80.0, 84.0, 90.0], "baseline": [0.0, 0.0, 0.0]}
    accuracy = {"recommended": [0.90, 0.91, 0.89], "baseline": [0.91, 0.93, 0.90]}
    doc = comparison.compare(runs_of(energy, accuracy), [8, 9, 10], Objective())
    assert doc["energy_saving"]["mean"] is None
    said = comparison_words.saving_words(doc)
    assert said.startswith("no saving could be shown: no seed finished on both sides "
                           "(baseline: 3 of 3 not usable, e.g. baseline-s0 done (energy 0 J: "
                           "the meter saw nothing))")


def test_too_few_usable_seeds_are_not_called_too_few_finished():
    """3 seeds finished, one without an energy figure: "needs at least 3 seeds, and 2
    finished" was false."""
    energy = {"recommended": [80.0, 84.0, 90.0], "baseline": [100.0, 103.0, 110.0]}
    accuracy = {"recommended": [0.90, 0.91, 0.89], "baseline": [0.91, 0.92, 0.90]}
    runs = runs_of(energy, accuracy)
    runs["recommended"][1]["energy_j"] = None
    doc = comparison.compare(runs, [8, 9, 10], Objective())
    assert doc["energy_saving"]["reason"] == (
        "an interval needs at least 3 seeds (settings.final_seeds), and 2 are usable "
        "(finished on both sides, with an objective value and an energy figure)")


def test_seeds_with_identical_figures_claim_no_interval():
    """Every seed at 50 J against 100 J: "saves 50.0 % (95 % CI 50.0 to 50.0 %, 3 seeds)",
    a certainty 3 seeds cannot give (identical joules are more likely a stuck counter)."""
    energy = {"recommended": [50.0] * 3, "baseline": [100.0] * 3}
    accuracy = {"recommended": [0.90, 0.91, 0.92], "baseline": [0.89, 0.90, 0.91]}
    doc = comparison.compare(runs_of(energy, accuracy), [0, 1, 2], Objective())
    saving, change = doc["energy_saving"], doc["objective_change"]
    assert saving["mean"] == pytest.approx(0.5) and saving["ci95"] is None
    assert saving["reason"] == ("its 3 seeds gave identical figures: no seed-to-seed spread "
                                "to form an interval from")
    assert doc["recommended"]["energy_j"]["ci95"] is None
    # each seed 0.01 better: the differences have no spread (but for rounding)
    assert change["ci95"] is None and change["reason"] == (
        "over its 3 seeds the figure does not vary (the sides move in step): no seed-to-seed "
        "spread to form an interval from")
    # a saving that is the same fraction on every seed: Fieller's interval is a point
    steady = comparison.compare(runs_of({"recommended": [50.0, 60.0, 70.0], "baseline": [
        100.0, 120.0, 140.0]}, accuracy), [0, 1, 2], Objective())["energy_saving"]
    assert steady["mean"] == pytest.approx(0.5) and steady["ci95"] is None
    said = comparison_words.outcome_words(doc, Objective())
    assert said.startswith("no saving could be shown: the recommendation saves 50.0 % of the "
                           "baseline's energy over 3 seeds, but its 3 seeds gave identical")
    assert "accuracy +1.0 pt (no interval: over its 3 seeds the figure does not vary" in said


def test_a_saving_near_zero_is_never_a_signed_zero():
    """"uses 0.0 % more energy (95 % CI 0.0 to 0.0 % more)", "-0.0 to 0.1 %", and page 1's
    "-0 % against the baseline"."""
    accuracy = {"recommended": [0.90, 0.91, 0.92], "baseline": [0.89, 0.90, 0.91]}
    energy = {"recommended": [100.03, 100.05, 100.04], "baseline": [100.0, 100.01, 100.02]}
    said = comparison_words.saving_words(comparison.compare(runs_of(energy, accuracy),
                                                            [0, 1, 2], Objective()))
    assert "0.0 %" not in said and "-0.0" not in said
    assert said == ("no saving: the recommendation uses 0.03 % more energy than the baseline "
                    "(95 % CI 0.005 to 0.1 % more, 3 seeds)"), said
    assert answer._change(75.3, 75.5) == "-0.3 %" and answer._change(75.5, 75.5) == "0 %"
    assert answer._change(50.0, 100.0) == "-50 %" and answer._change(1.0, 0.0) == "n/a"
    assert answer._change(75.500001, 75.5) == "0 %"  # not "+1e-06 %"
    assert comparison_words._pct(-1e-7) == "0" and comparison_words._pct(-0.0004) == "-0.04"
    assert comparison_words.signed(-0.0001, True) == "-0.01 pt"  # was "-0.0 pt"
    assert comparison_words.signed(-1e-9, True) == "0 pt"
    assert comparison_words.signed(0.004, True) == "+0.4 pt"


def test_the_estimated_side_is_the_one_named_estimated():
    """The recommended side measured, the baseline's estimated: "(energy estimated, not
    measured)" said of both."""
    energy = {"recommended": [80.0, 84.0, 90.0], "baseline": [100.0, 103.0, 110.0]}
    accuracy = {"recommended": [0.90, 0.91, 0.89], "baseline": [0.91, 0.92, 0.90]}
    one = comparison.compare(runs_of(energy, accuracy, {"baseline": "estimated:cpu-time"}),
                             [0, 1, 2], Objective())
    assert comparison_words.estimated_words(one) == \
        " (the baseline side's energy estimated, not measured)"
    both = comparison.compare(runs_of(energy, accuracy, {s: "estimated:cpu-time" for s in
                                                         energy}), [0, 1, 2], Objective())
    assert comparison_words.estimated_words(both) == " (energy estimated, not measured)"
    assert comparison_words.estimated_words(comparison.compare(
        runs_of(energy, accuracy), [0, 1, 2], Objective())) == ""


def test_page_one_s_accuracy_difference_is_never_a_signed_zero():
    """"at -0.0 pt accuracy (0.800 against 0.800)" for 0.7996 against 0.8000."""
    from greenscreen_pipeline.objective import Objective as Obj

    assert answer._difference(Obj(), 0.7996, 0.8) == "-0.04 pt accuracy (0.79960 against " \
                                                      "0.80000)"
    assert answer._difference(Obj(), 0.9, 0.705) == "+19.5 pt accuracy (0.900 against 0.705)"


def test_identical_repeats_have_a_spread_of_zero_not_float_noise(tmp_path):
    """Page 1 said "accuracy 1.17e-16" of ten identical runs."""
    runs = pd.DataFrame({"run": ["000", "001", "002"], "status": ["done"] * 3,
                         "lr": [0.1, 0.1, 0.2], "objective": [0.751, np.nextafter(0.751, 1), 0.8],
                         "energy_j": [19539.0, 19539.0, 50.0]})
    spread = ReportInputs(tmp_path, {"recommendation": {"objective_floor": 0.02}},
                          runs).repeat_spread()
    assert spread["objective_sd"] == 0.0 and spread["energy_cv"] == 0.0


def test_a_run_another_process_finished_meanwhile_is_not_trained_again(tmp_path):
    """Two `final` commands at once: the second trained every final run again in full
    after the first had finished it, and comparison.json counted both trainings."""
    from greenscreen_pipeline.run import execute

    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(seeds=1))
    final = tmp_path / "sweep" / "final"
    final.mkdir(parents=True)
    (final / "status.json").write_text(json.dumps({"status": "done", "reason": None}))
    request = execute.Request(str(config), str(final), 0, 1, {"lr": 0.01})
    assert execute.train_one(request, 0.0) == execute.BUSY
    assert json.loads((final / "status.json").read_text())["status"] == "done"
    assert not (final / "logs.csv").exists()  # nothing trained


def test_sigterm_stops_final_and_the_same_command_finishes_it(tmp_path):
    """SIGTERM (Slurm's time limit; the report job runs `final`) ended `final` with exit
    -15 and no word: no stop was installed there, unlike the sweep's."""
    import signal
    import time

    config, sweep = write_sweep(tmp_path, seeds=1)
    config.write_text(config.read_text().replace("final_epochs: 1", "final_epochs: 200"))
    command = [sys.executable, "-m", "greenscreen_pipeline", "final", "--config", str(config),
               "--sweep-dir", str(sweep)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    logs, deadline = sweep / "final" / "logs.csv", time.monotonic() + 240
    while not (logs.exists() and len(logs.read_text().splitlines()) > 2):  # 2 epochs in
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "greenscreen: stopped; run the same command again to finish the final runs" in err
    assert json.loads((sweep / "final" / "status.json").read_text())["status"] == "interrupted"
    assert not (sweep / "final" / "baseline-s0").exists()  # nothing handed out after it


@pytest.mark.parametrize("scale", [1e-200, 1.0, 1e200])
def test_the_saving_s_interval_does_not_depend_on_the_unit(scale):
    """A ratio's interval is the same whatever the energies' unit; its squares overflowed
    (nan) for figures near 1e160 J and above, and the interval was withheld."""
    rec, base = [80.0, 84.0, 90.0, 85.0], [100.0, 103.0, 110.0, 104.0]
    low, high = comparison.fieller_ratio_interval(rec, base)
    scaled = comparison.fieller_ratio_interval([r * scale for r in rec], [b * scale for b in base])
    assert scaled == pytest.approx((low, high), rel=1e-9)
    assert low < np.mean(rec) / np.mean(base) < high
