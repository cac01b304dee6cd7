"""What the analysis could not use, by name: the runs it left out of the ranking and why,
and what it noticed about the runs it ranked (a file it could not read, a configuration
read from elsewhere). analysis.json keeps them as `left_out` and `warnings`; the console
names every run, grouped by reason."""

from __future__ import annotations

import math

import pandas as pd

from .provenance import NOTHING_SEEN, usable_energy


def left_out(df: pd.DataFrame, ok: pd.DataFrame) -> list[dict]:
    """Every run of `df` that is not in `ok` (the ranked runs): {run, status, reason}."""
    rest = df[~df.index.isin(ok.index)]
    return [{"run": r["run"], "status": r["status"], "reason": _why(r)}
            for r in rest.to_dict("records")]


def _why(run: dict) -> str:
    reason = run.get("reason")
    reason = reason if isinstance(reason, str) and reason else None
    if run["status"] != "done":
        return f"{run['status']}: {reason}" if reason else str(run["status"])
    if _missing(run.get("objective")):
        return ("done, but no value of the objective (in results.json, parameters.yaml or "
                "logs.csv's last epoch)")
    if run.get("format") == "seed":  # the original pipeline's: no summary.json at all
        return ("done, but no energy figure (logs.csv lacks a power reading in some epochs: "
                "analysis.json's warnings say how many)")
    energy = run.get("energy_j")
    if not _missing(energy) and not usable_energy(energy):
        return f"done, but its energy is {energy:g} J: {NOTHING_SEEN}"
    return "done, but no energy figure (summary.json is missing, unreadable or has none)"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def warnings(df: pd.DataFrame) -> list[dict]:
    """{run, warning} for each run the collector read with a warning."""
    if "warnings" not in df:
        return []
    noted = df[df["warnings"].notna() & (df["warnings"] != "")]
    return [{"run": r["run"], "warning": r["warnings"]} for r in noted.to_dict("records")]


def lines(result: dict) -> list[str]:
    """The console's lines: each reason once, with every run it applies to."""
    out = []
    for key, label, text in (("left_out", "left out", "reason"),
                             ("warnings", "read with a warning", "warning")):
        groups: dict[str, list[str]] = {}
        for entry in result.get(key) or []:
            groups.setdefault(entry[text], []).append(str(entry["run"]))
        if groups:
            out.append(f"{label}: {sum(map(len, groups.values()))} run(s) (analysis.json "
                       f"{key})")
        out += [f"  {', '.join(runs)}: {why}" for why, runs in groups.items()]
    return out
