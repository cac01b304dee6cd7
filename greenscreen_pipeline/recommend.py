"""The recommendation's rules: which run (rule "run") or which value of each parameter
(rule "values") to recommend, never outside the floor of the best objective value; and,
for `final`, the runs the rule picks in turn once each pick before is set aside
(`runners_up`). analysis.py applies them to a finished sweep's table of runs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import relevance
from .objective import Objective
from .space import METHOD_DIMENSIONS

FALLBACKS = 2  # runs `final` may try in turn after a recommendation that diverges there


def best_value(ok: pd.DataFrame, objective: Objective) -> float:
    return float(ok["objective"].max() if objective.maximise else ok["objective"].min())


def within_floor(values: pd.Series, best: float, floor: float,
                 objective: Objective) -> pd.Series:
    """Whether each value is at most `floor` worse than `best`: below it when maximised,
    above it when minimised."""
    return values >= best - floor if objective.maximise else values <= best + floor


def recommend(ok: pd.DataFrame, floor: float, factors: list[str],
              objective: Objective | None = None) -> dict | None:
    """Lowest energy among runs within `floor` of the best objective value, with reasons."""
    if ok.empty:
        return None
    objective = objective or Objective()
    best, eligible, pick = _pick(ok, floor, objective)
    aside = set_aside(eligible, ok)
    # The means compare the runs the rule compares: an estimate is not averaged with
    # measurements (a sweep resumed with a GPU after runs without one).
    kinds = energy_kinds(ok)
    alike = ok[kinds == kinds.loc[pick.name]]  # the kind the pick was compared in
    why = {}
    for f in factors:
        mine = alike[alike[f].astype(str) == str(pick[f])]["energy_j"].mean()
        rest = alike[alike[f].astype(str) != str(pick[f])]["energy_j"].mean()
        why[f] = {"value": _plain(pick[f]), "runs_with_value": int((ok[f].astype(str) == str(
            pick[f])).sum()), "mean_energy_j_with": _plain(mine),
            "mean_energy_j_others": _plain(rest)}
    left_out = sorted(set(ok["run"]) - set(alike["run"]))
    return {"rule": "run", "run": pick["run"], "objective": float(pick["objective"]),
            "energy_j": float(pick["energy_j"]), "best_objective": best,
            **_floor(floor), "eligible_runs": eligible["run"].tolist(),
            "parameters": {f: _plain(pick[f]) for f in factors if f in pick},
            "explanation": why,
            **({"explanation_left_out": left_out} if left_out else {}),
            **_aside_record(eligible, aside),
            "next": runners_up(ok.drop(pick.name), floor, objective, factors, pick)}


def _pick(ok: pd.DataFrame, floor: float, objective: Objective) -> tuple:
    """The rule: the best value, the runs within `floor` of it, the cheapest of them (of
    one energy kind, where their energy was obtained in more than one way: `comparable`)."""
    best = best_value(ok, objective)
    eligible = ok[within_floor(ok["objective"], best, floor, objective)]
    cheapest = comparable(eligible, ok)
    return best, eligible, cheapest.loc[cheapest["energy_j"].idxmin()]


def energy_kinds(runs: pd.DataFrame) -> pd.Series:
    """How each run's energy was obtained (`provenance.energy_kind` of its `source`:
    "measured:nvml-counter + measured:rapl", "estimated:cpu-time", "none")."""
    from .provenance import energy_kind

    if "source" not in runs:
        return pd.Series("none", index=runs.index)
    return runs["source"].map(energy_kind)


def compared_kind(eligible: pd.DataFrame, among: pd.DataFrame | None = None) -> str | None:
    """The one energy kind whose runs the rule compares where the eligible runs' energy
    was obtained in more than one way; None where it was obtained one way. Chosen by
    `relevance.chosen_energy_kind`, the rule of every figure over several runs (measured
    first, then the kind most runs share), over the runs of `among` (the sweep's finished
    runs: the kind the rankings compare) whose kind some eligible run has."""
    kinds = energy_kinds(eligible)
    if kinds.nunique() < 2:
        return None
    pool = kinds if among is None else energy_kinds(among)
    return relevance.chosen_energy_kind(pool[pool.isin(set(kinds))])


def comparable(eligible: pd.DataFrame, among: pd.DataFrame | None = None) -> pd.DataFrame:
    """The runs whose energies the rule compares: all of them, or those of one energy kind
    (`compared_kind`) where they were obtained otherwise: an estimate is never compared
    with a measurement (a CPU-time estimate of a GPU run would win on a figure that leaves
    the GPU out), nor a GPU alone with a GPU and its CPU."""
    kind = compared_kind(eligible, among)
    return eligible if kind is None else eligible[energy_kinds(eligible) == kind]


def set_aside(eligible: pd.DataFrame, among: pd.DataFrame | None = None) -> list[str]:
    """The eligible runs `comparable` leaves out: their energy obtained otherwise."""
    return sorted(set(eligible["run"]) - set(comparable(eligible, among)["run"]))


def _aside_record(runs: pd.DataFrame, aside: "list[str] | set[str]") -> dict:
    """The recommendation's words on the runs it set aside: which, how each one's energy
    was obtained, and the kind it compared, that of the runs of `runs` not set aside
    (analysis.recommendation_lines says them)."""
    if not aside:
        return {}
    kinds = energy_kinds(runs).set_axis(runs["run"])
    kept = set(kinds[~kinds.index.isin(list(aside))])
    return {"set_aside": sorted(aside),
            "compared_kind": kept.pop() if len(kept) == 1 else None,
            "set_aside_kinds": {run: str(kinds.get(run, "none")) for run in sorted(aside)}}


def runners_up(rest: pd.DataFrame, floor: float, objective: Objective,
               factors: list[str] | None = None, first: pd.Series | None = None,
               n: int = FALLBACKS) -> list:
    """The runs the rule picks in turn once each pick before is set aside: what `final`
    trains instead where the recommendation diverges at final_epochs (final.py). A run
    whose `factors` are those of an earlier pick (`first`, the recommendation, or a
    runner-up) is set aside unpicked: the same configuration would diverge again."""
    out = []
    seen = [] if first is None else [_key(first, factors)]
    while len(out) < n and not rest.empty and rest["energy_j"].notna().any():
        pick = _pick(rest, floor, objective)[2]
        rest = rest.drop(pick.name)
        if _key(pick, factors) in seen:
            continue
        seen.append(_key(pick, factors))
        out.append(pick["run"])
    return out


def _key(row: pd.Series, factors: list[str] | None) -> tuple:
    """A run's configuration as far as the table tells it: its varying parameters."""
    if factors is None:  # not told: every run its own
        return (row["run"],)
    return tuple(str(row[f]) for f in factors if f in row)


