"""Issue 37's figures over several tables: `benchmarks/search.py --table` outputs combined.

For each strategy, over every (table, seed) pair: in how many it reaches random search's
final hypervolume of the same seed, and the energy it took then as a fraction of that
random search's energy (median over all pairs, "never" counted as infinite; and the median
over tables of each table's median, as the issue states its target); then the medians
over tables of the hypervolume, the sweep's energy and the recommendation's energy excess
and accuracy shortfall against the true front.

Usage: python benchmarks/search_rules_summary.py search_rules_A.json search_rules_B.json ...
       [--out summary.json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path


def combine(reports: list[dict]) -> dict:
    """Per strategy, the figures over every report's pairs (module docstring)."""
    names = [n for n in reports[0]["pairs"] if all(n in r["pairs"] for r in reports)]
    out = {}
    for name in names:
        costs = [math.inf if c is None else c
                 for r in reports for c in r["pairs"][name]["per_seed"]]
        per_table = [r["pairs"][name]["energy_to_reach"] for r in reports]
        figs = [r["figures"]["strategies"][name] for r in reports]
        out[name] = {
            "reached": sum(math.isfinite(c) for c in costs), "pairs": len(costs),
            "energy_to_reach_median_pairs": statistics.median(costs),
            "energy_to_reach_median_tables": statistics.median(per_table),
            "tables_meeting_target": sum(
                r["pairs"][name]["reached_share"] >= 0.8
                and r["pairs"][name]["energy_to_reach"] <= 0.2 for r in reports),
            **{key: statistics.median(f[key] for f in figs)
               for key in ("hv", "energy_ratio", "rec_energy_excess", "rec_accuracy_shortfall")}}
    return out


def markdown(summary: dict, default: str, tables: int) -> str:
    """The combined figures as a Markdown table, the default in bold."""
    head = (f"| strategy | reaches random's final hv (pairs of {tables} tables x seeds) | "
            "energy to reach (x random): median over pairs / over tables | tables at >= 80 % "
            "and <= 0.2 | hv | sweep energy (x random) | rec: energy excess / acc shortfall |\n"
            "|" + "---|" * 7 + "\n")
    rows = []
    for name, s in summary.items():
        label = f"**{name} (default)**" if name == default else name
        cost = " / ".join("never" if math.isinf(v) else f"{v:.2f}" for v in (
            s["energy_to_reach_median_pairs"], s["energy_to_reach_median_tables"]))
        rows.append(f"| {label} | {s['reached']}/{s['pairs']} | {cost} | "
                    f"{s['tables_meeting_target']}/{tables} | {s['hv']:.3f} | "
                    f"{s['energy_ratio']:.2f} | {s['rec_energy_excess']:.2f} / "
                    f"{100 * s['rec_accuracy_shortfall']:.1f} pt |")
    return head + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    reports = [json.loads(p.read_text()) for p in args.reports]
    summary = combine(reports)
    if args.out:
        args.out.write_text(json.dumps({
            "tables": [r["table"]["path"] for r in reports], "default": reports[0]["default"],
            "strategies": summary}, indent=1) + "\n")
    print(markdown(summary, reports[0]["default"], len(reports)))


if __name__ == "__main__":
    main()
