"""settings.repeats (issue 34 item 4): each configuration trained that many times with its
own seed, run i as configuration i // repeats; analysis, front and recommendation on the
repeats' means, the report with their spread; a resumed sweep keeps finished repeats."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_analysis_report import page_texts, write_run

from greenscreen_pipeline import analysis, collect, manifest, ranges, repeats, report, space
from greenscreen_pipeline.executors import proposals
from greenscreen_pipeline.report.inputs import ReportInputs
from greenscreen_pipeline.runfolder import RunFolder
from greenscreen_pipeline.search.propose import Result

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
settings: {{runs: {runs}, repeats: {repeats}, epochs: 1, seed: 7, energy_source: estimate}}
configuration:
  model: {{values: [ffnn]}}
  batch_size: {{values: [128]}}
  lr: {{values: [0.01, 0.05]}}
  optimizer: {{values: [SGD]}}
"""


def config_at(tmp_path: Path, runs: int = 4, n: int = 2, extra: str = "") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(runs=runs, repeats=n) + extra)
    return path


@pytest.mark.parametrize("value", [0, -1, "3", 1.5, True])
def test_repeats_must_be_a_positive_integer(tmp_path, value):
    path = tmp_path / "config.yaml"
    path.write_text(f"configuration: {{lr: {{values: [0.1]}}}}\nsettings: {{repeats: "
                    f"{json.dumps(value)}}}\n")
    with pytest.raises(space.ConfigError) as err:
        space.load(path)
    assert str(err.value).startswith(f"{path}: settings.repeats: got {value!r}; allowed: "
                                     "a positive integer")


