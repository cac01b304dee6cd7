"""Energy error bars (issue 34, item 6): a run's 95 % interval (summary.json's
energy_err_j) drawn where it is finite, none for an estimate (NaN) or an older run folder
without it; the same inputs draw the same bars."""

import json
import math
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import yaml

from greenscreen_pipeline import collect
from greenscreen_pipeline.report import plots
from greenscreen_pipeline.report.errorbars import ENERGY_BARS, energy_errors
from greenscreen_pipeline.report.layout import EnergyUnit

matplotlib.use("Agg")

# run -> (batch size, energy J, half-width J or None: no energy_err_j, "nan": an estimate)
RUNS = {"000": (16, 4000.0, 120.0), "001": (32, 3000.0, 90.0),
        "002": (64, 2500.0, "nan"), "003": (128, 2000.0, None)}


def write_run(folder: Path, bs: int, energy: float, err, acc: float) -> None:
    """A finished run folder; `err` None leaves energy_err_j out (an older folder)."""
    folder.mkdir(parents=True)
    (folder / "parameters.yaml").write_text(yaml.safe_dump(
        {"batch_size": bs, "model": "ffnn", "test_accuracy": acc}))
    (folder / "status.json").write_text(json.dumps({"status": "done", "reason": None}))
    summary = {"energy_j": energy, "power_avg_w": energy / 60, "duration_s": 60.0,
               "source": "estimated:cpu-time" if err == "nan" else "measured:nvml-counter",
               "t_start": 1.7e9, "t_end": 1.7e9 + 60}
    if err is not None:  # json writes NaN as NaN, as the callback's summary.json does
        summary["energy_err_j"] = float(err)
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "logs.csv").write_text("epoch,loss,accuracy,val_accuracy,power_w,energy_j\n"
                                     f"0,0.5,{acc},{acc},{energy / 60},{energy}\n")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture()
def runs(tmp_path):
    for i, (run, (bs, energy, err)) in enumerate(RUNS.items()):
        write_run(tmp_path / run, bs, energy, err, acc=0.8 + 0.03 * i)
    return collect.load_sweep(tmp_path).sort_values("run").reset_index(drop=True)


def bars(ax) -> list:
    """The error bar line segments on `ax`, as [[x0, y0], [x1, y1]] lists."""
    from matplotlib.container import ErrorbarContainer

    return [seg.tolist() for c in ax.containers if isinstance(c, ErrorbarContainer)
            for lines in c.lines[2] for seg in lines.get_segments()]


def test_load_sweep_reads_the_half_width_and_nan_where_there_is_none(runs):
    err = runs.set_index("run")["energy_err_j"]
    assert err["000"] == 120.0 and err["001"] == 90.0
    assert math.isnan(err["002"]) and math.isnan(err["003"])  # estimate, older folder


def test_energy_errors_are_in_the_report_unit(runs):
    got = energy_errors(runs, EnergyUnit(3600.0))  # Wh
    np.testing.assert_allclose(got, [120 / 3600, 90 / 3600, np.nan, np.nan])
    assert np.isnan(energy_errors(runs.drop(columns="energy_err_j"), EnergyUnit(0))).all()


def test_pareto_plot_draws_horizontal_bars_on_measured_runs_only(runs):
    unit = EnergyUnit(0)  # J
    fig = plots.pareto_plot(runs, [], None, unit)
    ax = fig.axes[0]
    y = runs["objective"].tolist()
    assert bars(ax) == [[[3880.0, y[0]], [4120.0, y[0]]], [[2910.0, y[1]], [3090.0, y[1]]]]
    assert ENERGY_BARS in [t.get_text() for t in ax.get_legend().get_texts()]


def test_energy_against_and_against_range_draw_vertical_bars(runs):
    unit = EnergyUnit(0)
    ax = plots.energy_against(runs, "batch_size", unit).axes[0]
    assert bars(ax) == [[[16.0, 3880.0], [16.0, 4120.0]], [[32.0, 2910.0], [32.0, 3090.0]]]
    fig = plots.against_range(runs, "batch_size", {"min": 16, "max": 128, "log": True}, unit)
    assert bars(fig.axes[0]) == []  # the objective's panel has no energy bars
    assert bars(fig.axes[1]) == [[[16.0, 3880.0], [16.0, 4120.0]],
                                 [[32.0, 2910.0], [32.0, 3090.0]]]


def test_runs_without_intervals_still_plot_without_bars(tmp_path):
    for i, (run, (bs, energy, _)) in enumerate(RUNS.items()):
        write_run(tmp_path / run, bs, energy, None, acc=0.8 + 0.03 * i)
    runs = collect.load_sweep(tmp_path)
    assert runs["energy_err_j"].isna().all()
    ax = plots.pareto_plot(runs, [], None, EnergyUnit(0)).axes[0]
    assert bars(ax) == []
    assert ENERGY_BARS not in [t.get_text() for t in ax.get_legend().get_texts()]
    assert bars(plots.energy_against(runs, "batch_size", EnergyUnit(0)).axes[0]) == []


def test_same_runs_draw_the_same_bars(runs):
    first = bars(plots.pareto_plot(runs, [], None, EnergyUnit(0)).axes[0])
    again = bars(plots.pareto_plot(runs.copy(), [], None, EnergyUnit(0)).axes[0])
    assert first == again and first


def test_the_recommendation_is_circled_at_its_repeats_mean(runs):
    """With settings.repeats the front and the recommendation come from the repeats'
    means: the red circle sits at the mean, not at the first repeat's own dot."""
    from greenscreen_pipeline import repeats

    ranked = repeats.means(runs, 2)  # 000+001 and 002+003: two configurations
    first = ranked.iloc[0]
    assert first["run"] == "000" and first["energy_j"] == 3500.0
    ax = plots.pareto_plot(runs, [], "000", EnergyUnit(0), ranked=ranked).axes[0]
    circled = [c for c in ax.collections if c.get_label().startswith("recommended")]
    assert [c.get_label() for c in circled] == ["recommended (000, mean of 2)"]
    (x, y), = circled[0].get_offsets().tolist()
    assert (x, y) == pytest.approx((3500.0, runs["objective"].iloc[:2].mean()))
    # without repeats it is the run's own dot, as before
    ax = plots.pareto_plot(runs, [], "001", EnergyUnit(0)).axes[0]
    circled = [c for c in ax.collections if c.get_label().startswith("recommended")]
    assert circled[0].get_offsets().tolist() == [[3000.0, runs["objective"].iloc[1]]]


def test_a_range_s_axes_show_its_ends_whole_and_name_its_n_a_runs(runs):
    """A review: dots at a range's min or max were cut in half by the axis (most of a grid
    range's runs), and the parallel coordinates drew another method's runs (n/a) below a
    range's min with no label, as if they were values below it."""
    unit = EnergyUnit(0)
    for span in ({"min": 16, "max": 128, "log": True}, {"min": 16, "max": 128, "log": False}):
        low, high = plots.against_range(runs, "batch_size", span, unit).axes[0].get_xlim()
        assert low < 16 and high > 128
    mixed = runs.assign(target_sparsity=[0.5, 0.9, float("nan"), float("nan")])
    fig = plots.parallel_coordinates(mixed, ["batch_size", "target_sparsity"], unit,
                                     {"target_sparsity": {"min": 0.5, "max": 0.9,
                                                          "log": False}})
    assert "n/a" in [t.get_text() for t in fig.axes[0].texts]
