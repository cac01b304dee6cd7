"""A sweep whose runs' energy was obtained in different ways (a sweep resumed on a machine
without a meter: some runs measured, some estimated from CPU time): no mean, pick or test
puts an estimate beside a measurement as if it were one; and `analyze --component` gives
each run the component's own 95 % interval, not the total's."""

import json
import math
from pathlib import Path

import pytest
from test_analysis_report import page_texts, write_run
from test_repeats import config_at

from greenscreen_pipeline import analysis, collect, manifest, report, space
from greenscreen_pipeline.report.inputs import ReportInputs

ESTIMATE = "estimated:cpu-time"
MEASURED = "measured:nvidia-smi"
PARAMS = {"model": "ffnn", "batch_size": 64, "optimizer": "SGD"}


def write(folder: Path, params: dict, energy: float, acc: float = 0.9,
          source: str = MEASURED, err: float = 2.0) -> None:
    """A finished run (test_analysis_report.write_run), its energy `source` and 95 %
    interval as its SMICallback writes them: an estimate has none (NaN)."""
    write_run(folder, params, energy=energy, power=energy / 60, acc=acc, epochs=1)
    summary = json.loads((folder / "summary.json").read_text())
    summary.update(source=source, energy_err_j=math.nan if source == ESTIMATE else err)
    (folder / "summary.json").write_text(json.dumps(summary))


def repeated_sweep(tmp_path: Path) -> Path:
    """settings.repeats 2: the baseline (000, 001) measured at 60 J twice; the other
    configuration (002, 003) measured at 100 J once and estimated at 10 J once."""
    config = space.load(config_at(tmp_path))
    sweep = tmp_path / "sweep"
    manifest.record(config, sweep)
    for i, (energy, source) in enumerate([(60.0, MEASURED), (60.0, MEASURED),
                                          (100.0, MEASURED), (10.0, ESTIMATE)]):
        write(sweep / f"{i:03d}", config.run(i), energy, source=source)
    return sweep


def test_a_configuration_s_energy_is_the_mean_of_its_repeats_obtained_one_way(tmp_path):
    sweep = repeated_sweep(tmp_path)
    result = analysis.analyze(sweep)
    rec = result["recommendation"]
    # Averaged with the estimate, run 002's configuration read "55 J, measured" and won.
    assert rec["run"] == "000" and rec["energy_j"] == pytest.approx(60.0)
    ranked = {r["run"]: r for r in result["top_energy"]}
    other = ranked["002"]
    assert other["energy_j"] == pytest.approx(100.0) and other["source"] == MEASURED
    assert other["repeats"] == 2 and other["energy_set_aside"] == ["003"]
    assert ranked["000"]["energy_set_aside"] == []
    aside = result["repeats"]["energy_set_aside"]
    assert [(e["run"], e["runs"]) for e in aside] == [("002", ["003"])]
    assert ESTIMATE in aside[0]["reason"] and "1 repeat(s) measured:nvidia-smi" in \
        aside[0]["reason"]
    assert "configuration of run 002: the energy of repeat(s) 003 was obtained otherwise" in \
        analysis.summary_text(result)
    row = ReportInputs.read(sweep).run("002")  # the report reads the same means
    assert row["energy_j"] == pytest.approx(100.0) and row["energy_err_j"] == pytest.approx(2.0)


def test_a_configuration_estimated_in_every_repeat_stays_an_estimate(tmp_path):
    sweep = repeated_sweep(tmp_path)
    summary = json.loads((sweep / "002" / "summary.json").read_text())
    summary.update(source=ESTIMATE, energy_err_j=math.nan)
    (sweep / "002" / "summary.json").write_text(json.dumps(summary))
    result = analysis.analyze(sweep)
    other = {r["run"]: r for r in result["top_objective"]}["002"]
    assert other["energy_j"] == pytest.approx(55.0) and other["source"] == ESTIMATE
    assert [r["run"] for r in result["top_energy"]] == ["000"]  # not ranked beside it
    assert "1 estimated:cpu-time" in result["energy_rankings_left_out"]
    assert other["energy_set_aside"] == [] and "energy_set_aside" not in result["repeats"]
    rec = result["recommendation"]  # the estimate is set aside beside the measured mean
    assert rec["run"] == "000" and rec["set_aside"] == ["002"]


