"""The pages after the answer: the recommendation's runs next to the baseline, which split
the runs were evaluated on where it was not a test split, how the runs differ, the ResNet
study's views, the runs that did not finish or were not ranked, and the appendix with the
full tables (what the search cost is in search.py)."""

from __future__ import annotations

import pandas as pd
from reportlab.platypus import Table

from ..analysis import TOP_K, component_of
from ..comparison import SIDES, stand_in
from ..objective import Objective
from ..provenance import estimated
from ..wording import some
from . import plots
from .inputs import BASELINE, ReportInputs
from .layout import WIDTH, EnergyUnit, figure, number, p_value, para, section, setting, table

RESNET = ("resnet_depth", "resnet_width", "resnet_shortcuts")
# Longer lists become counts or groups, and the CSVs in the sweep folder hold all.
MAX_LISTED = 20


def effects(inputs: ReportInputs, target: str = "energy_j") -> dict[str, float]:
    """Partial eta^2 per parameter for `target`, largest first."""
    rows = inputs.analysis["relevance"].get(target, {}).get("table", [])
    ranked = sorted(rows, key=lambda r: -(r["partial_eta2"] or 0))
    return {r["factor"]: r["partial_eta2"] for r in ranked}


def how_runs_differ(inputs: ReportInputs) -> list:
    """Which split was evaluated (where it was not a test split), then every run across its
    parameters, the energy per parameter value and the ranges."""
    return evaluated_split(inputs) + _differences(inputs)


def evaluated_split(inputs: ReportInputs) -> list:
    """Says which runs were evaluated on the validation split (results.json's evaluated_on:
    your dataset function gave no test split), since their "test" figures are then the
    validation split's; nothing where every run had a test split."""
    names = list(inputs.ok["run"]) if not inputs.ok.empty else []
    on_validation = [n for n in names if _on_validation(inputs.results(n))]
    final = inputs.final is not None and _on_validation(inputs.final.results)
    if not on_validation and not final:
        return []
    rows = inputs.ok[inputs.ok["run"].isin(on_validation)]
    datasets = sorted({str(d) for d in rows.get("dataset", [])}) or ["your dataset function"]
    which = ([f"{len(on_validation)} of the {len(names)} finished runs "
              f"({some(on_validation)})"] if on_validation else []) + (
        ["the final run"] if final else [])
    figures = inputs.objective.metric + (  # a regression has no confusion matrix
        ", the confusion matrix" if inputs.objective.classification else "")
    return section("Evaluated on the validation split", para(
        f"{' and '.join(which).capitalize()} {'were' if on_validation else 'was'} evaluated "
        "on the validation split: "
        f"{', '.join(datasets)} returned no test split. Their test figures here (the "
        f"{figures}) are the validation split's, the "
        "same split the sweep ranks and chooses runs by, so they are no independent "
        "estimate: expect them to be somewhat optimistic. results.json says "
        "evaluated_on: validation."))


def _on_validation(results) -> bool:
    return results is not None and results.evaluated_on == "validation"


def _differences(inputs: ReportInputs) -> list:
    order, spans = list(effects(inputs)), inputs.analysis.get("ranges") or {}
    if not order or len(inputs.ok) < 2:
        return []
    story, runs = [], len(inputs.ok)
    listed = [f for f in order if f not in spans]
    if len(order) >= 2:
        how = ("each line is one finished run" if runs < plots.SPREAD_FROM else
               f"each line is one of the {runs} finished runs, drawn at "
               f"{plots.line_alpha(runs):.0%} opacity so that where many go the colour "
               "builds up; the runs sharing a value are spread over a band around it, "
               "the cheapest at the bottom")
        story += section("Every run across its parameters, coloured by energy", figure(
            plots.parallel_coordinates(inputs.ok, order[:8], inputs.unit, spans)),
            para(f"Parameters left to right by their effect on energy; {how}"
                 + ("; a range's axis runs from its min to its max" if spans else "") + ".",
                 "Italic"))
    if listed:
        story += section("Energy per parameter value, largest effect first", figure(
            plots.energy_boxes(inputs.ok, listed[:9], inputs.unit, effects(inputs))), para(
            "Each box: the middle half of the runs with that value, the line their median; "
            "whiskers reach 1.5 box lengths, dots are the runs beyond. Every run is in "
            "runs.csv.", "Italic"))
    return story + ranges_against(inputs, [f for f in order if f in spans])


