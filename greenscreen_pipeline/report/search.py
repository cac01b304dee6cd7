"""What the search cost: the energy of the runs by how they ended, the hypervolume of the
front against the sweep's cumulative energy, and, for a pareto search, Optuna's parameter
importance over every run (analysis.json's energy_by_state, proposal_cost,
search_progress and optuna_importance)."""

from __future__ import annotations

import pandas as pd

from ..provenance import estimated, kinds_in_words
from ..search_cost import REFERENCE_MARGIN
from . import plots
from .inputs import ReportInputs
from .layout import WIDTH, figure, number, para, section, table

PROGRESS_CAPTION = "Hypervolume of the Pareto front against the sweep's cumulative energy"


def search_cost(inputs: ReportInputs) -> list:
    """The section, when the sweep has runs in more than one state (stopped by halving,
    failed, ...) or is a pareto search; else nothing."""
    a = inputs.analysis
    by_state = a.get("energy_by_state") or {}
    if len(by_state) < 2 and "optuna_importance" not in a:
        return []
    total = sum(v["energy_j"] or 0.0 for v in by_state.values())
    # each state's provenance as analysis.json words it: "measured + estimated" where mixed
    rows = [["state", "runs", "energy (J)", "share", "provenance"]] + [
        [state, v["runs"], number(v["energy_j"], 1),
         f"{100 * (v['energy_j'] or 0.0) / total:.0f} %" if total else "n/a",
         v.get("provenance") or "not recorded"]
        for state, v in by_state.items()]
    story = section("What the search cost", table(rows, [0.2, 0.1, 0.2, 0.15, 0.35]),
                    *proposing(a))
    return story + progress(inputs) + importance(a)


def proposing(a: dict) -> list:
    """A sentence on what proposing the batches cost, an estimate kept out of the table."""
    cost = a.get("proposal_cost")
    if not cost:
        return []
    return [para(f"Proposing the {cost['batches']} batches took {cost['cpu_s']:.1f} CPU "
                 f"seconds, about {cost['energy_j']:.1f} J ({cost['provenance']}: an "
                 "estimate of the proposing process's own work, not added into the runs' "
                 "energy above).", "Italic")]


def progress(inputs: ReportInputs) -> list:
    """The hypervolume against the cumulative energy, once two runs have been spent."""
    rows = inputs.analysis.get("search_progress") or []
    if len(rows) < 2 or not any(r["hypervolume"] for r in rows):
        return []
    label = inputs.objective.label
    return section(PROGRESS_CAPTION, figure(plots.search_progress(
        rows, inputs.unit, label), WIDTH * 0.85), *_mixed(inputs), para(
        f"After each run, in run order (the order the search proposed them): the energy of "
        f"every run so far, stopped and failed runs included, and the area the finished "
        f"runs' front of {label} against energy dominates up to a reference point: the "
        f"worst {inputs.objective.metric} and the highest energy among the finished runs, "
        f"{REFERENCE_MARGIN:.0%} of each range beyond. A flat step is a run that did not "
        "move the front.", "Italic"), level="Heading4")


def _mixed(inputs: ReportInputs) -> list:
    """Where the runs' energy was obtained in more than one way, that the curve adds
    estimates to measurements (a warning above the caption); [] where in one way."""
    runs = inputs.runs
    if runs.empty or "source" not in runs:
        return []
    spent = runs[pd.to_numeric(runs["energy_j"], errors="coerce").notna()]
    if spent["source"].map(estimated).nunique() < 2:  # two meters' figures add up as such
        return []
    ways = kinds_in_words(spent["source"])
    return [para(f"The runs' energy was obtained in {ways}: the cumulative energy below adds "
                 "estimates to measurements and the front places them side by side, so "
                 "neither is a measured figure.", "Italic")] if ways else []


def importance(a: dict) -> list:
    """Optuna's importance table (pareto searches only), with what it is not."""
    entry = a.get("optuna_importance")
    if not entry:
        return []
    name = {"fanova": "fANOVA", "ped_anova": "PED-ANOVA"}.get(entry["evaluator"],
                                                              entry["evaluator"])
    note = para(entry["note"] + ".", "Italic")
    if entry.get("skipped"):
        return section(f"Optuna's parameter importance ({name})",
                       para(f"Not computed: {entry['skipped']}."), note, level="Heading4")
    shares = entry["objective"], entry.get("energy_j") or {}
    rows = [["parameter", "share of the objective's variance", "share of energy's variance"]]
    rows += [[p, number(shares[0][p], 2), number(shares[1].get(p), 2)] for p in shares[0]]
    left = entry.get("energy_left_out")  # energy over the runs of one energy kind only
    kind = [para(f"Energy's shares are over {entry.get('energy_runs')} run(s) only: "
                 + (f"{left['reason']}." if entry.get("energy_j") else
                    f"not computed, {entry.get('energy_skipped')} ({left['reason']})."),
                 "Italic")] if left else []
    return section(f"Optuna's parameter importance ({name}) over all {entry['runs']} done "
                   "runs", table(rows, [0.3, 0.35, 0.35]), note, *kind, para(
                       "Each parameter's share of the variance a random forest fitted to "
                       "every finished run explains (Optuna's fANOVA, seeded). The ANOVA "
                       "under Which parameters matter reads the random start only.",
                       "Italic"), level="Heading4")