def values_sweep(folder: Path, runs: list[tuple[float, float, str]]) -> Path:
    """Runs of (lr, energy, source), every one as accurate."""
    for i, (lr, energy, source) in enumerate(runs):
        write(folder / f"{i:03d}", {**PARAMS, "lr": lr}, energy, source=source)
    return folder


def test_the_values_rule_compares_measured_means_and_picks_a_measured_run(tmp_path):
    # lr 0.05's mean mixed 100 J measured with a 10 J estimate: 55 J "beat" lr 0.01's 60.
    mixed = values_sweep(tmp_path / "levels", [(0.01, 60.0, MEASURED), (0.01, 60.0, MEASURED),
                                               (0.05, 100.0, MEASURED), (0.05, 10.0, ESTIMATE)])
    rec = analysis.analyze(mixed, rule="values")["recommendation"]
    assert rec["parameters"] == {"lr": 0.01} and rec["run"] == "000"
    assert rec["set_aside"] == ["003"]
    levels = {lv["value"]: lv for lv in rec["evidence"]["lr"]}
    assert levels[0.05]["mean_energy_j"] == pytest.approx(100.0)
    assert (levels[0.05]["runs"], levels[0.05]["energy_runs"]) == (2, 1)
    # The chosen value's runs: its estimate (10 J) is not the run picked over 000 (60 J).
    alike = values_sweep(tmp_path / "pick", [(0.01, 60.0, MEASURED), (0.01, 10.0, ESTIMATE),
                                             (0.05, 100.0, MEASURED), (0.05, 100.0, MEASURED)])
    result = analysis.analyze(alike, rule="values")
    rec = result["recommendation"]
    assert rec["parameters"] == {"lr": 0.01} and rec["run"] == "000"
    assert rec["energy_j"] == pytest.approx(60.0) and rec["set_aside"] == ["001"]
    assert "001 set aside, their energy an estimate" in analysis.summary_text(result)


def write_split(folder: Path, lr: float, gpu: float, cpu: float, top_level: bool) -> None:
    """A run measured on the GPU (NVML, +-0.5 J) and the CPU (RAPL, +-40 J): the total's
    interval is the CPU's, nearly; `top_level` False: only `components` holds the GPU's."""
    write(folder, {**PARAMS, "lr": lr}, gpu + cpu, source="measured:nvml-counter + "
          "measured:rapl", err=40.0)
    summary = json.loads((folder / "summary.json").read_text())
    summary["components"] = {
        "gpu": {"energy_j": gpu, "source": "measured:nvml-counter", "energy_err_j": 0.5},
        "cpu": {"energy_j": cpu, "source": "measured:rapl", "energy_err_j": 40.0}}
    if top_level:
        summary.update(energy_gpu_j=gpu, energy_gpu_err_j=0.5, energy_cpu_j=cpu,
                       energy_cpu_err_j=40.0)
    (folder / "summary.json").write_text(json.dumps(summary))


def test_component_energy_carries_the_component_s_own_interval(tmp_path):
    for i in range(4):
        write_split(tmp_path / f"{i:03d}", [0.01, 0.05][i % 2], 600.0 + 20 * i, 400.0,
                    top_level=i < 2)
    runs = collect.load_sweep(tmp_path)
    assert runs["energy_gpu_err_j"].tolist() == [0.5] * 4
    gpu = analysis.focus(runs, "gpu")
    assert gpu["energy_err_j"].tolist() == [0.5] * 4  # not the total's 40 J
    assert gpu["energy_total_err_j"].tolist() == [40.0] * 4
    analysis.analyze(tmp_path, component="gpu")
    assert ReportInputs.read(tmp_path).ok["energy_err_j"].tolist() == [0.5] * 4
    dram = analysis.focus(runs, "dram")  # never measured: no interval either
    assert dram["energy_err_j"].isna().all()