def ranges_against(inputs: ReportInputs, factors: list[str]) -> list:
    """The objective and energy against each range of the space, largest effect first."""
    spans, eta = inputs.analysis.get("ranges") or {}, effects(inputs)
    story = []
    for f in factors:
        story += section(f"{inputs.objective.label} and energy against {f} "
                         f"(range, η² {eta.get(f) or 0:.2f} on energy)", figure(
            plots.against_range(inputs.ok, f, spans[f], inputs.unit, inputs.objective)),
            level="Heading4")
    if story:
        story.append(para("A range's values are numbers, so each run is a dot at its "
                          "value, on a log axis for a log range; the relevance analysis "
                          "reads it as a number (a linear term, on its log for a log range).",
                          "Italic"))
    return story


def resnet_study(inputs: ReportInputs) -> list:
    """The ResNet depth/width study's views, when the sweep varies its parameters."""
    ok, column = inputs.ok, inputs.objective.name
    varied = [f for f in RESNET if f in ok and ok[f].astype(str).nunique() > 1]
    if not varied:
        return []
    logs = []
    for _, row in ok.iterrows():
        frame = inputs.logs(row["run"])
        if column in frame:
            logs.append(frame[["epoch", column]].assign(
                **{f: row[f] for f in RESNET if f in ok}))
    history = pd.concat(logs, ignore_index=True) if logs else pd.DataFrame()
    cells = []
    for factor in ("resnet_depth", "resnet_width"):
        if factor not in varied:
            continue
        if not history.empty:
            cells.append(figure(plots.by_group_over_epochs(history, factor, column),
                                WIDTH / 2))
        cells.append(figure(plots.energy_against(ok, factor, inputs.unit), WIDTH / 2))
    if not cells:  # only shortcuts varied
        cells.append(figure(plots.energy_against(ok, "resnet_depth", inputs.unit), WIDTH / 2))
    # One row of two figures per parameter, so that a row can start a page.
    rows = [Table([cells[i:i + 2]], colWidths=[WIDTH / 2] * 2) for i in range(0, len(cells), 2)]
    return section(f"ResNet depth and width: validation {inputs.objective.metric} and energy",
                   *rows, para(
        "Lines: mean over the runs with that value, band: one standard deviation. Energy per "
        "run, with and without shortcuts where both were run.", "Italic"))


def not_finished(inputs: ReportInputs) -> list:
    """Every run that did not finish, one row each; past MAX_LISTED, one row per status and
    reason with its count (a cluster's 300 timeouts are one story), runs.csv for the rest."""
    failed = inputs.analysis.get("failed_or_skipped", [])
    return _listed(inputs, f"Runs that did not finish ({len(failed)})", failed)


def not_ranked(inputs: ReportInputs) -> list:
    """Every run that finished but could not be ranked (analysis.json's left_out: no
    energy figure, none of --component's, no objective), with its reason: it is counted
    as finished, so it is named, never lost between "finished" and "ranked"."""
    done = inputs.unranked()
    return _listed(inputs, f"Runs that finished but are not ranked ({len(done)})", done)


