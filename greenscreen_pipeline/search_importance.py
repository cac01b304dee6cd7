"""Optuna's parameter importance over every finished run of a pareto search.

The relevance ANOVA (relevance.py) reads a pareto search's random start only: the sampler
chose the runs after it, so they are not a random sample of the space. This module gives
all of them a say in Optuna's own terms, labelled as such: an in-memory study is rebuilt
from the done runs' recorded configurations (search/encoding.py's positions, as the
proposals saw them) with their objective and energy, and Optuna's fANOVA evaluator
(`optuna.importance.FanovaImportanceEvaluator`, seeded) ranks the parameters once per
target.

Why fANOVA rather than PED-ANOVA: fANOVA decomposes the variance of a random forest
fitted to every run, the same question the ANOVA of the random start answers (which
parameter moves the objective, which moves energy), and it is defined from a handful of
runs on; it needs scikit-learn, which the pipeline installs already, and its seed makes
it deterministic. PED-ANOVA asks something else (what sets the best 10 % of runs apart, for
a target to minimise), which needs ten runs before its top quantile holds one.

Only for `search: pareto` (sweep.json's search block): a random sweep's ANOVA already reads
every run, so its analysis.json gains nothing here.

Energy is ranked over the runs of one energy kind (relevance.one_energy_kind: measured
first), as the ANOVA's energy is: over measured and estimated runs alike, a parameter that
only parts them would "drive energy". The runs it leaves out are `energy_left_out`; the
objective is ranked over every done run.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from .objective import Objective
from .runfolder import RunFolder, Unreadable, read_json
from .search import encoding
from .search_cost import searched_by

EVALUATOR = "fanova"
SEED = 0
MIN_RUNS = 4
NOTE = "Optuna's importance over all runs, which the sampler chose: not a random sample"


def of_sweep(sweep_dir: "str | Path", ok: pd.DataFrame, objective: Objective) -> dict:
    """`{"optuna_importance": ...}` for a pareto search, `{}` for any other.

    Args:
        sweep_dir: The sweep folder (its sweep.json names the search and the space).
        ok: The done runs with an objective value and an energy figure (analysis's rows).
        objective: The sweep's objective.

    Returns:
        {} when the sweep is not a pareto search; else one key, optuna_importance:
        {"evaluator", "runs", "objective": {parameter: share}, "energy_j": {...}, "note"},
        or {"evaluator", "skipped": why, "note"} when there is too little to rank.
    """
    if searched_by(sweep_dir) != "pareto":
        return {}
    from .relevance import one_energy_kind

    space = (read_json(Path(sweep_dir) / "sweep.json") or {}).get("space") or {}
    same, left = one_energy_kind(ok)
    runs = configurations(ok)
    entry = importance(runs, space, objective,
                       configurations(same) if left else None)
    return {"optuna_importance": {**entry, "energy_left_out": left} if left else entry}


def configurations(ok: pd.DataFrame) -> list[tuple[dict, float, float]]:
    """(configuration, objective, energy) of each run of `ok` in run order, the
    configuration as its folder records it (configuration.json, else parameters.yaml); a
    folder that cannot be read is left out."""
    out = []
    for _, row in ok.iterrows():
        folder = RunFolder(Path(row["path"]))
        try:
            config = folder.configuration() or folder.parameters()
        except Unreadable:
            continue
        out.append((config, float(row["objective"]), float(row["energy_j"])))
    return out


def importance(runs: list[tuple[dict, float, float]], space: dict[str, Any],
               objective: Objective,
               energy_runs: list[tuple[dict, float, float]] | None = None) -> dict:
    """fANOVA's importance of each varying dimension for the objective and for energy.

    Args:
        runs: (configuration, objective, energy) of each done run.
        space: The sweep's space (dimension -> its values), as sweep.json records it.
        objective: The sweep's objective (the study's first direction).
        energy_runs: The runs energy is ranked over, where not all of `runs`: those of
            one energy kind (`of_sweep`).

    Returns:
        The optuna_importance entry (`of_sweep`); shares sum to 1 per target. Where
        energy is ranked over other runs than the objective, `energy_runs` counts them,
        and `energy_j` is {} with `energy_skipped` (why) where they are too few.
    """
    head = {"evaluator": EVALUATOR}
    dims = encoding.dimensions(space)
    if not dims:
        return {**head, "skipped": "no dimension of the space varies", "note": NOTE}
    told = _told(runs, dims)
    if len(told) < MIN_RUNS:
        return {**head, "skipped": f"{len(told)} finished run(s) in the space; fANOVA needs "
                                   f"at least {MIN_RUNS}", "note": NOTE}
    out = {**head, "runs": len(told), "objective": _shares(told, dims, objective, 0)}
    if energy_runs is None:
        return {**out, "energy_j": _shares(told, dims, objective, 1), "note": NOTE}
    alike = _told(energy_runs, dims)
    out["energy_runs"] = len(alike)
    if len(alike) < MIN_RUNS:
        return {**out, "energy_j": {}, "energy_skipped": f"{len(alike)} finished run(s) of "
                f"one energy kind in the space; fANOVA needs at least {MIN_RUNS}",
                "note": NOTE}
    return {**out, "energy_j": _shares(alike, dims, objective, 1), "note": NOTE}


def _told(runs: list[tuple[dict, float, float]], dims: list) -> list[tuple[dict, float, float]]:
    """The runs in the space with a finite objective and energy, as the study takes them."""
    return [(params, value, energy) for config, value, energy in runs
            if (params := encoding.to_params(config, dims)) is not None
            and math.isfinite(value) and math.isfinite(energy)]


def _shares(told: list[tuple[dict, float, float]], dims: list, objective: Objective,
            k: int) -> dict[str, float]:
    """Target k's (0 the objective, 1 energy) shares over the runs `told`."""
    values = [t[1 + k] for t in told]
    if max(values) == min(values):  # nothing to explain: fANOVA would divide by zero
        return {d.name: 0.0 for d in dims}
    return _rank(_study(told, dims, objective), k)


