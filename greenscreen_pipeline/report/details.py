"""The pages after the answer: how the runs differ, the ResNet study's views, the runs
that did not finish, and the appendix with the full tables."""

from __future__ import annotations

import pandas as pd
from reportlab.lib.units import cm
from reportlab.platypus import Table

from . import plots
from .inputs import ReportInputs
from .layout import WIDTH, figure, number, para, section, table

RESNET = ("resnet_depth", "resnet_width", "resnet_shortcuts")


def effects(inputs: ReportInputs, target: str = "energy_j") -> dict[str, float]:
    """Partial eta^2 per parameter for `target`, largest first."""
    rows = inputs.analysis["relevance"].get(target, {}).get("table", [])
    ranked = sorted(rows, key=lambda r: -(r["partial_eta2"] or 0))
    return {r["factor"]: r["partial_eta2"] for r in ranked}


def how_runs_differ(inputs: ReportInputs) -> list:
    order = list(effects(inputs))
    if not order or len(inputs.ok) < 2:
        return []
    story = []
    if len(order) >= 2:
        story += section("Every run across its parameters, coloured by energy", figure(
            plots.parallel_coordinates(inputs.ok, order[:8], inputs.unit)),
            para("Parameters left to right by their effect on energy; each line is one "
                 "finished run.", "Italic"))
    story += section("Energy per parameter value, largest effect first", figure(
        plots.energy_boxes(inputs.ok, order[:9], inputs.unit, effects(inputs))))
    return story


def resnet_study(inputs: ReportInputs) -> list:
    """The ResNet depth/width study's views, when the sweep varies its parameters."""
    ok = inputs.ok
    varied = [f for f in RESNET if f in ok and ok[f].astype(str).nunique() > 1]
    if not varied:
        return []
    logs = []
    for _, row in ok.iterrows():
        frame = inputs.logs(row["run"])
        if "val_accuracy" in frame:
            logs.append(frame[["epoch", "val_accuracy"]].assign(
                **{f: row[f] for f in RESNET if f in ok}))
    history = pd.concat(logs, ignore_index=True) if logs else pd.DataFrame()
    cells = []
    for factor in ("resnet_depth", "resnet_width"):
        if factor not in varied:
            continue
        if not history.empty:
            cells.append(figure(plots.by_group_over_epochs(history, factor), WIDTH / 2))
        cells.append(figure(plots.energy_against(ok, factor, inputs.unit), WIDTH / 2))
    if not cells:  # only shortcuts varied
        cells.append(figure(plots.energy_against(ok, "resnet_depth", inputs.unit), WIDTH / 2))
    # One row of two figures per parameter, so that a row can start a page.
    rows = [Table([cells[i:i + 2]], colWidths=[WIDTH / 2] * 2) for i in range(0, len(cells), 2)]
    return section("ResNet depth and width: validation accuracy and energy", *rows, para(
        "Lines: mean over the runs with that value, band: one standard deviation. Energy per "
        "run, with and without shortcuts where both were run.", "Italic"))


def not_finished(inputs: ReportInputs) -> list:
    failed = inputs.analysis.get("failed_or_skipped", [])
    if not failed:
        return []
    rows = [["run", "status", "reason"]] + [[r.get("run"), r.get("status"), r.get("reason")
                                             or "no reason recorded"] for r in failed]
    return section(f"Runs that did not finish ({len(failed)})",
                   table(rows, [1.5 * cm, 2.5 * cm, WIDTH - 4 * cm]))


def short(source) -> str:
    """A source without its parenthesised explanation (page 1 gives it in words)."""
    return str(source).split(" (")[0]


def appendix(inputs: ReportInputs) -> list:
    a, unit = inputs.analysis, inputs.unit
    titles = {"top_accuracy": "Top runs by accuracy", "top_energy": "Lowest energy",
              "top_power": "Lowest mean power (the original's measure)",
              "top_efficiency": "Most efficient: accuracy per kWh"}
    story = section("Appendix: the full tables", para(
        "Every figure the pages above summarise. Energy in " + unit.name + "; the source "
        "column says how each figure was obtained."))
    for key, title in titles.items():
        rows = [["run", "accuracy", f"energy ({unit.name})", "power (W)", "accuracy / kWh",
                 "accuracy / W", "source"]]
        rows += [[r["run"], r["accuracy"], unit(r["energy_j"]), r["power_w"],
                  r["accuracy_per_kwh"], r["accuracy_per_w"], short(r["source"])]
                 for r in a[key]]
        story += section(title, table(rows), level="Heading4")
    story += section("Which parameters matter", *[para(line) for line in a["relevance_summary"]],
                     level="Heading4")
    for target, res in a["relevance"].items():
        if not res["table"]:
            continue
        rows = [["parameter", "partial η²", "p (Holm)", "Kruskal-Wallis p", "RF importance",
                 "runs"]]
        rows += [[r["factor"], r["partial_eta2"], r["p_holm"], r["kw_p"], r["rf_importance"],
                  r.get("within") or r.get("n") or "all"] for r in res["table"]]
        heading = (f"{target}: {res['method']}; random-forest cross-validated R² "
                   f"{number(res['rf_cv_r2'], 2)}")
        story += section(heading, table(rows), level="Heading5")
    sparse = next((r["sparse_levels"] for r in a["relevance"].values() if r["sparse_levels"]),
                  None)
    if sparse:  # the same runs behind every target: said once
        story.append(para("Values with fewer than 5 finished runs (their estimates are "
                          "fragile): " + "; ".join(f"{f}: {', '.join(map(str, v))}"
                                                   for f, v in sparse.items())))
    name = inputs.recommendation.get("run") or inputs.recommendation.get("based_on")
    if name:
        rows = [["parameter", "value"]] + [[k, v] for k, v in sorted(
            inputs.parameters(name).items())]
        story += section(f"Parameters of run {name}", table(rows, [6 * cm, 8 * cm]),
                         level="Heading4")
    return story