def _floor(floor: float) -> dict:
    """The floor under both names: the objective's, and the setting's (accuracy_floor)."""
    return {"objective_floor": floor, "accuracy_floor": floor}


def recommend_values(ok: pd.DataFrame, floor: float, factors: list[str],
                     objective: Objective | None = None,
                     continuous: relevance.Continuous = None) -> dict | None:
    """The original pipeline's rule: each parameter's best value, judged on its own.

    For every varying parameter, the values whose mean objective is within `floor` of
    the best value's are eligible, and the one with the lowest mean energy wins. A
    method's own setting is judged on that method's runs only. The combination may
    be one no run tried: then only the final run measures it. A range (`continuous`:
    factor -> log scale) is judged in up to four bins of about equal runs (`_bins`), and
    the chosen bin names the value of its middle run; one whose runs hold four values or
    fewer (a grid range: integers, or a step) is judged per value, as a list is. Energies
    are compared as the run rule compares them (`comparable`): where the eligible values'
    runs mix energy kinds, every value's mean energy is of its runs of the kind compared,
    and the matching run is the cheapest of that kind; the runs left out are `set_aside`.
    """
    if ok.empty:
        return None
    objective = objective or Objective()
    chosen, evidence, aside = {}, {}, set()
    for f in factors:
        runs = ok[ok["method"] == METHOD_DIMENSIONS[f]] if f in METHOD_DIMENSIONS else ok
        if runs.empty or runs[f].astype(str).nunique() < 2:
            continue
        groups = (_bins(runs, f, continuous[f]) if f in (continuous or {})
                  and pd.to_numeric(runs[f], errors="coerce").nunique() > MAX_BINS
                  else _levels(runs, f))
        levels, left = _judged(runs, groups, floor, objective)
        chosen[f], evidence[f] = next(lv["value"] for lv in levels if lv["chosen"]), levels
        aside |= left
    method = chosen.get("method", ok["method"].iloc[0] if "method" in ok else None)
    used = {f: v for f, v in chosen.items() if METHOD_DIMENSIONS.get(f, method) == method}
    mask = np.ones(len(ok), bool)
    for f, v in used.items():  # column by column: iterrows cost seconds at 5000 runs
        mask &= (ok[f].astype(str) == str(v)).to_numpy()
    same = comparable(ok[mask], ok)  # never an estimate picked over a measured run
    aside |= set(set_aside(ok[mask], ok))
    match = same.loc[same["energy_j"].idxmin()] if not same.empty else None
    best_run = ok["objective"].idxmax() if objective.maximise else ok["objective"].idxmin()
    return {"rule": "values", "run": None if match is None else match["run"],
            "objective": None if match is None else float(match["objective"]),
            "energy_j": None if match is None else float(match["energy_j"]),
            "best_objective": best_value(ok, objective), **_floor(floor),
            "parameters": chosen, "based_on": ok.loc[best_run, "run"],
            "evidence": evidence,
            **_aside_record(ok, aside)}