def _listed(inputs: ReportInputs, title: str, entries: list[dict]) -> list:
    """A section of runs with their status and reason, one row each up to MAX_LISTED,
    else grouped by status and reason."""
    if not entries:
        return []
    if len(entries) <= MAX_LISTED:
        rows = [["run", "status", "reason"]] + [[r.get("run"), r.get("status"), _reason(r)]
                                                for r in entries]
        return section(title, table(rows, [0.1, 0.15, 0.75]))
    groups: dict[tuple, list] = {}
    for r in entries:
        groups.setdefault((r.get("status"), _reason(r)), []).append(str(r.get("run")))
    ranked = sorted(groups.items(), key=lambda kv: -len(kv[1]))
    rows = [["runs", "status", "reason"]] + [
        [f"{len(runs)}: {', '.join(runs[:5])}" + (", ..." if len(runs) > 5 else ""), status,
         reason] for (status, reason), runs in ranked[:MAX_LISTED]]
    note = para(f"Grouped by status and reason ({len(groups)} groups"
                + (f", the {MAX_LISTED} largest shown" if len(groups) > MAX_LISTED else "")
                + f"); every run with its reason is in {inputs.path / 'runs.csv'}.", "Italic")
    return section(title, table(rows, [0.22, 0.13, 0.65]), note)


def _reason(row: dict) -> str:
    reason = row.get("reason")
    return reason if isinstance(reason, str) and reason else "no reason recorded"


def short(source) -> str:
    """A source without its parenthesised explanation (page 1 gives it in words)."""
    return str(source).split(" (")[0]


CSVS = ("runs.csv", "top_objective.csv", "top_energy.csv", "top_power.csv",
        "top_efficiency.csv", "pareto.csv", "relevance.csv")


def appendix(inputs: ReportInputs) -> list:
    a, unit = inputs.analysis, inputs.unit
    csvs = [name for name in CSVS if name.removesuffix(".csv") in a or name in (
        "runs.csv", "relevance.csv")]
    story = section("Appendix: the full tables", para(
        f"The top {TOP_K} runs of each ranking and every parameter's tests. Energy in "
        f"{unit.name}; the source column says how each figure was obtained. Every run, "
        f"ranking and test is in the CSV files of the sweep folder {inputs.path}: "
        + ", ".join(csvs) + "."))
    story += rankings(inputs)
    story += section("Which parameters matter", *[para(line) for line in a["relevance_summary"]],
                     level="Heading4")
    story += relevance_tables(a)
    sparse = next((r["sparse_levels"] for r in a["relevance"].values() if r["sparse_levels"]),
                  None)
    if sparse:  # the same runs behind every target: said once
        story.append(para("Values with fewer than 5 finished runs (their estimates are "
                          "fragile): " + "; ".join(f"{f}: {some(v)}" for f, v in sparse.items())))
    name = inputs.recommendation.get("run") or inputs.recommendation.get("based_on")
    if name:
        rows = [["parameter", "value"]] + [[k, setting(v)] for k, v in sorted(
            inputs.parameters(name).items())]
        story += section(f"Parameters of run {name}", table(rows, [0.4, 0.6]),
                         level="Heading4")
    return story


def rankings(inputs: ReportInputs) -> list:
    """The top rows of each ranking (analysis.json keeps TOP_K; the CSVs keep them too).
    Objective per kWh and per W only where analysis.json has them (a maximised objective
    that is never negative); otherwise a sentence says why not."""
    a, unit, story = inputs.analysis, inputs.unit, []
    metric, label = inputs.objective.metric, inputs.objective.label
    titles = {"top_objective": f"Top runs by {label}", "top_energy": "Lowest energy",
              "top_power": "Lowest mean power (the original's measure)",
              "top_efficiency": f"Most efficient: {metric} per kWh"}
    efficient = "top_efficiency" in a
    header = ["run", metric, f"energy ({unit.name})", "power (W)"] + (
        [f"{metric} / kWh", f"{metric} / W"] if efficient else []) + ["source"]
    widths = ([0.09, 0.11, 0.13, 0.11, 0.13, 0.12, 0.31] if efficient else
              [0.12, 0.16, 0.16, 0.14, 0.42])
    for key, title in titles.items():
        if key not in a:
            continue
        rows = [header] + [[r["run"], _sd(r["objective"], r.get("objective_sd")),
                            _sd(unit(r["energy_j"]), unit(r.get("energy_sd"))), r["power_w"]]
                           + ([r["objective_per_kwh"], r["objective_per_w"]] if efficient
                              else []) + [short(r["source"])] for r in a[key][:TOP_K]]
        story += section(title, table(rows, widths), level="Heading4")
    if (a.get("repeats") or {}).get("repeats", 1) > 1:  # each row is a configuration
        story.append(para(f"Each row is one configuration: the mean over its finished "
                          f"repeats (up to {a['repeats']['repeats']}, settings.repeats), ± "
                          "their sample SD where more than one finished; the run named is "
                          "its first finished repeat."))
    if a.get("energy_rankings_left_out"):
        story.append(para("Lowest energy, lowest mean power and the efficiency rankings are "
                          "computed "
                          f"{a['energy_rankings_left_out']}."))
    if not efficient and a.get("efficiency_left_out"):
        story.append(para(f"No ranking by {metric} per kWh: {a['efficiency_left_out']}."))
    return story


