"""Faults a hunt found in the report's figures: the strongest drivers drawn grey as "not
significant" when their p-value underflowed to 0.0, and a report that failed on a "$" in
a configuration's value (matplotlib read it as mathtext). Run folders written here,
nothing trained."""

import json

from matplotlib.colors import to_hex
from test_analysis_report import pdf_text, write_run

from greenscreen_pipeline import analysis, report
from greenscreen_pipeline.report import plots


def test_a_p_value_of_zero_is_drawn_significant():
    relevance = {"energy_j": {"table": [
        {"factor": "batch_size", "partial_eta2": 0.99, "p_holm": 0.0},
        {"factor": "lr", "partial_eta2": 0.2, "p_holm": 0.3},
        {"factor": "model", "partial_eta2": 0.1, "p_holm": None}]}}
    fig = plots.importance_bars(relevance, targets=("energy_j",))
    bars = {tick.get_text(): to_hex(bar.get_facecolor())
            for tick, bar in zip(fig.axes[0].get_yticklabels(), fig.axes[0].patches)}
    assert bars == {"batch_size": plots.GREEN, "lr": plots.GREY, "model": plots.GREY}


def test_a_dollar_sign_in_a_configuration_value_is_reported_as_text(tmp_path):
    tags = ["$5^$", "$x_{1$"]
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "sweep.json").write_text(json.dumps({  # the parallel coordinates
        "seed": 22, "settings": {"runs": 6}, "space": {"tag": tags, "lr": [0.01, 0.05]}}))
    for i in range(6):
        write_run(tmp_path / "sweep" / f"{i:03d}", {"tag": tags[i % 2],
                                                     "lr": [0.01, 0.05][i // 3]},
                  energy=50.0 + 10 * i, power=40.0, acc=0.8 + 0.01 * i)
    analysis.analyze(tmp_path / "sweep")
    pdf = report.build(tmp_path / "sweep", tmp_path / "report.pdf")
    assert pdf.exists() and "$x_{1$" in pdf_text(pdf)[1]


def test_the_summed_energy_line_ends_at_an_epoch_with_no_figure():
    """An epoch whose energy was not measured (NaN) was summed as 0 J, so the line went
    on, understating every later epoch's total."""
    import numpy as np
    import pandas as pd

    from greenscreen_pipeline.report.layout import EnergyUnit

    frame = pd.DataFrame({"epoch": [0, 1, 2], "loss": [1.0, 0.5, 0.4],
                          "energy_j": [10.0, float("nan"), 12.0]})
    fig = plots.curves({"000": frame}, EnergyUnit(30.0))
    summed = fig.axes[3].get_lines()[0].get_ydata()
    assert summed[0] == 10.0 and np.isnan(summed[1]) and np.isnan(summed[2])


def test_the_interval_is_in_the_legend_when_only_a_later_group_has_one():
    """Only the first group could name the bars: where its runs had no interval (an
    estimate) and the second group's had, the legend lost the interval's entry."""
    import pandas as pd

    from greenscreen_pipeline.report.errorbars import ENERGY_BARS
    from greenscreen_pipeline.report.layout import EnergyUnit

    runs = pd.DataFrame({"resnet_shortcuts": [False, False, True, True],
                         "lr": [0.01, 0.05, 0.01, 0.05], "energy_j": [10.0, 12.0, 11.0, 13.0],
                         "energy_err_j": [float("nan"), float("nan"), 0.5, 0.5]})
    fig = plots.energy_against(runs, "lr", EnergyUnit(13.0))
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend.count(ENERGY_BARS) == 1


def test_a_method_setting_s_test_says_how_many_of_its_method_s_runs_it_read():
    """The runs column showed "ranked runs" and lost the count the test read."""
    from reportlab.platypus import KeepTogether, Table

    from greenscreen_pipeline.report import details

    row = {"factor": "rank_fraction", "partial_eta2": 0.4, "p_holm": 0.01, "kw_p": 0.02,
           "rf_importance": float("nan"), "within": "ranked runs", "n": 12}
    story = details.relevance_tables({"relevance": {"energy_j": {
        "table": [row], "method": "ANOVA", "rf_cv_r2": 0.5, "label": "energy"}}})
    flowables = [f for item in story
                 for f in (item._content if isinstance(item, KeepTogether) else [item])]
    cells = [c.text for t in flowables if isinstance(t, Table)
             for r in t._cellvalues for c in r]
    assert "12 ranked runs" in cells


def test_a_log_energy_axis_has_a_few_readable_labels_over_any_span():
    """1-2-5 per decade gave no label over 12 decades, ~25 overprinted ones over 8 and one
    ("100") over 74 to 110 J."""
    plt = plots._plt()
    for low, high in [(1e-3, 1e9), (1e-3, 1e5), (74.0, 110.0), (1.0, 500.0)]:
        fig, ax = plt.subplots()
        ax.scatter([low, high], [0, 1])
        ax.set_xscale("log")
        plots.plain_ticks(ax.xaxis)
        fig.canvas.draw()
        left, right = ax.get_xlim()
        shown = [t for t in ax.get_xticks() if left <= t <= right]
        assert 3 <= len(shown) <= 10, (low, high, shown)
        plt.close(fig)


def test_one_epoch_s_panels_have_an_integer_epoch_axis():
    """A 1-epoch sweep's panels printed "0.945 0.960 ... 1.050" on top of each other."""
    import pandas as pd

    from greenscreen_pipeline.report.layout import EnergyUnit

    fig = plots.curves({"000": pd.DataFrame({"epoch": [0], "loss": [0.5], "energy_j": [1.0],
                                             "power_w": [10.0]})}, EnergyUnit(1.0))
    for ax in fig.axes:
        fig.canvas.draw()
        assert all(float(t).is_integer() for t in ax.get_xticks())


def test_long_names_and_values_are_cut_to_fit_their_figures():
    """A 100-character value ran diagonally across page 3 and squeezed its boxplots; a long
    dimension name ran into the next panel of "what drives energy"."""
    import pandas as pd

    from greenscreen_pipeline.report.layout import EnergyUnit

    name = "a_very_long_dimension_name_of_my_own_to_see_whether_it_overflows"
    ok = pd.DataFrame({name: ["Ωμέγα-значение-" * 7, "short"] * 3,
                       "energy_j": [1.0, 2.0, 1.5, 2.5, 1.2, 2.2]})
    fig = plots.energy_boxes(ok, [name], EnergyUnit(1.0), {name: 0.5})
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert max(map(len, labels)) <= 16 and "short" in labels
    assert len(fig.axes[0].get_title()) < 60
    bars = plots.importance_bars({"energy_j": {"table": [
        {"factor": name, "partial_eta2": 0.5, "p_holm": 0.01}]}})
    assert all(len(t.get_text()) <= 24 for t in bars.axes[0].get_yticklabels())


def test_characters_no_font_holds_are_written_as_their_code_not_blanks():
    """CJK values printed as blank boxes: "日本語" and "一二三" read alike."""
    from greenscreen_pipeline.report.layout import escaped

    said = escaped("tag 日本語 Ωμέγα & <b>")
    assert said.startswith("tag \\u65e5\\u672c\\u8a9e ") and "Ωμέγα</font>" in said
    assert said.endswith("&amp; &lt;b&gt;")
