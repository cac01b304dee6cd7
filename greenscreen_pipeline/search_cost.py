"""What a sweep's search cost, and which runs the relevance analysis may read.

    energy_by_state   energy and runs per final state (done, stopped, failed, ...): what
                      the search spent, stopped runs and failures included
    relevance_runs    the runs an ANOVA may compare: all of a random search's; a pareto
                      search's random start only (the sampler chose the rest, so their
                      values are not a random sample of the space)
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .runfolder import read_json
from .search.propose import default_startup


def energy_by_state(df: pd.DataFrame) -> dict:
    """State -> {"runs": n, "energy_j": their energy over every attempt} over every run
    folder of `df` (collect's rows); a run without a figure counts in "runs" only."""
    out = {}
    for state, rows in df.groupby(df["status"].fillna("unknown"), sort=True):
        energy = pd.to_numeric(rows["energy_j"], errors="coerce")
        out[str(state)] = {"runs": int(len(rows)),
                           "energy_j": float(energy.sum()) if energy.notna().any() else None}
    return out


def relevance_runs(sweep_dir: "str | Path", ok: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """The finished runs the relevance ANOVA reads, and a note saying why when not all.

    A pareto search's runs after its random start were chosen by the sampler from the
    results before them, so comparing their means would measure the sampler's taste as
    much as the parameters' effect: only the random start is a random sample.
    """
    recorded = read_json(Path(sweep_dir) / "sweep.json") or {}
    search = recorded.get("search") or {}
    if search.get("search") != "pareto":
        return ok, None
    runs = (recorded.get("settings") or {}).get("runs") or len(ok)
    start = default_startup(int(runs), int(search.get("batch_size") or 1))
    index = pd.to_numeric(ok["run"], errors="coerce")
    chosen = ok[index < start]
    return chosen, (f"pareto search: relevance is computed on the {len(chosen)} finished "
                    f"run(s) of its random start (runs below {start:03d}) only; the sampler "
                    "chose the others, which are not a random sample of the space")


def total(by_state: dict) -> float:
    """The sweep's energy over every state."""
    return math.fsum(v["energy_j"] or 0.0 for v in by_state.values())