def _sd(mean: float, sd: float | None):
    """"0.912 ± 0.004" where a mean has a spread (its repeats), else the mean itself."""
    if sd is None or pd.isna(sd):
        return mean
    return f"{number(mean)} ± {number(sd)}"


def relevance_tables(a: dict) -> list:
    """Each target's tests, p-values with their exponent (8.2e-159), never 163 digits."""
    story = [para(a["relevance_note"], "Italic")] if a.get("relevance_note") else []
    for target, res in a["relevance"].items():
        if not res["table"]:
            continue
        rows = [["parameter", "partial η²", "p (Holm)", "rank test p", "RF importance",
                 "runs"]]
        # An untested factor's p (Holm) cell says why (too few runs per level, ...).
        rows += [[_factor(r), r["partial_eta2"], r.get("untested") or p_value(r["p_holm"]),
                  p_value(r["kw_p"]), r["rf_importance"],
                  _tested_on(r)]
                 for r in res["table"]]
        heading = (f"{res.get('label') or target}: {res['method']}; random-forest out-of-bag R² "
                   f"{number(res['rf_cv_r2'], 2)}; rank test: Kruskal-Wallis, Spearman for a "
                   "range")
        story += section(heading, table(rows, [0.22, 0.12, 0.13, 0.15, 0.14, 0.24]),
                         level="Heading5")
    return story


def _tested_on(row: dict) -> str:
    """The runs a test read: "12 ranked runs" for a method's own setting (its method's
    runs only), else their count, or "all"."""
    if row.get("within"):
        return f"{row['n']} {row['within']}" if row.get("n") else row["within"]
    return row.get("n") or "all"


def _factor(row: dict) -> str:
    """A relevance row's parameter, with how a range was read."""
    kind = row.get("kind") or "values"
    return row["factor"] if kind == "values" else f"{row['factor']} ({kind})"


def evidence(rec: dict, unit, objective: Objective) -> object:
    """The values rule's evidence: each varying parameter's values with their runs, mean
    objective and mean energy, and which value was chosen."""
    rows = [["parameter", "value", "runs", f"mean {objective.metric}",
             f"mean energy ({unit.name})", "chosen"]]
    for factor, levels in rec["evidence"].items():
        rows += [[factor, setting(lv["value"]) + (f" (of {setting(lv['span'][0])} to "
                                                  f"{setting(lv['span'][1])})"
                                                  if lv.get("span") else ""),
                  lv["runs"], lv["mean_objective"],
                  unit(lv["mean_energy_j"]), "yes" if lv["chosen"] else ""] for lv in levels]
    return table(rows, [0.22, 0.2, 0.1, 0.16, 0.2, 0.12])


def _named(role: str, row) -> str:
    """A sweep row's label: "baseline (000)"; with settings.repeats, the row is its
    configuration's mean over its repeats, and says so (its curves are run 000's own)."""
    n = pd.to_numeric(row.get("repeats"), errors="coerce")  # NaN without repeats
    many = pd.notna(n) and n > 1
    return f"{role} ({row['run']}" + (f", mean of {int(n)} repeats)" if many else ")")


