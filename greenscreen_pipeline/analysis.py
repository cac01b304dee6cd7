"""Analysis of a finished sweep: top runs, the objective-energy Pareto front,
parameter relevance, and a recommendation that never falls outside the floor.

The objective is the sweep's `settings.objective` (objective.py; val_accuracy, maximised,
by default): every ranking, the front, the floor and the recommendation follow its
direction. `settings.accuracy_floor` is how far from the best value a recommended run may
be: below the best for a maximised objective, above it for a minimised one (a loss); the
recommendation records it as `objective_floor` (and `accuracy_floor`, the setting's name).
Writes analysis.json and CSV tables into the sweep folder, prints a summary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from greenscreen.fileio import atomic_write_json, atomic_write_text
from greenscreen.provenance import is_measured

from . import (
    analysis_file,
    budget,
    collect,
    leftout,
    provenance,
    relevance,
    search_cost,
    search_importance,
    sweep_total,
)
from . import repeats as sweep_repeats
from .errors import UsageError
from .objective import Objective
from .recommend import recommend, recommend_values
from .runfolder import Unreadable, read_json
from .wording import joules, number, some

TOP_K = 5
COLUMNS = ["run", "objective", "energy_j", "power_w", "duration_s", "source"]
EFFICIENCY = ["objective_per_kwh", "objective_per_w"]
SHARING_UNKNOWN_TEXT = ("GPU sharing unknown: the meter could not see the GPU's compute "
                        "processes (a container?), so a run's GPU figure may include other "
                        "processes' energy")


def objective_of(result: dict) -> Objective:
    """The objective an analysis.json names (val_accuracy for one written before it did)."""
    named = result.get("objective") or {}
    if not named:
        return Objective()
    return Objective(named["loss"], named["name"], named["mode"] == "max")


def scores(values: pd.Series, objective: Objective) -> np.ndarray:
    """The objective's values turned so that higher is better (a loss negated)."""
    values = values.to_numpy(float)
    return values if objective.maximise else -values


def pareto(df: pd.DataFrame, objective: Objective | None = None) -> pd.DataFrame:
    """Runs no other run beats on both the objective (in its direction) and energy (lower).

    One pass in order of energy instead of comparing every pair (5000 runs: 25 million
    comparisons): a run is on the front when it is the best of its energy and better than
    every cheaper run."""
    if df.empty:
        return df
    energy, score = df["energy_j"].to_numpy(float), scores(df["objective"],
                                                            objective or Objective())
    order = np.lexsort((-score, energy))  # by energy, the best first on ties
    e, a = energy[order], score[order]
    first = np.searchsorted(e, e, side="left")  # where each run's energy starts
    best = np.maximum.accumulate(a)
    cheaper = np.where(first > 0, best[np.maximum(first - 1, 0)], -np.inf)
    keep = (a == a[first]) & (a > cheaper)
    return df.iloc[np.sort(order[keep])].sort_values("energy_j", kind="stable")


def efficiency_left_out(ok: pd.DataFrame, objective: Objective) -> str | None:
    """Why "objective per kWh" means nothing for this sweep, or None when it does."""
    metric = objective.metric
    if not objective.maximise:
        return (f"{metric} is minimised, so {metric} per kWh or per W would rank the worse of "
                "two equally costly runs first; there is no efficiency ranking")
    if (ok["objective"] < 0).any():
        return (f"some runs' {metric} is negative, so {metric} per kWh or per W has no "
                "meaning; there is no efficiency ranking")
    return None


