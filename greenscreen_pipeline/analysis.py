"""Analysis of a finished sweep: top runs, the accuracy-energy Pareto front,
parameter relevance, and a recommendation that never falls below the accuracy floor.

Writes analysis.json and CSV tables into the sweep folder, prints a summary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from greenscreen.fileio import atomic_write_json, atomic_write_text

from . import collect, ledger, relevance
from .space import METHOD_DIMENSIONS

TOP_K = 5
COLUMNS = ["run", "accuracy", "energy_j", "power_w", "duration_s", "source"]


def pareto(df: pd.DataFrame) -> pd.DataFrame:
    """Runs no other run beats on both accuracy (higher) and energy (lower).

    One pass in order of energy instead of comparing every pair (5000 runs: 25 million
    comparisons): a run is on the front when it is the most accurate of its energy and
    more accurate than every cheaper run."""
    if df.empty:
        return df
    energy, accuracy = df["energy_j"].to_numpy(float), df["accuracy"].to_numpy(float)
    order = np.lexsort((-accuracy, energy))  # by energy, the most accurate first on ties
    e, a = energy[order], accuracy[order]
    first = np.searchsorted(e, e, side="left")  # where each run's energy starts
    best = np.maximum.accumulate(a)
    cheaper = np.where(first > 0, best[np.maximum(first - 1, 0)], -np.inf)
    keep = (a == a[first]) & (a > cheaper)
    return df.iloc[np.sort(order[keep])].sort_values("energy_j", kind="stable")


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
    return {"rule": "run", "run": pick["run"], "accuracy": float(pick["accuracy"]),
            "energy_j": float(pick["energy_j"]), "best_accuracy": float(best),
            "accuracy_floor": floor, "eligible_runs": eligible["run"].tolist(),
            "parameters": {f: _plain(pick[f]) for f in factors if f in pick},
            "explanation": why}


def recommend_values(ok: pd.DataFrame, floor: float, factors: list[str]) -> dict | None:
    """The original pipeline's rule: each parameter's best value, judged on its own.

    For every varying parameter, the values whose mean accuracy is within `floor` of
    the best value's are eligible, and the one with the lowest mean energy wins. A
    method's own setting is judged on that method's runs only. The combination may
    be one no run tried: then only the final run measures it.
    """
    if ok.empty:
        return None
    chosen, evidence = {}, {}
    for f in factors:
        runs = ok[ok["method"] == METHOD_DIMENSIONS[f]] if f in METHOD_DIMENSIONS else ok
        if runs.empty or runs[f].astype(str).nunique() < 2:
            continue
        levels = _levels(runs, f)
        best = max(level["mean_accuracy"] for level in levels)
        pick = min((lv for lv in levels if lv["mean_accuracy"] >= best - floor),
                   key=lambda lv: lv["mean_energy_j"])
        pick["chosen"] = True
        chosen[f], evidence[f] = pick["value"], levels
    method = chosen.get("method", ok["method"].iloc[0] if "method" in ok else None)
    used = {f: v for f, v in chosen.items() if METHOD_DIMENSIONS.get(f, method) == method}
    mask = np.ones(len(ok), bool)
    for f, v in used.items():  # column by column: iterrows cost seconds at 5000 runs
        mask &= (ok[f].astype(str) == str(v)).to_numpy()
    same = ok[mask]
    match = same.loc[same["energy_j"].idxmin()] if not same.empty else None
    return {"rule": "values", "run": None if match is None else match["run"],
            "accuracy": None if match is None else float(match["accuracy"]),
            "energy_j": None if match is None else float(match["energy_j"]),
            "best_accuracy": float(ok["accuracy"].max()), "accuracy_floor": floor,
            "parameters": chosen, "based_on": ok.loc[ok["accuracy"].idxmax(), "run"],
            "evidence": evidence}


def _levels(runs: pd.DataFrame, factor: str) -> list[dict]:
    """Per value of `factor`: how many runs, their mean accuracy and mean energy."""
    out = []
    for _, group in runs.groupby(runs[factor].astype(str), sort=True):
        out.append({"value": _plain(group[factor].iloc[0]), "runs": len(group),
                    "mean_accuracy": float(group["accuracy"].mean()),
                    "mean_energy_j": float(group["energy_j"].mean()), "chosen": False})
    return out


def _plain(value):
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def analyze(sweep_dir: "str | Path", floor: float = 0.02, rule: str = "run") -> dict:
    """Analyses a sweep folder; `rule` is settings.recommend: "run" or "values"."""
    sweep_dir = Path(sweep_dir)
    df = collect.load_sweep(sweep_dir)
    if df.empty:
        result = {"runs": 0, "done": 0, "message": f"no run folders in {sweep_dir}"}
        atomic_write_json(sweep_dir / "analysis.json", result)
        return result
    ok = df[(df["status"] == "done") & df["accuracy"].notna() & df["energy_j"].notna()]
    failed = df[df["status"] != "done"][["run", "status"] + (["reason"] if "reason" in df
                                                             else [])]
    factors = [f for f in collect.dimensions(sweep_dir) if f in df]
    result = {"runs": len(df), "done": len(ok), "failed_or_skipped": failed.to_dict("records"),
              "sources": sorted(df["source"].dropna().unique().tolist())}
    books = ledger.read(sweep_dir)
    if books:  # the sweep's own meter: each device once, however many runs shared it
        result["sweep_energy"] = books
    result["shared_devices"] = any(";attributed:" in s for s in result["sources"])
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
    pick = {"run": recommend, "values": recommend_values}[rule]
    result["recommendation"] = pick(ok, floor, relevance.varying_factors(ok, factors))
    atomic_write_json(sweep_dir / "analysis.json", result)
    return result


def summary_text(result: dict) -> str:
    lines = [f"{result['done']} of {result['runs']} runs finished; energy sources: "
             f"{', '.join(result.get('sources', [])) or 'none'}"]
    if result.get("sweep_energy"):
        books = result["sweep_energy"]
        lines.append(f"sweep energy, each device measured once over the runs' windows: "
                     f"{books['energy_j']:.1f} J ({books['source']})")
    if result.get("shared_devices"):
        lines.append("runs shared GPUs: each run's energy is its attributed share")
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
    if rec.get("rule") == "values":
        lines.append("recommended (each parameter's best value): " + ", ".join(
            f"{f}={v}" for f, v in rec["parameters"].items()))
        lines.append(f"  that combination is run {rec['run']}" if rec["run"] else
                     "  no run had that combination; the final run measures it")
        return "\n".join(lines)
    lines.append(f"recommended: run {rec['run']}: accuracy {rec['accuracy']:.4f} (best "
                 f"{rec['best_accuracy']:.4f}, floor {rec['accuracy_floor']}), "
                 f"{rec['energy_j']:.1f} J")
    return "\n".join(lines)
