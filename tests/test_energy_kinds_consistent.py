"""Every part of one analysis judges the same runs' energy by one rule (measured first):
a configuration's repeats, what the sampler is told of them, the "what drives energy"
tests and Optuna's importance; the report's baseline column reads the baseline shown; a
mean over repeats keeps the attributions of the figures in it. Run folders written by
hand, as the run process leaves them; no Keras training."""

import json
import math
import shutil
from pathlib import Path

import pytest
from test_analysis_mixed_sources import ESTIMATE, MEASURED, PARAMS, write
from test_analysis_report import SEED_RUNS, page_texts, write_run
from test_repeats import config_at
from test_search_importance import make_sweep

from greenscreen_pipeline import analysis, collect, manifest, relevance, repeats, report, space
from greenscreen_pipeline.executors import proposals
from greenscreen_pipeline.objective import Objective
from greenscreen_pipeline.provenance import shares_gpu
from greenscreen_pipeline.report.inputs import ReportInputs

SHARED = "measured:nvidia-smi;attributed:sm-share"
COMPUTED = "computed from one power sample per epoch"


def mostly_estimated(folder: Path) -> Path:
    """Four measured runs, energy independent of lr; six estimated ones (more than the
    measured), lr 0.1's cheaper than lr 0.01's: across both kinds, or on the estimates
    alone, lr "drives energy"."""
    runs = [(0.01, 100.0, MEASURED), (0.01, 102.0, MEASURED), (0.1, 101.0, MEASURED),
            (0.1, 99.0, MEASURED)] + [(0.01, 30.0 + i, ESTIMATE) for i in range(3)] + \
        [(0.1, 10.0 + i, ESTIMATE) for i in range(3)]
    for i, (lr, energy, source) in enumerate(runs):
        write(folder / f"{i:03d}", {**PARAMS, "lr": lr}, energy, acc=0.9 + 0.003 * (i % 3),
              source=source)
    return folder


def test_the_energy_tests_read_the_measured_runs_though_estimates_outnumber_them(tmp_path):
    """relevance.one_energy_kind took the kind most runs share (the six estimates here),
    while a configuration's repeats are measured first: one report judged two sets."""
    result = analysis.analyze(mostly_estimated(tmp_path))
    for target in ("energy_j", "power_w"):
        tested = result["relevance"][target]
        assert tested["left_out"]["energy_kind"] == MEASURED, target
        assert (tested["runs"], tested["left_out"]["kinds"]) == (4, {ESTIMATE: 6})
    assert result["relevance"]["objective"]["runs"] == 10
    assert "on the 4 run(s) whose energy is measured:nvidia-smi" in " ".join(
        result["relevance_summary"])


def test_the_repeats_and_the_energy_tests_pick_by_the_same_rule(tmp_path):
    """The same runs, split by both readers: the same kind kept, the same runs set aside."""
    runs = collect.load_sweep(mostly_estimated(tmp_path))
    same, _ = relevance.one_energy_kind(runs)
    kept, aside = repeats.one_kind(runs)
    assert kept["run"].tolist() == same["run"].tolist() == ["000", "001", "002", "003"]
    assert len(aside) == 6


def repeated(tmp_path: Path, energies: list[tuple[float, str]], n: int = 2) -> Path:
    """A sweep of settings.repeats `n` (test_repeats' space: lr 0.01 or 0.05), run i
    finished with energy and source energies[i]; None: failed."""
    config = space.load(config_at(tmp_path, runs=len(energies), n=n))
    sweep = tmp_path / "sweep"
    manifest.record(config, sweep)
    for i, figure in enumerate(energies):
        if figure is None:
            write_run(sweep / f"{i:03d}", config.run(i), None, None, None, status="failed")
        else:
            write(sweep / f"{i:03d}", config.run(i), figure[0], source=figure[1])
    return sweep


def test_the_sampler_is_told_a_configuration_s_energy_of_one_kind(tmp_path):
    """Configuration 1: repeat 002 measured at 100 J, repeat 003 estimated at 10 J. The
    analysis ranks it at 100 J; the sampler was told their mean, 55 J, "cheaper" than
    the baseline's measured 60 J."""
    sweep = repeated(tmp_path, [(60.0, MEASURED), (60.0, MEASURED), (100.0, MEASURED),
                                (10.0, ESTIMATE)])
    config = space.load(config_at(tmp_path))
    results = [proposals.result_of(config, sweep, i, Objective()) for i in range(4)]
    told = repeats.told(results, 2)  # each result carries its energy's provenance
    assert [t.energy_j for t in told] == pytest.approx([60.0, 100.0])
    ranked = {r["run"]: r for r in analysis.analyze(sweep)["top_energy"]}
    assert ranked["002"]["energy_j"] == pytest.approx(told[1].energy_j)