def top_tables(ok: pd.DataFrame, objective: Objective | None = None,
               one_kind: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """The best runs by the objective, energy and power; by objective per kWh and per W
    when that means something (a maximised objective that is never negative). Energy,
    power and efficiency rank `one_kind`, the runs of one energy kind
    (`relevance.one_energy_kind`; default: all of `ok`), so that an estimate is never
    ranked beside a measurement as if it were one."""
    objective = objective or Objective()
    efficient = efficiency_left_out(ok, objective) is None

    def with_efficiency(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(objective_per_kwh=df["objective"] / df["energy_kwh"],
                         objective_per_w=df["objective"] / df["power_w"]) if efficient else df

    runs, energy_runs = with_efficiency(ok), with_efficiency(ok if one_kind is None else one_kind)
    tables = {
        "top_objective": (runs.nlargest if objective.maximise else runs.nsmallest)(
            TOP_K, "objective"),
        "top_energy": energy_runs.nsmallest(TOP_K, "energy_j"),
        "top_power": energy_runs.nsmallest(TOP_K, "power_w"),
    }
    if efficient:
        tables["top_efficiency"] = energy_runs.nlargest(TOP_K, "objective_per_kwh")
        tables["top_efficiency_per_w"] = energy_runs.nlargest(TOP_K, "objective_per_w")
    return tables


def ranges_of(sweep_dir: Path) -> dict:
    """The sweep's ranges as sweep.json records them: dimension -> {min, max, log, step}."""
    try:
        space = (read_json(Path(sweep_dir) / "sweep.json") or {}).get("space") or {}
    except Unreadable:
        space = {}
    return {dim: spec for dim, spec in space.items() if isinstance(spec, dict)}


def focus(df: pd.DataFrame, component: str | None) -> pd.DataFrame:
    """The runs with `energy_j` (and `power_w`, `energy_err_j`: its interval, NaN where
    none; `source`: its provenance) one component's measured figure instead of the total,
    which stays as `energy_total_j` (`energy_total_err_j`, `source_total`); `component`
    None: the runs as they are."""
    if component is None or df.empty:
        return df
    nan = pd.Series(np.nan, index=df.index)
    energy = df.get(f"energy_{component}_j", nan)
    # The component's provenance too: a run whose GPU was measured and its CPU estimated
    # is a measurement here, not set aside as an estimate by the total's source
    source = df.get(f"{component}_source", nan).fillna(df["source"])
    return df.assign(energy_total_j=df["energy_j"], power_total_w=df["power_w"],
                     energy_total_err_j=df.get("energy_err_j", nan),
                     source_total=df["source"], source=source,
                     energy_j=energy, power_w=energy / df["duration_s"],
                     energy_err_j=df.get(f"energy_{component}_err_j", nan),
                     energy_kwh=energy / 3.6e6)


def component_of(result: dict) -> str | None:
    """The component an analysis.json ranked by, or None for the total."""
    return (result.get("energy") or {}).get("component")


def without_component(df: pd.DataFrame, component: str) -> dict[str, str]:
    """Why each finished run of `focus(df, component)` has no measured figure of the
    component: run -> "its CPU energy is estimated:cpu-time, not measured", ...; a run
    that estimated it is never said to be unfinished or without a summary.json."""
    lacking = (df["status"] == "done") & df["objective"].notna() & df["energy_j"].isna()
    sources = df.get(f"{component}_source", pd.Series(None, index=df.index, dtype=object))
    name = component.upper()
    why = {}
    for run, source in zip(df.loc[lacking, "run"], sources[lacking]):
        if not isinstance(source, str) or source == "none":
            why[run] = f"it did not measure the {name}"
        elif is_measured(source):
            why[run] = f"summary.json has no {name} energy figure ({source})"
        else:  # estimated, in whole or in part (the CPU-time model): never a measurement
            why[run] = f"its {name} energy is {source}, not measured"
    return why


def only_unmeasured(component: str, why: dict[str, str]) -> str:
    """The error where no finished run measured `component`: which runs and why, grouped."""
    groups: dict[str, list[str]] = {}
    for run, reason in why.items():
        groups.setdefault(reason, []).append(str(run))
    listed = "; ".join(f"in {some(runs, 10)} {reason}" for reason, runs in groups.items())
    return (f"--component {component}: none of the {len(why)} finished runs has a measured "
            f"{component.upper()} energy figure ({listed}), and --component ranks measured "
            "energy only. Leave --component out to rank the total energy, whose source says "
            "what was measured and what estimated")


def analyze(sweep_dir: "str | Path", floor: float = 0.02, rule: str = "run",
            objective: Objective | None = None, component: str | None = None,
            out: "str | Path | None" = None) -> dict:
    """Analyses a sweep folder; `rule` is settings.recommend: "run" or "values"; `objective`
    defaults to the one sweep.json records (val_accuracy, maximised, without one);
    `component` ("gpu", "cpu", "dram") ranks and analyses that component's measured energy
    instead of the total (runs that did not measure it, an estimate among them, are left out,
    counted and said why; UsageError where no finished run measured it); `out`: where
    analysis.json (which records the sweep folder, absolute) and the tables go (default:
    the sweep folder)."""
    sweep_dir = Path(sweep_dir)
    out_dir = Path(out) if out is not None else sweep_dir
    objective = objective or Objective.of_sweep(sweep_dir)
    whole = collect.load_sweep(sweep_dir, objective)
    df = focus(whole, component)
    named = {**objective.to_json(), "label": objective.label}
    energy = ({"component": component, "column": f"energy_{component}_j",
               "note": f"energy_j and power_w are the {component.upper()}'s measured figures "
                       "only, not the total"} if component else {"component": None})
    if df.empty:
        result = {"runs": 0, "done": 0, "sweep_dir": str(sweep_dir.resolve()),
                  "objective": named, "energy": energy,
                  "message": f"no run folders in {sweep_dir}",
                  analysis_file.DIGEST: analysis_file.runs_digest(whole)}
        atomic_write_json(out_dir / "analysis.json", result)
        return result
    ok = collect.rankable(df)
    failed = df[df["status"] != "done"][["run", "status"] + (["reason"] if "reason" in df
                                                             else [])]
    factors = [f for f in collect.dimensions(sweep_dir) if f in df]
    spans = ranges_of(sweep_dir)
    continuous = relevance.ranges_of(spans)
    left = leftout.left_out(df, ok)
    if component:
        why = without_component(df, component)
        if ok.empty and why:  # nothing to rank, though runs finished: say so, write nothing
            raise UsageError(only_unmeasured(component, why))
        energy["runs_without_it"] = len(why)
        left = [{**e, "reason": f"done, but {why[e['run']]} (--component {component} ranks "
                                "measured energy only)"} if e["run"] in why else e
                for e in left]
    # Absolute: `report --analysis DIR` reports this folder's runs, wherever it is run from.
    planned = sweep_total.runs_of(sweep_dir)  # settings.runs, where sweep.json says
    result = {"runs": len(df), "done": len(ok), "sweep_dir": str(sweep_dir.resolve()),
              analysis_file.DIGEST: analysis_file.runs_digest(whole),  # checked by report
              **({"planned": planned} if planned < budget.RUNS_WITH_BUDGET else {}),
              "objective": named, "energy": energy,
              "failed_or_skipped": failed.to_dict("records"),
              "left_out": left, "warnings": leftout.warnings(whole),
              "sources": sorted(df["source"].dropna().unique().tolist())}
    if spans:  # read as numbers by the relevance analysis, drawn as scatters in the report
        result["ranges"] = spans
    # What the sweep spent: each GPU once where its own meter covered it, else the runs'
    # figures; one rule with the console's total and the budget (sweep_total.py)
    result["sweep_energy"] = sweep_total.of(sweep_dir).to_json()
    result["energy_by_state"] = search_cost.energy_by_state(whole)
    result["search_progress"], reference = search_cost.progress(df, objective)
    proposing = search_cost.proposal_cost(sweep_dir)
    if proposing:  # estimated, so beside the runs' measured energy, never in it
        result["proposal_cost"] = proposing
    if reference:
        result["search_progress_reference"] = reference
    result["shared_devices"] = any(provenance.shares_gpu(s) for s in result["sources"])
    result["sharing_unknown"] = any(provenance.sharing_unknown(s) for s in result["sources"])
    if any(df.get("format", pd.Series()).eq("seed")):
        result["note"] = f"seed-format runs: energy {collect.SEED_SOURCE}"
    atomic_write_text(out_dir / "runs.csv", whole.to_csv(index=False))
    if ok.empty:
        finished = int((df["status"] == "done").sum())  # done, but no figure: not unfinished
        result["message"] = (f"no run it could rank: {finished} finished, but none with an "
                             "energy figure and an objective value (left out above)"
                             if finished else "no finished run: nothing to rank")
    else:
        table = sweep_repeats.ranked(sweep_dir, ok, result)  # the repeats' means, if any
        result.update(rankings(out_dir, table, objective))
        result.update(relevance_of(out_dir, relevance_sample(sweep_dir, ok, result),
                                   factors, objective, continuous))  # every repeat: replicates
        result.update(search_importance.of_sweep(sweep_dir, ok, objective))  # pareto only
        varying = relevance.varying_factors(ok, factors)
        result["recommendation"] = sweep_repeats.describe(
            recommend_values(table, floor, varying, objective, continuous) if rule == "values"
            else recommend(table, floor, varying, objective), table)
    atomic_write_json(out_dir / "analysis.json", result)
    return result


def rankings(out_dir: Path, ok: pd.DataFrame, objective: Objective) -> dict:
    """The top tables and the Pareto front, each also written as a CSV into `out_dir`."""
    out = {}
    shown = COLUMNS[:2] + (["accuracy"] if "accuracy" in ok and objective.metric != "accuracy"
                           else []) + COLUMNS[2:] + [c for c in sweep_repeats.SPREAD if c in ok]
    one_kind, left = relevance.one_energy_kind(ok)
    for name, table in top_tables(ok, objective, one_kind).items():
        atomic_write_text(out_dir / f"{name}.csv", table.to_csv(index=False))
        out[name] = sweep_repeats.records(table[shown + [c for c in EFFICIENCY if c in table]])
    if left:  # the energy, power and efficiency tables rank one energy kind
        out["energy_rankings_left_out"] = left["reason"]
    reason = efficiency_left_out(ok, objective)
    if reason:
        out["efficiency_left_out"] = reason
    front = pareto(ok, objective)
    atomic_write_text(out_dir / "pareto.csv", front.to_csv(index=False))
    out["pareto"] = sweep_repeats.records(front[shown])
    return out


def relevance_sample(sweep_dir: Path, ok: pd.DataFrame, result: dict) -> pd.DataFrame:
    """The finished runs the ANOVA reads (a pareto search's random start); notes why."""
    sample, note = search_cost.relevance_runs(sweep_dir, ok)
    if note and sample.empty:
        sample, note = ok, "pareto search: no run of its random start finished, so relevance " \
                           "is computed on runs the sampler chose: read it with care"
    if note:
        result["relevance_note"] = note
    return sample


def relevance_of(out_dir: Path, ok: pd.DataFrame, factors: list[str],
                 objective: Objective, continuous: relevance.Continuous = None) -> dict:
    """What drives mean power, energy and the objective; relevance.csv holds every test.
    `continuous`: the range factors, read as numbers (relevance.py). Power and energy are
    tested on the runs of one energy kind (relevance.one_energy_kind), and say what they
    left out."""
    labels = {"power_w": "power_w", "energy_j": "energy_j", "objective": objective.label}
    same, left = relevance.one_energy_kind(ok)
    tests = {t: relevance.relevance(ok if t == "objective" else same, t, factors, label,
                                    continuous) for t, label in labels.items()}
    for t in ("power_w", "energy_j") if left else ():
        tests[t]["left_out"] = left
    rows = [{"target": t, **row} for t, r in tests.items() for row in r["table"]]
    atomic_write_text(out_dir / "relevance.csv", pd.DataFrame(rows).to_csv(index=False))
    return {"relevance": tests, "relevance_summary": [relevance.plain_words(r)
                                                      for r in tests.values()]}


def summary_text(result: dict) -> str:
    part = result.get("energy") or {}
    # Finished by status, ranked or not (no energy figure, or none of --component's), as
    # the report's Totals count them
    finished = result["done"] + sum(1 for e in result.get("left_out") or []
                                    if e.get("status") == "done")
    unstarted = (result.get("planned") or 0) - result["runs"]
    lines = [f"{finished} of {result['runs']} runs finished"
             + (f" ({unstarted} of the {result['planned']} planned not started)"
                if unstarted > 0 else "")
             + f"; energy sources: {', '.join(result.get('sources', [])) or 'none'}"]
    if part.get("component"):
        lines.append(f"ranked by {part['component'].upper()} energy ({part['column']}), not "
                     f"the total: every energy_j below is the {part['component'].upper()}'s; "
                     f"{part.get('runs_without_it', 0)} finished run(s) did not measure it")
    if result.get("sweep_energy", {}).get("parts") is not None:
        books = result["sweep_energy"]
        # a comma, not parentheses: the words hold parentheses of their own
        lines.append(f"sweep energy {books['energy_j']:.1f} J, {sweep_total.words(books)}")
    if len(result.get("energy_by_state") or {}) > 1:  # what the search cost, by how runs ended
        lines.append("energy by state: " + ", ".join(
            f"{state} {v['runs']} run(s) {v['energy_j'] or 0:.1f} J"
            + (f" ({v['provenance']})" if v.get("provenance") else "")
            for state, v in result["energy_by_state"].items()))
    if result.get("proposal_cost"):
        cost = result["proposal_cost"]
        lines.append(f"proposing {cost['batches']} batch(es) took {cost['cpu_s']:.1f} CPU s, "
                     f"about {cost['energy_j']:.1f} J ({cost['provenance']}; not in the "
                     "runs' energy)")
    if result.get("shared_devices"):
        lines.append("runs shared GPUs: each run's energy is its attributed share")
    if result.get("sharing_unknown"):
        lines.append(SHARING_UNKNOWN_TEXT)
    if result.get("note"):
        lines.append(result["note"])
    lines += leftout.lines(result)  # every run not ranked, and every warning, by name
    if "top_objective" not in result:
        lines.append(result.get("message", ""))
        return "\n".join(lines)
    objective = objective_of(result)
    metric, best = objective.metric, result["top_objective"][0]
    lines.append(f"{'most accurate' if metric == 'accuracy' else 'best ' + objective.label}: "
                 f"run {best['run']} ({number(best['objective'], 4)}, {joules(best['energy_j'])})")
    lines.append(f"Pareto front ({objective.label} vs energy): " + ", ".join(
        f"{r['run']} ({number(r['objective'])}, {joules(r['energy_j'])})"
        for r in result["pareto"]))
    lines += ([result["relevance_note"]] if result.get("relevance_note") else []) + \
        result["relevance_summary"] + search_importance.summary_line(result) + \
        sweep_repeats.words(result)
    return "\n".join(lines + recommendation_lines(result["recommendation"], objective))


def recommendation_lines(rec: dict, objective: Objective) -> list[str]:
    aside = aside_words(rec)
    if rec.get("rule") == "values":
        return ["recommended (each parameter's best value): " + ", ".join(
            f"{f}={v}" for f, v in rec["parameters"].items()),
            f"  that combination is run {rec['run']}" if rec["run"] else
            "  no run had that combination; the final run measures it"] + (
            [f"  on the energy of {aside}"] if aside else [])
    side = "" if objective.maximise else " above"
    return [f"recommended: run {rec['run']}: {objective.metric} {number(rec['objective'], 4)} "
            f"(best {number(rec['best_objective'], 4)}, floor {rec['objective_floor']}{side}), "
            f"{joules(rec['energy_j'])}"] + ([f"  among {aside}"] if aside else [])


def aside_words(rec: dict) -> str | None:
    """The runs the recommendation set aside, in words: "the runs measured
    (measured:nvml-counter + measured:rapl): 002 set aside, its energy obtained otherwise
    (measured:nvml-counter), never compared with these"; an estimate beside measurements
    said as one. None where none was set aside (`recommend._aside_record`)."""
    aside = rec.get("set_aside") or rec.get("estimates_set_aside")  # the older key
    if not aside:
        return None
    kinds = rec.get("set_aside_kinds") or {}
    compared = rec.get("compared_kind")
    theirs = sorted(set(kinds.values()))
    if not kinds or (all(provenance.estimated(k) for k in theirs)
                     and compared and is_measured(compared)):
        return (f"the measured runs: {', '.join(aside)} set aside, their energy an "
                "estimate, never compared with a measurement")
    said = {"none": "of no recorded provenance", None: "of one kind"}
    return (f"the runs whose energy is {said.get(compared, compared)}: {', '.join(aside)} "
            f"set aside, their energy obtained otherwise ({', '.join(theirs)}), never "
            "compared with these")
