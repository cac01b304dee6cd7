"""Halving rules compared on any table (`benchmarks/search.py --table PATH`, issue 37).

Strategies: random search, pareto (TPE), and each rule of RULES under both. Random search
runs `--runs` runs; every other strategy gets random search's energy of the same seed as
its budget (settings.budget: batches until the energy spent reaches it), so that what
halving saves is spent on more configurations. `DEFAULT` names the strategy that
`search: pareto` + `early_stop: halving` runs by default (`halving.default_rule`).

Per (table, seed) pair, a strategy "reaches" when its hypervolume, as runs end, first
reaches random search's final hypervolume of the same seed; the energy it took then, as a
fraction of that random search's energy, is its cost.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from dataclasses import asdict
from pathlib import Path

from greenscreen_pipeline.search import halving
from greenscreen_pipeline.search.halving import Rule

ETA = 3
RULES = {
    "halving": Rule(ETA),  # issue 25's: rungs 1, 3, 9, 27; top 1/3 or on the front
    "grace 0.1": Rule(ETA, grace=0.1),
    "brackets 3": Rule(ETA, brackets=3),
    "nds": Rule(ETA, ranking="nds"),
    "grace 0.1 + nds": Rule(ETA, grace=0.1, ranking="nds"),
    "grace 0.1 + brackets 2": Rule(ETA, grace=0.1, brackets=2),
}


def load(path: Path, args: argparse.Namespace) -> dict:
    """A table, with the first epoch's cost changed as --epochs-only or
    --first-epoch-excess-scale say."""
    data = json.loads(Path(path).read_text())
    for row in data["rows"] if args.epochs_only else []:
        row["energy_j"][0] = statistics.median(row["energy_j"][1:])
    for row in data["rows"] if args.first_epoch_excess_scale is not None else []:
        later = statistics.median(row["energy_j"][1:])
        row["energy_j"][0] = later + args.first_epoch_excess_scale * (row["energy_j"][0] - later)
    return data


def plan(sampler: str = "tpe", rules: list[str] | None = None) -> dict:
    """The strategies compared, random search first (the others' budget comes from it);
    `rules`: only these of RULES (None: all; the default's rule is always kept)."""
    unknown = sorted(set(rules or ()) - set(RULES))
    if unknown:
        raise SystemExit(f"--rules: {', '.join(unknown)} not in {', '.join(RULES)}")
    chosen = {name: rule for name, rule in RULES.items()
              if rules is None or name in rules or rule == halving.default_rule(ETA)}
    out = {"random": {"search": "random", "halving": False},
           f"pareto-{sampler}": {"search": "pareto", "sampler": sampler, "halving": False}}
    for name, rule in chosen.items():
        out[f"random+{name}"] = {"search": "random", "halving": True, "rule": rule}
        out[f"pareto-{sampler}+{name}"] = {"search": "pareto", "sampler": sampler,
                                           "halving": True, "rule": rule}
    return out


def default_name(strategies: dict) -> str:
    """The strategy of `search: pareto` + `early_stop: halving` with the defaults."""
    rule = halving.default_rule(ETA)
    return next(n for n, s in strategies.items()
                if s["search"] == "pareto" and s.get("rule") == rule)


def rules_json(strategies: dict) -> dict:
    """Each strategy's rule, as JSON (None: no halving)."""
    return {n: (asdict(s["rule"]) if s.get("rule") else None) for n, s in strategies.items()}


def energy_to(curve: list, level: float) -> float:
    """The energy spent when the hypervolume first reaches `level` (inf: never)."""
    return next((e for e, hv in curve if hv >= level - 1e-12), math.inf)


def pairs(sweeps: dict) -> dict:
    """Per strategy: in how many seeds it reaches random's final hypervolume of that seed,
    and at what share of that random search's energy (median; inf counts where not)."""
    random = sweeps["random"]
    out = {}
    for name, runs in sweeps.items():
        costs = [energy_to(s["curve"], r["hv"]) / r["energy_j"] for s, r in zip(runs, random)]
        reached = [c for c in costs if math.isfinite(c)]
        out[name] = {"reached": f"{len(reached)}/{len(costs)}",
                     "reached_share": len(reached) / len(costs),
                     "energy_to_reach": statistics.median(costs),
                     "energy_to_reach_where_reached": (statistics.median(reached)
                                                       if reached else math.inf),
                     "runs": statistics.median(s["runs"] for s in runs),
                     "per_seed": [round(c, 3) if math.isfinite(c) else None for c in costs]}
    return out


def markdown(fig: dict, pair: dict, default: str) -> str:
    """The comparison as a Markdown table, the default in bold."""
    head = ("| strategy | reaches random's final hv (seeds) | energy to reach (x random, "
            "median) | hv | sweep energy (x random) | runs | stopped | rec energy excess "
            "| rec acc shortfall |\n|" + "---|" * 9 + "\n")
    lines = []
    for name, r in fig["strategies"].items():
        p = pair[name]
        label = f"**{name} (default)**" if name == default else name
        cost = "never" if math.isinf(p["energy_to_reach"]) else f"{p['energy_to_reach']:.2f}"
        lines.append(f"| {label} | {p['reached']} | {cost} | {r['hv']:.3f} | "
                     f"{r['energy_ratio']:.2f} | {p['runs']:g} | {r['stopped']:g} | "
                     f"{r['rec_energy_excess']:.2f} | {r['rec_accuracy_shortfall']:.3f} |")
    return head + "\n".join(lines) + "\n"