def test_optuna_s_energy_importance_reads_runs_of_one_kind(tmp_path):
    """A pareto search (test_search_importance's: energy follows batch_size) whose SGD
    runs were estimated, far above the measured runs: over both kinds, optimizer "drove
    energy"."""
    sweep = make_sweep(tmp_path / "sweep")
    sgd = []
    for folder in sorted(sweep.glob("[0-9][0-9][0-9]")):
        summary_path = folder / "summary.json"
        if not summary_path.exists() or "SGD" not in (folder / "parameters.yaml").read_text():
            continue
        summary = json.loads(summary_path.read_text())
        summary.update(source=ESTIMATE, energy_j=5000.0 + len(sgd))
        summary_path.write_text(json.dumps(summary))
        sgd.append(folder.name)
    result = analysis.analyze(sweep)
    entry = result["optuna_importance"]
    done_sgd = [r for r in sgd if r in {"004", "005", "011"}]
    assert next(iter(entry["energy_j"])) == "batch_size", entry["energy_j"]
    assert entry["runs"] == 8 and entry["energy_runs"] == 8 - len(done_sgd) == 5
    assert entry["energy_left_out"]["energy_kind"] == MEASURED
    assert next(iter(entry["objective"])) == "lr"  # over every done run still
    line = " ".join(analysis.summary_text(result).split())
    assert "(over 5 run(s): on the 5 run(s) whose energy is measured:nvidia-smi" in line


def test_the_baseline_column_reads_the_baseline_shown(tmp_path):
    """settings.repeats 2: run 000 failed before it wrote parameters.yaml, so the baseline
    shown is run 001; the recommendation's table read 000's parameters (none: n/a)."""
    sweep = repeated(tmp_path, [None, (60.0, MEASURED), (30.0, MEASURED), (30.0, MEASURED)])
    (sweep / "000" / "parameters.yaml").unlink()
    config = space.load(config_at(tmp_path))
    result = analysis.analyze(sweep)
    assert result["recommendation"]["run"] == "002"
    assert ReportInputs.read(sweep).baseline["run"] == "001"
    text = " ".join(" ".join(page_texts(report.build(sweep, tmp_path / "r.pdf"))).split())
    base, rec = config.run(0)["lr"], config.run(2)["lr"]
    assert base != rec
    assert f"parameter recommended baseline (001) lr {rec} {base}" in text


def test_a_mean_over_repeats_keeps_a_shared_gpu_s_attribution(tmp_path):
    """Repeat 000 alone on its GPU, repeat 001 its attributed share of a shared one: one
    energy kind (provenance.energy_kind drops attributions), so one mean, whose source
    was 000's alone: plain measured, the attributed share in it unsaid."""
    sweep = repeated(tmp_path, [(60.0, MEASURED), (40.0, SHARED), (100.0, MEASURED),
                                (100.0, MEASURED)])
    result = analysis.analyze(sweep)
    row = {r["run"]: r for r in result["top_energy"]}["000"]
    assert row["energy_j"] == pytest.approx(50.0)
    assert row["source"] == SHARED and shares_gpu(row["source"])
    shown = ReportInputs.read(sweep).run("000")
    assert shown["source"] == SHARED
    other = {r["run"]: r for r in result["top_energy"]}["002"]
    assert other["source"] == MEASURED  # alike repeats: their source as written
    assert not math.isnan(other["energy_j"])


def test_the_seed_format_s_energy_is_never_called_measured(tmp_path):
    """The original pipeline's folders (tests/fixtures/seed-runs: real runs) log one
    nvidia-smi power reading per epoch; their energy is each reading times the epoch's
    duration (collect.SEED_SOURCE, "computed:"). The sweep's total and its energy by
    state called it "measured": sweep_total's two words count all that is not estimated
    as measured."""
    seed = tmp_path / "seed"
    shutil.copytree(SEED_RUNS, seed, ignore=shutil.ignore_patterns("*.md"))
    result = analysis.analyze(seed)
    assert result["sweep_energy"]["provenance"] == COMPUTED
    assert result["energy_by_state"]["done"]["provenance"] == COMPUTED
    said = analysis.summary_text(result)
    assert f"sweep energy {result['sweep_energy']['energy_j']:.1f} J, computed from one " \
           "power sample per epoch: " in said
    text = " ".join(" ".join(page_texts(report.build(seed, tmp_path / "r.pdf"))).split())
    assert "(computed from one power sample per epoch: the runs' own figures added up" in text
    assert "measured" not in said + text