def test_what_drives_energy_is_tested_on_runs_of_one_energy_kind(tmp_path):
    # Measured runs: energy independent of lr. Four more, all lr 0.1, estimated at ~10 J:
    # across both kinds lr "drove energy", only because it parted measured from estimated.
    measured = [(0.01, e) for e in (100.0, 104.0, 98.0, 102.0)] + \
        [(0.05, e) for e in (101.0, 99.0, 103.0, 97.0)]
    runs = [(lr, e, MEASURED) for lr, e in measured] + \
        [(0.1, 10.0 + i, ESTIMATE) for i in range(4)]
    for i, (lr, energy, source) in enumerate(runs):
        write(tmp_path / f"{i:03d}", {**PARAMS, "lr": lr}, energy, acc=0.9 + 0.003 * (i % 3),
              source=source)
    result = analysis.analyze(tmp_path)
    for target in ("energy_j", "power_w"):
        tested = result["relevance"][target]
        assert tested["runs"] == 8
        assert tested["left_out"]["energy_kind"] == MEASURED
        assert (tested["left_out"]["runs"], tested["left_out"]["kinds"]) == (4, {ESTIMATE: 4})
        lr = next(r for r in tested["table"] if r["factor"] == "lr")
        assert lr["p_holm"] > 0.05
    assert result["relevance"]["objective"]["runs"] == 12  # the objective reads every run
    said = " ".join(result["relevance_summary"])
    assert "on the 8 run(s) whose energy is measured:nvidia-smi" in said
    assert "4 estimated:cpu-time" in said
    # The appendix's energy, power and efficiency rankings too: the estimates (~10 J)
    # topped "Lowest energy" beside measurements of ~100 J
    for table in ("top_energy", "top_power", "top_efficiency", "top_efficiency_per_w"):
        assert {r["source"] for r in result[table]} == {MEASURED}, table
    assert ESTIMATE in {r["source"] for r in result["top_objective"]}  # accuracy: every run
    assert result["energy_rankings_left_out"].startswith(
        "on the 8 run(s) whose energy is measured:nvidia-smi")
    pages = " ".join(" ".join(p.split()) for p in page_texts(report.build(
        tmp_path, tmp_path / "r.pdf")))
    assert "whose energy is measured:nvidia-smi" in pages
    assert ("Lowest energy, lowest mean power and the efficiency rankings are computed on the "
            "8 run(s) whose energy is measured:nvidia-smi") in pages


def test_a_component_measured_where_the_total_was_in_part_estimated_ranks_as_measured(
        tmp_path):
    """`--component gpu` kept each run's total source: run 001, its GPU measured and its
    CPU estimated, was set aside as an estimate though its GPU figure, the one ranked, is
    a measurement, and the recommendation fell to a dearer run."""
    for i, gpu in enumerate([600.0, 500.0, 650.0, 700.0]):
        folder = tmp_path / f"{i:03d}"
        write_split(folder, [0.01, 0.05][i % 2], gpu, 400.0, top_level=True)
        if i == 1:
            summary = json.loads((folder / "summary.json").read_text())
            summary["source"] = "measured:nvml-counter + estimated:cpu-time"
            summary["components"]["cpu"]["source"] = ESTIMATE
            summary.pop("energy_cpu_j")
            (folder / "summary.json").write_text(json.dumps(summary))
    result = analysis.analyze(tmp_path, component="gpu")
    rec = result["recommendation"]
    assert rec["run"] == "001" and rec["energy_j"] == pytest.approx(500.0)
    assert not rec.get("set_aside")
    assert result["sources"] == ["measured:nvml-counter"]