def test_repeats_default_to_one_and_change_nothing(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("configuration: {lr: {values: [0.1, 0.2, 0.3]}}\nsettings: {runs: 5}\n")
    config = space.load(path)
    assert config.settings["repeats"] == 1
    assert [config.run(i) for i in range(5)] == [
        ranges.configuration(config.space, 22, i) for i in range(5)]
    assert "repeats" not in manifest.search_of(config.settings)  # older sweep.json match


def test_runs_must_hold_whole_configurations_unless_the_budget_ends_the_sweep(tmp_path):
    with pytest.raises(space.ConfigError) as err:
        space.load(config_at(tmp_path, runs=5, n=2))
    assert re.search(r"settings\.runs: got 5; allowed: a multiple of settings\.repeats \(2\), "
                     r"e\.g\. 4 or 6", str(err.value))
    path = tmp_path / "budget.yaml"
    path.write_text("configuration: {lr: {values: [0.1]}}\nsettings: {repeats: 3, "
                    "budget: 1 kWh}\n")
    assert space.load(path).settings["runs"] % 3 != 0  # the budget stops first


def test_halving_with_repeats_is_refused_naming_both_keys(tmp_path):
    path = config_at(tmp_path, extra="")
    text = path.read_text().replace("energy_source: estimate", "energy_source: estimate, "
                                    "early_stop: halving")
    path.write_text(text)
    with pytest.raises(space.ConfigError) as err:
        space.load(path)
    message = str(err.value)
    assert "settings.early_stop: got 'halving'" in message
    assert "off with settings.repeats 2" in message


def test_run_i_trains_configuration_i_over_repeats(tmp_path):
    config = space.load(config_at(tmp_path, runs=6, n=3))
    space_, seed = config.space, config.settings["seed"]
    assert [repeats.configuration_index(i, 3) for i in range(7)] == [0, 0, 0, 1, 1, 1, 2]
    assert list(repeats.runs_of(1, 3)) == [3, 4, 5]
    for i in range(6):
        assert config.run(i) == ranges.configuration(space_, seed, i // 3)
    assert config.run(0)["lr"] == 0.01 and config.run(3)["lr"] == 0.05  # 000-002: baseline
    # A folder without parameters.yaml: collect reads its configuration at i // repeats.
    sweep = tmp_path / "sweep"
    manifest.record(config, sweep)
    (sweep / "004").mkdir()
    assert collect.configuration_of(RunFolder(sweep / "004"), []) == config.run(4)
    # The mapping is part of the sweep: a folder started with other repeats is refused.
    with pytest.raises(manifest.OtherSweep, match="repeats: 3"):
        manifest.record(space.load(config_at(tmp_path, runs=6, n=2)), sweep)


def test_the_analysis_ranks_the_repeats_means_and_the_report_shows_their_spread(tmp_path):
    config = space.load(config_at(tmp_path))
    sweep = tmp_path / "sweep"
    manifest.record(config, sweep)
    figures = [(200.0, 0.90), (220.0, 0.92), (100.0, 0.91), (120.0, 0.89)]  # runs 000-003
    for i, (energy, acc) in enumerate(figures):
        write_run(sweep / f"{i:03d}", config.run(i), energy=energy, power=100.0, acc=acc,
                  epochs=1)
    result = analysis.analyze(sweep)
    assert result["runs"] == 4 and result["done"] == 4
    info = result["repeats"]
    assert (info["repeats"], info["configurations"], info["complete"]) == (2, 2, 2)
    assert info["energy_sd"] == pytest.approx(np.std([200, 220], ddof=1))
    front = {r["run"]: r for r in result["pareto"]}
    assert set(front) == {"000", "002"}  # the two configurations, not the four runs
    assert front["002"]["energy_j"] == pytest.approx(110.0)
    assert front["002"]["objective"] == pytest.approx(0.90)
    assert front["002"]["repeats"] == 2 and front["002"]["repeat_runs"] == ["002", "003"]
    top = {r["run"]: r for r in result["top_objective"]}
    assert top["000"]["repeat_runs"] == ["000", "001"]  # which folders each mean is of
    rec = result["recommendation"]
    assert rec["run"] == "002" and rec["repeat_runs"] == ["002", "003"]
    assert rec["energy_j"] == pytest.approx(110.0)
    assert rec["objective_sd"] == pytest.approx(np.std([0.91, 0.89], ddof=1))
    text = analysis.summary_text(result)
    assert "2 repeats per configuration, ranked by their means" in text
    assert "the recommendation is the mean of 2 repeat(s): runs 002, 003" in text
    inputs = ReportInputs.read(sweep)
    assert inputs.run("002")["energy_j"] == pytest.approx(110.0)
    spread = inputs.repeat_spread()  # the noise floor reads the repeats
    assert (spread["configurations"], spread["runs"]) == (2, 4)
    pages = [" ".join(p.split()) for p in page_texts(report.build(sweep, tmp_path / "r.pdf"))]
    assert "mean of 2 repeats; SD" in pages[0]
    assert "Seed-to-seed spread" in pages[0] and "2 repeated configuration(s) (4 runs)" in \
        pages[0]
    assert any("the mean over its finished repeats (up to 2, settings.repeats)" in p
               for p in pages)
    # the recommendation next to the baseline: each row a configuration's mean, and said
    assert any("baseline (000, mean of 2 repeats)" in p and
               "recommended (002, mean of 2 repeats)" in p for p in pages)


def test_a_pareto_search_sends_each_proposal_to_all_its_repeats(tmp_path):
    path = config_at(tmp_path, runs=6)
    path.write_text(path.read_text().replace("energy_source: estimate",
                                             "energy_source: estimate, search: pareto"))
    config, sweep = space.load(path), tmp_path / "sweep"
    manifest.record(config, sweep, batch_size=3)
    first = proposals.configure_batch(config, sweep, 0, 3)  # runs 0-2: configurations 0, 1
    assert first[0] == first[1] == config.run(0) and first[2] == config.run(2)
    # Run 003, in the next batch, is configuration 1's second repeat: written with it.
    assert RunFolder.of(sweep, 3).configuration() == first[2]
    assert RunFolder.of(sweep, 4).configuration() is None


def test_the_sampler_is_told_each_configuration_s_mean():
    cfg = {"lr": 0.1}
    runs = [Result(0, cfg, "done", 0.9, 100.0), Result(1, cfg, "done", 0.8, 120.0),
            Result(2, cfg, "failed"), Result(3, cfg, "failed"),
            Result(4, cfg, "failed"), Result(5, cfg, "done", 0.7, 50.0)]
    told = repeats.told(runs, 2)
    assert [(r.run, r.state) for r in told] == [(0, "done"), (1, "failed"), (2, "done")]
    assert (told[0].objective, told[0].energy_j) == pytest.approx((0.85, 110.0))
    assert (told[2].objective, told[2].energy_j) == (0.7, 50.0)  # its one finished repeat
    assert repeats.told(runs, 1) == runs


def attempts(sweep: Path) -> dict:
    return {p.parent.name: p.read_text() for p in sorted(sweep.glob("*/attempts.jsonl"))}


def test_a_sweep_with_repeats_trains_each_configuration_twice_and_resumes(tmp_path):
    """2 configurations x 2 repeats x 1 epoch on digits, the smallest model; energy from
    CPU time (energy_source: estimate), which no load keeps from starting."""
    config, sweep = config_at(tmp_path), tmp_path / "sweep"
    cmd = [sys.executable, "-m", "greenscreen_pipeline", "sweep", "local", "--config",
           str(config), "--sweep-dir", str(sweep)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    params = [yaml.safe_load((sweep / f"{i:03d}" / "parameters.yaml").read_text())
              for i in range(4)]
    assert [p["lr"] for p in params] == [0.01, 0.01, 0.05, 0.05]
    assert [p["run"] for p in params] == [0, 1, 2, 3]  # training seed: seed + run, each own
    result = analysis.analyze(sweep)
    assert result["done"] == 4 and result["repeats"]["configurations"] == 2
    table = {r["run"]: r for r in result["top_objective"]}
    for first, second in (("000", "001"), ("002", "003")):
        values = [json.loads((sweep / r / "results.json").read_text())["objective"]["value"]
                  for r in (first, second)]
        assert table[first]["objective"] == pytest.approx(np.mean(values))
        assert table[first]["repeats"] == 2
    assert "2 repeats per configuration" in analysis.summary_text(result)
    assert "seed-to-seed SD (pooled): objective " in analysis.summary_text(result)
    first = " ".join(page_texts(report.build(sweep, tmp_path / "r.pdf"))[0].split())
    assert "mean of 2 repeats; SD" in first and "repeated configuration(s) (4 runs)" in first
    # An interrupted repeat: only it trains again.
    before = attempts(sweep)
    RunFolder(sweep / "003").write_status("interrupted", reason="killed (test)")
    (sweep / "003" / "results.json").unlink()
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    after = attempts(sweep)
    assert {r: after[r] for r in ("000", "001", "002")} == {
        r: before[r] for r in ("000", "001", "002")}
    assert after["003"] != before["003"]
    assert RunFolder(sweep / "003").state() == "done"


def test_the_sampler_s_proposal_goes_to_every_repeat_once_the_first_ended(tmp_path):
    path = config_at(tmp_path, runs=6)
    path.write_text(path.read_text().replace("energy_source: estimate", "energy_source: "
                                             "estimate, search: pareto")
                    .replace("[0.01, 0.05]", "[0.01, 0.02, 0.05, 0.1]"))
    config, sweep = space.load(path), tmp_path / "sweep"
    manifest.record(config, sweep, batch_size=2)
    first = proposals.configure_batch(config, sweep, 0, 2)  # configuration 0: the baseline
    assert first == {0: config.run(0), 1: config.run(0)}
    for i, (energy, acc) in enumerate(((100.0, 0.8), (120.0, 0.9))):
        done = tmp_path / "done" / f"{i:03d}"  # a finished run, beside its proposal
        write_run(done, first[i], energy=energy, power=100.0, acc=acc, epochs=1)
        (done / "results.json").write_text(json.dumps(
            {"objective": {"name": "val_accuracy", "mode": "max", "value": acc}}))
        shutil.copytree(done, sweep / f"{i:03d}", dirs_exist_ok=True)
    second = proposals.configure_batch(config, sweep, 1, 2)  # the sampler's configuration 1
    assert second[2] == second[3] and second[2]["lr"] in (0.02, 0.05, 0.1)
    assert proposals.configure_batch(config, sweep, 1, 2) == second  # recorded, kept


def test_configurations_beyond_the_space_are_said_in_configurations(tmp_path):
    config = space.load(config_at(tmp_path, runs=8, n=2))  # 4 configurations, a space of 2
    said = repeats.beyond_space(config.space, config.settings)
    assert said.startswith("settings.runs 8 with settings.repeats 2 is 4 configurations, "
                           "but the space holds 2")
    assert repeats.beyond_space(config.space, {**config.settings, "runs": 4}) is None
    one = {**config.settings, "repeats": 1}
    assert repeats.beyond_space(config.space, one) == ranges.repeats(config.space, 8)
