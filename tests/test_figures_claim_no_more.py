"""Figures that claimed more than was measured, found by a read-only review of the analysis,
`final`'s comparison and the report: a 0 J run "saving 100 %", "measured it: n/a J", a
cumulative energy adding estimates to measurements unsaid, an estimate blamed where there
was none, a "log scale" axis drawn linear, and "mean 0 %" of an overflowed saving.
Run folders are written here; nothing is trained."""

import math

import matplotlib
import pandas as pd
import pytest
from test_analysis_report import page_texts
from test_final_seeds import runs_of
from test_report_honesty import first_page, sweep, write_run

from greenscreen_pipeline import analysis, comparison, comparison_words, report
from greenscreen_pipeline.objective import Objective
from greenscreen_pipeline.report import answer, plots
from greenscreen_pipeline.report.inputs import ReportInputs
from greenscreen_pipeline.report.layout import EnergyUnit

matplotlib.use("Agg")
ACCURACY = {"recommended": [0.90, 0.91, 0.89], "baseline": [0.91, 0.91, 0.90]}


def test_a_final_seed_at_0_joules_is_no_saving_of_100_percent():
    doc = comparison.compare(runs_of({"recommended": [0.0, 0.0, 0.0],
                                      "baseline": [100.0, 103.0, 110.0]}, ACCURACY),
                             [1, 2, 3], Objective())
    assert doc["energy_saving"]["mean"] is None
    said = comparison_words.outcome_words(doc, Objective())
    assert "100" not in said and "energy 0 J: the meter saw nothing" in said


def test_a_run_at_0_joules_is_left_out_of_the_ranking_with_why(tmp_path):
    """It was recommended ("used 0 J, -100 % against the baseline")."""
    d = sweep(tmp_path, 4, {"batch_size": [16, 32, 64, 128]})
    for i, (energy, acc) in enumerate([(100.0, 0.90), (120.0, 0.905), (0.0, 0.91),
                                       (140.0, 0.89)]):
        write_run(d / f"{i:03d}", {"batch_size": 16 * 2 ** i}, energy, acc)
    result = analysis.analyze(d)
    assert result["recommendation"]["run"] == "000"
    assert {"run": "002", "status": "done",
            "reason": "done, but its energy is 0 J: the meter saw nothing"} in result["left_out"]
    page = first_page(d)
    assert "0 J" not in page.split("Totals")[0].replace("100 J", "")
    assert "against the median of the other 2 ranked runs" in page


def test_a_final_run_without_an_energy_figure_is_not_said_to_have_measured_it(tmp_path):
    d = sweep(tmp_path, 6, {"batch_size": [16, 32], "lr": [0.01, 0.1]})
    for i, (bs, lr, energy) in enumerate([(32, 0.01, 150.0), (32, 0.01, 152.0),
                                          (16, 0.1, 120.0), (16, 0.1, 121.0),
                                          (32, 0.1, 200.0), (32, 0.1, 201.0)]):
        write_run(d / f"{i:03d}", {"batch_size": bs, "lr": lr}, energy, 0.9)
    assert analysis.analyze(d, rule="values")["recommendation"]["run"] is None
    write_run(d / "final", {"batch_size": 16, "lr": 0.01}, math.nan, 0.91, source="none")
    said = answer.headline(ReportInputs.read(d))
    assert "measured it" not in said and "n/a J" not in said
    assert "the final run trained it for 2 epochs, to accuracy 0.910, but recorded no " \
           "energy figure" in said


def test_the_search_progress_says_where_it_adds_estimates_to_measurements(tmp_path):
    d = sweep(tmp_path, 5, {"lr": [0.01, 0.05]})
    for i in range(4):
        write_run(d / f"{i:03d}", {"lr": [0.01, 0.05][i % 2]}, 100.0 + 10 * i, 0.9 + 0.01 * i,
                  source="estimated:cpu-time" if i % 2 else "measured:nvidia-smi")
    # a failed run: the search-cost section (and its progress curve) needs two states
    write_run(d / "004", {"lr": 0.01}, None, None, status="failed", reason="ValueError: x")
    analysis.analyze(d)
    text = " ".join(" ".join(page_texts(report.build(d, d / "r.pdf"))).split())
    assert ("The runs' energy was obtained in 2 ways (estimated:cpu-time: 2 runs; "
            "measured:nvidia-smi: 2 runs): the cumulative energy below adds estimates to "
            "measurements") in text


def test_two_meters_are_not_said_to_be_an_estimate():
    runs = runs_of({"recommended": [80.0, 84.0, 90.0], "baseline": [100.0, 103.0, 110.0]},
                   ACCURACY, {"recommended": "measured:nvml-counter"})
    why = comparison.compare(runs, [1, 2, 3], Objective())["energy_saving"]["reason"]
    assert why.endswith("one meter's figure is never compared with another's")
    assert "estimate" not in why
    runs["baseline"] = [{**r, "source": None} for r in runs["baseline"]]
    why = comparison.compare(runs, [1, 2, 3], Objective())["energy_saving"]["reason"]
    assert why.endswith("a figure whose provenance was not recorded is never compared with "
                        "another")


def test_a_linear_energy_axis_is_not_labelled_log_scale():
    rows = pd.DataFrame({"run": ["000", "001"], "energy_j": [0.0, 50.0],
                         "objective": [0.8, 0.9], "status": ["done", "done"]})
    fig = plots.pareto_plot(rows, [], None, EnergyUnit(50.0), Objective(), rows.iloc[:0])
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear" and "log" not in ax.get_xlabel()
    rows["energy_j"] = [10.0, 50.0]
    ax = plots.pareto_plot(rows, [], None, EnergyUnit(50.0), Objective(), rows.iloc[:0]).axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel().endswith(", log scale)")


def test_a_saving_of_figures_near_the_float_limit_is_computed_not_said_0_percent():
    doc = comparison.compare(runs_of({"recommended": [1.0e308, 1.5e308, 1.2e308],
                                      "baseline": [1.5e308, 1.6e308, 1.7e308]}, ACCURACY),
                             [1, 2, 3], Objective())
    assert doc["energy_saving"]["mean"] == pytest.approx(1 - 3.7 / 4.8)
    assert doc["recommended"]["energy_j"]["sd"] > 0
    assert comparison_words.saving_words({"seeds": [1], "energy_saving": {
        "mean": math.nan, "ci95": None, "reason": "x"}}).count(" 0 %") == 0
