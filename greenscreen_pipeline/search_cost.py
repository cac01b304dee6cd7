"""What a sweep's search cost, and which runs the relevance analysis may read.

    energy_by_state   energy and runs per final state (done, stopped, failed, ...): what
                      the search spent, stopped runs and failures included
    relevance_runs    the runs an ANOVA may compare: all of a random search's; a pareto
                      search's random start only (the sampler chose the rest, so their
                      values are not a random sample of the space)
    progress          the hypervolume of the done runs' (objective, energy) front against
                      the sweep's cumulative energy, run by run
    proposal_cost     what proposing a pareto search's batches cost (CPU seconds and their
                      estimated energy), apart from the runs' own energy
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .collect import COMPONENTS
from .executors import proposals
from .objective import Objective
from .runfolder import read_json
from .search.front import hypervolume, pareto_mask
from .search.propose import default_startup
from .sweep_total import COMPUTED, UNRECORDED, kind_of, words_of

# How far beyond the worst done run the hypervolume's reference point lies, as a share of
# the done runs' range on each axis.
REFERENCE_MARGIN = 0.01


def energy_by_state(df: pd.DataFrame) -> dict:
    """State -> {"runs": n, "energy_j": their energy over every attempt, "provenance":
    "measured", "estimated", the seed format's COMPUTED, or their mix ("measured +
    estimated"): `sweep_total.words_of`} over every run folder of `df` (collect's rows); a
    run without a figure counts in "runs" only."""
    out = {}
    for state, rows in df.groupby(df["status"].fillna("unknown"), sort=True):
        raw = pd.to_numeric(rows["energy_j"], errors="coerce")
        by_kind: dict[str, float] = {}
        for _, row in rows.iterrows():
            for kind, joules in _by_kind(row).items():
                by_kind[kind] = by_kind.get(kind, 0.0) + joules
        out[str(state)] = {"runs": int(len(rows)),
                           "energy_j": float(raw.sum()) if raw.notna().any() else None,
                           # never summed under one word: "measured + estimated" where mixed
                           "provenance": words_of(by_kind.get("measured", 0.0),
                                                  by_kind.get("estimated", 0.0),
                                                  by_kind.get(COMPUTED, 0.0),
                                                  by_kind.get(UNRECORDED, 0.0))
                           if by_kind else None}
    return out


def _by_kind(row: pd.Series) -> dict[str, float]:
    """A run's energy by kind (`kind_of`). A run whose GPU was measured and its CPU
    estimated is "estimated" in part, not whole: its measured components (collect's
    `energy_<c>_j`, measured figures only) are measured joules, the rest estimated (the
    state's words read "estimated" for 97 % measured joules before)."""
    source, energy = row.get("source"), pd.to_numeric(row.get("energy_j"), errors="coerce")
    if not isinstance(source, str) or source in ("", "none"):  # no provenance recorded:
        return {} if pd.isna(energy) else {UNRECORDED: float(energy)}  # never "measured"
    energy = 0.0 if pd.isna(energy) else float(energy)
    kind = kind_of(source)
    measured = math.fsum(float(v) for c in COMPONENTS
                         if pd.notna(v := pd.to_numeric(row.get(f"energy_{c}_j"),
                                                        errors="coerce")))
    if kind != "estimated" or not 0 < measured <= energy:
        return {kind: energy}
    return {"measured": measured, "estimated": energy - measured}


def relevance_runs(sweep_dir: "str | Path", ok: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """The finished runs the relevance ANOVA reads, and a note saying why when not all.

    A pareto search's runs after its random start were chosen by the sampler from the
    results before them, so comparing their means would measure the sampler's taste as
    much as the parameters' effect: only the random start is a random sample.
    """
    recorded = read_json(Path(sweep_dir) / "sweep.json") or {}
    search = recorded.get("search") or {}
    if searched_by(sweep_dir) != "pareto":
        return ok, None
    runs = (recorded.get("settings") or {}).get("runs") or len(ok)
    start = default_startup(int(runs), int(search.get("batch_size") or 1))
    index = pd.to_numeric(ok["run"], errors="coerce")
    chosen = ok[index < start]
    return chosen, (f"pareto search: relevance is computed on the {len(chosen)} finished "
                    f"run(s) of its random start (runs below {start:03d}) only; the sampler "
                    "chose the others, which are not a random sample of the space")


def proposal_cost(sweep_dir: "str | Path") -> dict | None:
    """The proposals' cost over every batch (`executors.proposals.record_cost`):
    {"batches", "cpu_s", "energy_j", "provenance"}; None when nothing was proposed. The
    energy is an estimate from CPU time: it is reported beside the runs' energy, never
    added to it."""
    folder = Path(sweep_dir) / proposals.PROPOSALS
    records = [read_json(path) or {} for path in sorted(folder.glob("*.json"))]
    if not records:
        return None
    return {"batches": len(records),
            "cpu_s": math.fsum(float(r.get("cpu_s") or 0.0) for r in records),
            "energy_j": math.fsum(float(r.get("energy_j") or 0.0) for r in records),
            "provenance": proposals.COST_PROVENANCE}


def total(by_state: dict) -> float:
    """The sweep's energy over every state."""
    return math.fsum(v["energy_j"] or 0.0 for v in by_state.values())


def searched_by(sweep_dir: "str | Path") -> str:
    """The sweep's search as sweep.json's search block records it: "random" (also for a
    folder without one, as the original pipeline's) or "pareto"."""
    recorded = read_json(Path(sweep_dir) / "sweep.json") or {}
    return str((recorded.get("search") or {}).get("search") or "random")


def reference_point(objective: "pd.Series | np.ndarray", energy: "pd.Series | np.ndarray",
                    maximize: bool = True) -> tuple[float, float] | None:
    """The hypervolume's reference point: the worst objective and the highest energy among
    the given (done) runs, each moved REFERENCE_MARGIN of that axis's range further out (of
    the value itself, or 1, where every run has the same), so that the worst run on either
    axis still adds a sliver of area. None when no run has both figures."""
    obj, eng = np.asarray(objective, dtype=float), np.asarray(energy, dtype=float)
    finite = np.isfinite(obj) & np.isfinite(eng)
    if not finite.any():
        return None
    obj, eng = obj[finite], eng[finite]

    def margin(values: np.ndarray) -> float:
        span = float(values.max() - values.min())
        return REFERENCE_MARGIN * (span or abs(float(values.max())) or 1.0)

    worst = float(obj.min() - margin(obj)) if maximize else float(obj.max() + margin(obj))
    return worst, float(eng.max() + margin(eng))


def progress(df: pd.DataFrame, objective: Objective) -> tuple[list[dict], dict | None]:
    """The search's progress, one row per run folder in run order (the order the search
    proposed and spent): the cumulative energy of every run so far, whatever its state
    (done, stopped, failed: a run without a figure adds 0), and the hypervolume of the
    (objective, energy) front of the done runs so far against one reference point
    (`reference_point` of all done runs), so that the curve never falls.

    Args:
        df: collect's rows, in run order (`collect.load_sweep`, or one component's `focus`).
        objective: The sweep's objective; its direction decides "worse".

    Returns:
        (rows of {"run", "cumulative_energy_j", "hypervolume"}, the reference point as
        {"objective", "energy_j", "note"} or None when no run is done).
    """
    if df.empty:
        return [], None
    energy = pd.to_numeric(df["energy_j"], errors="coerce").to_numpy(float)
    value = pd.to_numeric(df["objective"], errors="coerce").to_numpy(float)
    done = (df["status"] == "done").to_numpy() & np.isfinite(energy) & np.isfinite(value)
    reference = reference_point(value[done], energy[done], objective.maximise)
    rows, spent = [], 0.0
    front_obj: list[float] = []
    front_energy: list[float] = []
    for k, run in enumerate(df["run"]):
        spent += energy[k] if np.isfinite(energy[k]) else 0.0
        if done[k]:  # the front so far, kept small: only its points can add area
            obj, eng = np.append(front_obj, value[k]), np.append(front_energy, energy[k])
            keep = pareto_mask(obj, eng, objective.maximise)
            front_obj, front_energy = obj[keep].tolist(), eng[keep].tolist()
        area = (hypervolume(front_obj, front_energy, reference, objective.maximise)
                if reference and front_obj else 0.0)
        rows.append({"run": str(run), "cumulative_energy_j": float(spent),
                     "hypervolume": float(area)})
    if reference is None:
        return rows, None
    return rows, {"objective": reference[0], "energy_j": reference[1], "note": (
        f"the worst {objective.metric} and the highest energy among the done runs, "
        f"{REFERENCE_MARGIN:.0%} of each axis's range beyond")}