def _study(told: list[tuple[dict, float, float]], dims: list, objective: Objective):
    """An in-memory two-objective study of the told runs, every one COMPLETE."""
    import optuna
    from optuna.trial import TrialState, create_trial

    dists = encoding.distributions(dims)
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(directions=[
            "maximize" if objective.maximise else "minimize", "minimize"])
        for params, value, energy in told:
            study.add_trial(create_trial(state=TrialState.COMPLETE, values=[value, energy],
                                         params=params, distributions=dists))
    finally:
        optuna.logging.set_verbosity(level)
    return study


def _rank(study, k: int) -> dict[str, float]:
    """Parameter -> its share of target k's variance, largest first (ties by name)."""
    import optuna

    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=SEED)
    with warnings.catch_warnings():  # Optuna marks its importance API experimental
        warnings.simplefilter("ignore")
        shares = optuna.importance.get_param_importances(
            study, evaluator=evaluator, target=lambda trial: trial.values[k])
    ranked = sorted(((name, float(v)) for name, v in shares.items()),
                    key=lambda kv: (-kv[1], kv[0]))
    return dict(ranked)


def summary_line(result: dict) -> list[str]:
    """The analysis summary's line for optuna_importance, or none."""
    entry = result.get("optuna_importance")
    if not entry:
        return []
    if entry.get("skipped"):
        return [f"Optuna's importance ({entry['evaluator']}): skipped, {entry['skipped']}"]

    def top(target: str) -> str:
        return ", ".join(f"{name} {share:.2f}" for name, share in
                         list(entry[target].items())[:3])
    energy = (f"energy: {top('energy_j')}" if entry.get("energy_j") else
              f"energy: skipped, {entry.get('energy_skipped')}")
    left = entry.get("energy_left_out")
    if left:  # energy over the runs of one kind: which and why, as the ANOVA says it
        energy += f" (over {entry['energy_runs']} run(s): {left['reason']})"
    return [f"Optuna's importance ({entry['evaluator']}, all {entry['runs']} done runs, "
            f"not a random sample): objective: {top('objective')}; {energy}"]