def _judged(runs: pd.DataFrame, groups: list[tuple[dict, pd.Index]], floor: float,
            objective: Objective) -> tuple[list[dict], set[str]]:
    """A factor's levels with their mean energy, the one chosen marked, and the runs whose
    estimated energy was set aside: where `comparable` keeps only the eligible levels'
    measured runs, every level's mean energy is over its measured runs (`energy_runs` of them, where
    some were set aside), so that no mean of estimates is weighed against a mean of
    measurements."""
    levels = [level for level, _ in groups]
    means = pd.Series([level["mean_objective"] for level in levels])
    best = float(means.max() if objective.maximise else means.min())
    eligible = within_floor(means, best, floor, objective).to_numpy()
    inside = runs.loc[np.concatenate([rows for (_, rows), e in zip(groups, eligible) if e])]
    kind = compared_kind(inside, runs)  # set aside in every level once the eligible ones mix kinds
    other = energy_kinds(runs) != kind if kind else pd.Series(False, index=runs.index)
    left = set(runs.loc[other, "run"])
    energy = runs["energy_j"].where(~other) if left else runs["energy_j"]
    for level, rows in groups:
        level["mean_energy_j"] = float(energy[rows].mean())  # NaN: only other kinds here
        if left:  # the mean is of fewer runs than the level's
            level["energy_runs"] = int(energy[rows].notna().sum())
    pick = min((lv for lv, e in zip(levels, eligible) if e and not np.isnan(lv["mean_energy_j"])),
               key=lambda lv: lv["mean_energy_j"])
    pick["chosen"] = True
    return levels, left


def _levels(runs: pd.DataFrame, factor: str) -> list[tuple[dict, pd.Index]]:
    """Per value of `factor`: how many runs and their mean objective, with its runs' rows
    (the mean energy is `_judged`'s)."""
    out = []
    for _, group in runs.groupby(runs[factor].astype(str), sort=True):
        out.append(({"value": _plain(group[factor].iloc[0]), "runs": len(group),
                     "mean_objective": float(group["objective"].mean()),
                     "mean_energy_j": float("nan"), "chosen": False}, group.index))
    return out


MAX_BINS = 4  # a range whose runs hold this many values or fewer is judged per value


def _bins(runs: pd.DataFrame, factor: str, log: bool) -> list[tuple[dict, pd.Index]]:
    """A range's runs in up to four bins of about equal runs (quantiles of its value, or
    of its log), each as a level: the value of its middle run, and the span it covers.
    Bins are cut between values, never inside one: runs of one value (a grid range's, or
    repeats') share their bin, so no value is credited to two bins by the runs' order."""
    values = pd.to_numeric(runs[factor], errors="coerce")
    runs, values = runs[values.notna()], values[values.notna()]
    scale = np.log(values.where(values > 0)) if log else values
    bins = pd.qcut(scale, min(MAX_BINS, max(1, len(runs) // 3)), labels=False,
                   duplicates="drop")
    out = []
    for _, group in runs.groupby(bins.to_numpy(), sort=True):
        ordered = group.assign(_v=values[group.index]).sort_values("_v", kind="stable")
        middle = ordered.iloc[(len(ordered) - 1) // 2]
        out.append(({"value": _plain(middle[factor]), "runs": len(group),
                     "span": [_plain(ordered[factor].iloc[0]), _plain(ordered[factor].iloc[-1])],
                     "mean_objective": float(group["objective"].mean()),
                     "mean_energy_j": float("nan"), "chosen": False}, group.index))
    return out


def _plain(value):
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value
