"""Analysis of a finished sweep: top runs, the accuracy-energy Pareto front,
parameter relevance, and a recommendation that never falls below the accuracy floor.

Writes analysis.json and CSV tables into the sweep folder, prints a summary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from greenscreen._io import atomic_write_json, atomic_write_text

from . import collect, relevance
from .space import DIMENSIONS

TOP_K = 5
COLUMNS = ["run", "accuracy", "energy_j", "power_w", "duration_s", "source"]


def pareto(df: pd.DataFrame) -> pd.DataFrame:
    """Runs no other run beats on both accuracy (higher) and energy (lower)."""
    keep = []
    for i, r in df.iterrows():
        beaten = ((df["accuracy"] >= r["accuracy"]) & (df["energy_j"] <= r["energy_j"]) &
                  ((df["accuracy"] > r["accuracy"]) | (df["energy_j"] < r["energy_j"])))
        if not beaten.any():
            keep.append(i)
    return df.loc[keep].sort_values("energy_j")


def top_tables(ok: pd.DataFrame) -> dict[str, pd.DataFrame]:
    eff = ok.assign(accuracy_per_kwh=ok["accuracy"] / ok["energy_kwh"],
                    accuracy_per_w=ok["accuracy"] / ok["power_w"])
    return {
        "top_accuracy": eff.nlargest(TOP_K, "accuracy"),
        "top_energy": eff.nsmallest(TOP_K, "energy_j"),
        "top_power": eff.nsmallest(TOP_K, "power_w"),
        "top_efficiency": eff.nlargest(TOP_K, "accuracy_per_kwh"),
        "top_efficiency_per_w": eff.nlargest(TOP_K, "accuracy_per_w"),
    }


def recommend(ok: pd.DataFrame, floor: float, factors: list[str]) -> dict | None:
    """Lowest energy among runs within `floor` of the best accuracy, with reasons."""
    if ok.empty:
        return None
    best = ok["accuracy"].max()
    eligible = ok[ok["accuracy"] >= best - floor]
    pick = eligible.loc[eligible["energy_j"].idxmin()]
    why = {}
    for f in factors:
        mine = ok[ok[f].astype(str) == str(pick[f])]["energy_j"].mean()
        rest = ok[ok[f].astype(str) != str(pick[f])]["energy_j"].mean()
        why[f] = {"value": _plain(pick[f]), "runs_with_value": int((ok[f].astype(str) == str(
            pick[f])).sum()), "mean_energy_j_with": _plain(mine),
            "mean_energy_j_others": _plain(rest)}
    return {"run": pick["run"], "accuracy": float(pick["accuracy"]),
            "energy_j": float(pick["energy_j"]), "best_accuracy": float(best),
            "accuracy_floor": floor, "eligible_runs": eligible["run"].tolist(),
            "parameters": {f: _plain(pick[f]) for f in factors if f in pick},
            "explanation": why}


def _plain(value):
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def analyze(sweep_dir: "str | Path", floor: float = 0.02) -> dict:
    sweep_dir = Path(sweep_dir)
    df = collect.load_sweep(sweep_dir)
    if df.empty:
        result = {"runs": 0, "done": 0, "message": f"no run folders in {sweep_dir}"}
        atomic_write_json(sweep_dir / "analysis.json", result)
        return result
    ok = df[(df["status"] == "done") & df["accuracy"].notna() & df["energy_j"].notna()]
    failed = df[df["status"] != "done"][["run", "status"] + (["reason"] if "reason" in df
                                                             else [])]
    factors = [f for f in DIMENSIONS if f in df]
    result = {"runs": len(df), "done": len(ok), "failed_or_skipped": failed.to_dict("records"),
              "sources": sorted(df["source"].dropna().unique().tolist())}
    if any(df.get("format", pd.Series()).eq("seed")):
        result["note"] = f"seed-format runs: energy {collect.SEED_SOURCE}"
    atomic_write_text(sweep_dir / "runs.csv", df.to_csv(index=False))
    if ok.empty:
        result["message"] = "no finished run: nothing to rank"
        atomic_write_json(sweep_dir / "analysis.json", result)
        return result
    for name, table in top_tables(ok).items():
        atomic_write_text(sweep_dir / f"{name}.csv", table.to_csv(index=False))
        result[name] = table[COLUMNS + ["accuracy_per_kwh", "accuracy_per_w"]].to_dict("records")
    front = pareto(ok)
    atomic_write_text(sweep_dir / "pareto.csv", front.to_csv(index=False))
    result["pareto"] = front[COLUMNS].to_dict("records")
    result["relevance"] = {t: relevance.relevance(ok, t, factors)
                           for t in ("power_w", "energy_j", "accuracy")}
    result["relevance_summary"] = [relevance.plain_words(r) for r in result["relevance"].values()]
    rows = [{"target": t, **row} for t, r in result["relevance"].items() for row in r["table"]]
    atomic_write_text(sweep_dir / "relevance.csv", pd.DataFrame(rows).to_csv(index=False))
    result["recommendation"] = recommend(ok, floor, relevance.varying_factors(ok, factors))
    atomic_write_json(sweep_dir / "analysis.json", result)
    return result


def summary_text(result: dict) -> str:
    lines = [f"{result['done']} of {result['runs']} runs finished; energy sources: "
             f"{', '.join(result.get('sources', [])) or 'none'}"]
    if result.get("note"):
        lines.append(result["note"])
    if "top_accuracy" not in result:
        lines.append(result.get("message", ""))
        return "\n".join(lines)
    best = result["top_accuracy"][0]
    lines.append(f"most accurate: run {best['run']} ({best['accuracy']:.4f}, "
                 f"{best['energy_j']:.1f} J)")
    lines.append("Pareto front (accuracy vs energy): " + ", ".join(
        f"{r['run']} ({r['accuracy']:.3f}, {r['energy_j']:.0f} J)" for r in result["pareto"]))
    lines += result["relevance_summary"]
    rec = result["recommendation"]
    lines.append(f"recommended: run {rec['run']}: accuracy {rec['accuracy']:.4f} (best "
                 f"{rec['best_accuracy']:.4f}, floor {rec['accuracy_floor']}), "
                 f"{rec['energy_j']:.1f} J")
    return "\n".join(lines)