def final_section(inputs: ReportInputs) -> list:
    unit, final, rec = inputs.unit, inputs.final, inputs.recommendation
    objective = inputs.objective
    logs = {}
    rows = [["run", objective.metric, f"energy ({unit.name})", "mean power (W)",
             "duration (s)", "epochs"]]
    base = inputs.baseline  # with repeats, its configuration's row: 000 may have failed
    if base is not None:
        role = "baseline" if base["run"] == BASELINE else f"baseline, run {BASELINE}'s " \
            "configuration"
        rows.append([_named(role, base), base["objective"],
                     _energy(unit, base["energy_j"], base.get("source")), base["power_w"],
                     base["duration_s"], len(inputs.logs(base["run"]))])
        logs[f"baseline ({base['run']})"] = inputs.logs(base["run"])
    r = inputs.run(rec["run"]) if rec.get("run") else None
    if r is not None and (base is None or rec["run"] != base["run"]):
        rows.append([_named("recommended", r), r["objective"],
                     _energy(unit, r["energy_j"], r.get("source")), r["power_w"],
                     r["duration_s"], len(inputs.logs(rec["run"]))])
        logs[f"recommended ({rec['run']})"] = inputs.logs(rec["run"])
    if final:
        run = stand_in(inputs.comparison or {})
        label = f"final run ({run}, a fallback)" if run else "final run"
        rows.append([label, final.objective,
                     _energy(unit, final.energy_j, final.summary.source),
                     final.summary.power_avg_w, final.summary.duration_s, final.epochs_trained])
        logs["final run"] = inputs.logs(inputs.final_folder)
    means = seed_means(inputs)
    rows += means
    if (inputs.path / "final" / "baseline-s0").is_dir():
        logs["final baseline (seed 0)"] = inputs.logs("final/baseline-s0")
    story = section("The recommendation next to the baseline",
                    table(rows, [0.24, 0.14, 0.16, 0.16, 0.16, 0.14]))
    part = component_of(inputs.analysis)
    if part and (final or means):  # final rows beside the sweep's: say which energy is which
        story.append(para(f"The sweep's runs: the {part.upper()}'s energy (analyze "
                          "--component); the final runs: their total energy, as final "
                          "measures and compares them.", "Italic"))
    if not final:
        story.append(para("No final run yet: ./greenscreen.sh final trains the recommended "
                          "configuration for settings.final_epochs."))
    logs = {k: v for k, v in logs.items() if not v.empty and "epoch" in v}
    if logs:
        story += section(curves_title(objective), figure(plots.curves(logs, unit, objective)),
                         para("The energy panel adds up each run's epochs (logs.csv): what "
                              "lies between them (set-up, the test split's evaluation) is "
                              "left out, so it ends below the run's energy in the table.",
                              "Italic"), level="Heading4")
    if final and objective.classification and final.results.confusion_matrix:
        story += section("The final run's test predictions: confusion matrix and per-class "
                         "accuracy", figure(plots.confusion(final.results.confusion_matrix),
                                            WIDTH * 0.9), level="Heading4")
    return story


def seed_means(inputs: ReportInputs) -> list[list]:
    """The final runs' means over seeds, a table row per side (comparison.json)."""
    rows = []
    doc = inputs.comparison or {}
    run = stand_in(doc)  # the side of a run standing in for the recommendation
    for side in SIDES:
        part = doc.get(side) or {}
        n = len(part.get("folders") or [])
        if n > 1 or (n and side == "baseline"):
            name = side if side == "baseline" or not run else f"run {run}"
            rows.append([f"final {name}, mean of {n} seed{'s' if n > 1 else ''}",
                         part["objective"]["mean"], _energy(inputs.unit, part["energy_j"][
                             "mean"], part.get("source") or []), None, None, None])
    return rows


def _energy(unit: EnergyUnit, joules, source) -> float | str:
    """An energy cell: the figure, marked "(estimated)" where it is in part an estimate
    (`source`: one provenance or several), as page 1 marks the recommendation's."""
    figure = unit(joules)
    return f"{number(figure)} (estimated)" if estimated(source or "") else figure


def curves_title(objective: Objective) -> str:
    shown = "accuracy" if objective.metric == "accuracy" else f"validation {objective.metric}"
    return f"Loss, {shown}, power and cumulative energy over epochs"
