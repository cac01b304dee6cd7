"""settings.repeats (issue 34 item 4): every configuration trained `repeats` times, each
with its own training seed, and ranked by the repeats' means.

Run folders map to (configuration, repeat) by consecutive indices: run i trains
configuration i // repeats as repeat i % repeats, so runs 000..repeats-1 are the
baseline's repeats. The training seed stays settings.seed + i, as for every run, so each
repeat has its own seed, derived from its index alone. Every run folder stays an
independent run: claims, resume, --retry-failed and the energy budget work on folders as
before, and a finished repeat is never trained again. `settings.runs` counts trainings
(run folders), so a sweep costs what it did per run; it must be a multiple of `repeats`
unless the budget ends the sweep (which may then leave the last configuration with fewer
repeats: its mean is over the repeats that finished, and says how many).

`early_stop: halving` is refused with repeats > 1: halving stops one run at a rung
against its batch's peers, and a configuration's repeats would be judged apart, on one
seed each, which is the noise repeats exist to average out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from . import budget, ranges
from .runfolder import Unreadable, read_json
from .yamlload import ConfigError

if TYPE_CHECKING:  # pandas and the search load only where a sweep is read, not config.yaml
    import pandas as pd

    from .search.propose import Result

ALLOWED = ("a positive integer: how many times each configuration trains, each time with "
           "its own training seed (1: once)")
# Figures averaged over a configuration's finished repeats; the rest are the first's.
AVERAGED = ("objective", "duration_s", "accuracy", "test_accuracy")
# The energy's figures, averaged over the repeats whose energy was obtained one way only
# (`one_kind`): an estimate averaged into a measurement would read as one.
ENERGY = ("energy_j", "power_w", "energy_kwh")


def of(settings: Mapping) -> int:
    """settings.repeats, 1 where the settings predate it."""
    return int(settings.get("repeats") or 1)


def of_sweep(sweep_dir: "str | Path") -> int:
    """The repeats sweep.json records; 1 for a sweep without them or an unreadable one."""
    try:
        recorded = read_json(Path(sweep_dir) / "sweep.json") or {}
    except Unreadable:
        return 1
    return of(recorded.get("settings") or {})


def configuration_index(run: int, repeats: int) -> int:
    """Which configuration run `run` trains (the random search's index of it)."""
    return run // repeats


def runs_of(configuration: int, repeats: int) -> range:
    """The run indices of one configuration's repeats."""
    return range(configuration * repeats, (configuration + 1) * repeats)


def check(path: str, settings: dict) -> None:
    """Raises ConfigError where `runs` splits a configuration's repeats, or halving is
    asked for with repeats (module docstring)."""
    repeats = settings["repeats"]
    if repeats == 1:
        return
    if settings["early_stop"] == "halving":
        raise ConfigError(path, "settings.early_stop", "halving",
                          f"off with settings.repeats {repeats} (or settings.repeats 1 with "
                          "halving): halving stops each run at its rungs on one seed's "
                          "figures, not on a configuration's mean over its repeats")
    runs = settings["runs"]
    if runs % repeats and not budget.unbounded(settings):
        lower = max(repeats, runs // repeats * repeats)
        raise ConfigError(path, "settings.runs", runs,
                          f"a multiple of settings.repeats ({repeats}), e.g. {lower} or "
                          f"{lower + repeats}: runs counts trainings, and each configuration "
                          f"trains {repeats} times")


def means(ok: pd.DataFrame, repeats: int) -> pd.DataFrame:
    """The finished runs as one row per configuration: the repeats' means of every
    figure in AVERAGED and ENERGY, `energy_err_j` the energy mean's 95 % interval (NaN
    where a repeat has none), `repeats` (how many finished), `objective_sd` and
    `energy_sd` (sample SD, NaN for one), `repeat_runs` (the folders); `run` names the
    first finished repeat, whose configuration every repeat shares. The energy's figures
    and `source` are of the repeats whose energy was obtained one way (`one_kind`); the
    others are named in `energy_set_aside`, and why in `energy_set_aside_why` ("" where
    none). `ok` as it is when repeats is 1."""
    import pandas as pd

    if repeats == 1 or ok.empty:
        return ok
    index = pd.to_numeric(ok["run"], errors="coerce")
    rows = []
    for _, group in ok.groupby(index // repeats, sort=True):
        row = group.iloc[0].copy()
        for column in AVERAGED:
            if column in group:
                row[column] = pd.to_numeric(group[column], errors="coerce").mean()
        same, aside = one_kind(group)
        _energy_of(row, same)
        row["repeats"] = len(group)
        row["objective_sd"] = _sd(group["objective"])
        row["energy_sd"] = _sd(same["energy_j"])
        row["repeat_runs"] = " ".join(group["run"])
        row["energy_set_aside"] = " ".join(aside["run"])
        row["energy_set_aside_why"] = _set_aside_why(same, aside)
        rows.append(row)
    return pd.DataFrame(rows).reset_index(drop=True)


def one_kind(group: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A configuration's repeats split into those whose energy its mean is of and those
    set aside: the repeats of one energy kind (provenance.energy_kind: how the energy
    was obtained), the kind relevance.chosen_energy_kind picks (measured first, then the
    most repeats, then the first repeat's), the rule every reader of several runs'
    energy follows."""
    from .provenance import energy_kind
    from .relevance import chosen_energy_kind

    if "source" not in group:
        return group, group.iloc[:0]
    kinds = group["source"].map(energy_kind)
    chosen = chosen_energy_kind(kinds)
    return group[kinds == chosen], group[kinds != chosen]


def _energy_of(row: pd.Series, same: pd.DataFrame) -> None:
    """`row`'s energy figures and provenance from the repeats `same` alone."""
    import pandas as pd

    for column in ENERGY:
        if column in same:
            row[column] = pd.to_numeric(same[column], errors="coerce").mean()
    if "energy_err_j" in same:  # the mean's interval: independent errors, root-sum-square
        errors = pd.to_numeric(same["energy_err_j"], errors="coerce")
        row["energy_err_j"] = math.sqrt((errors ** 2).sum(skipna=False)) / len(same)
    if "source" in same:
        row["source"] = merged_source(same["source"])


def merged_source(sources: pd.Series) -> str:
    """The provenance of a mean over runs of one energy kind: each power source's base as
    the first run wrote it, with every attribution any run's figure carries (in the order
    first written), so that a mean with a shared GPU's attributed share in it never reads
    as a plain measurement (provenance.energy_kind drops attributions)."""
    from .provenance import parts

    written = [s for s in sources if isinstance(s, str)]
    if len(set(written)) < 2:
        return sources.iloc[0]
    pieces = [parts(s) for s in written]
    out = []
    for k, (base, _) in enumerate(pieces[0]):
        extra = dict.fromkeys(e for p in pieces if k < len(p) for e in p[k][1])
        out.append(";".join([base, *extra]))
    return " + ".join(out)


def _set_aside_why(same: pd.DataFrame, aside: pd.DataFrame) -> str:
    """Why a configuration's energy mean leaves out the repeats `aside`, or ""."""
    if aside.empty:
        return ""
    from .provenance import energy_kind

    kinds = ", ".join(sorted(set(aside["source"].map(energy_kind))))
    return (f"the energy of repeat(s) {', '.join(aside['run'])} was obtained otherwise "
            f"({kinds}), so the configuration's energy is the mean of its {len(same)} "
            f"repeat(s) {energy_kind(same['source'].iloc[0])} only: energies obtained in "
            "different ways (an estimate above all) are never averaged into one figure")


def _sd(values: pd.Series) -> float:
    import pandas as pd

    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.std(ddof=1)) if len(values) > 1 else math.nan


def summary(table: pd.DataFrame, repeats: int) -> dict:
    """analysis.json's `repeats`: the setting, the configurations ranked, how many have
    every repeat finished, and the pooled SD of the objective and the energy over the
    configurations finished more than once (NaN figures as None)."""
    many = table[table["repeats"] > 1] if "repeats" in table else table.iloc[:0]
    complete = int((table["repeats"] == repeats).sum()) if "repeats" in table else 0
    aside = set_aside(table)
    return {"repeats": repeats, "configurations": len(table), "complete": complete,
            "objective_sd": _pooled(many, "objective_sd"),
            "energy_sd": _pooled(many, "energy_sd"),
            **({"energy_set_aside": aside} if aside else {})}


def set_aside(table: pd.DataFrame) -> list[dict]:
    """Each configuration whose energy mean leaves repeats out (`means`): its `run`, the
    repeats set aside (`runs`) and the `reason`, as analysis.json lists what it left out."""
    if "energy_set_aside" not in table:
        return []
    rows = table[table["energy_set_aside"].astype(str) != ""]
    return [{"run": r["run"], "runs": r["energy_set_aside"].split(),
             "reason": r["energy_set_aside_why"]} for _, r in rows.iterrows()]


def _pooled(table: pd.DataFrame, column: str) -> float | None:
    """The pooled SD of groups of `repeats` runs each, from their own SDs."""
    dof = (table["repeats"] - 1).sum() if not table.empty else 0
    if not dof:
        return None
    return float(math.sqrt(((table["repeats"] - 1) * table[column] ** 2).sum() / dof))


def told(results: list[Result], repeats: int) -> list[Result]:
    """A pareto search's recorded runs as its sampler is told them: one result per
    configuration, indexed by configuration, with its finished repeats' mean objective
    and energy; a configuration none of whose repeats finished keeps its first repeat's
    state (failed or skipped), so the sampler learns nothing from it and does not
    propose it again.

    The energy mean is over the finished repeats of one energy kind (each result's
    `energy_source`; `one_kind`'s rule: relevance.chosen_energy_kind), as the analysis
    ranks the configuration, never a measured repeat averaged with an estimated one; a
    result without a source is of an unknown kind ("none"), which a measured repeat
    outranks. Across configurations the
    sampler is still told energies of whatever kind each has: it is what the optimizer
    sees to propose the next batch, never a figure reported or compared (analysis and
    report judge the runs by kind), and leaving a configuration out would have it
    proposed again."""
    from .search.propose import Result

    if repeats == 1:
        return results
    out: dict[int, list[Result]] = {}
    for result in results:
        out.setdefault(configuration_index(result.run, repeats), []).append(result)
    merged = []
    for c, group in sorted(out.items()):
        done = [r for r in group if r.state == "done"]
        if not done:
            merged.append(Result(c, group[0].config, group[0].state))
            continue
        energy = _one_kind_energy(done)
        merged.append(Result(c, done[0].config, "done",
                             math.fsum(r.objective for r in done) / len(done),
                             math.fsum(energy) / len(energy)))
    return merged


def _one_kind_energy(done: list[Result]) -> list[float]:
    """The energies of the finished repeats `done` of one energy kind (`told`)."""
    import pandas as pd

    from .provenance import energy_kind
    from .relevance import chosen_energy_kind

    kinds = pd.Series([energy_kind(r.energy_source) for r in done])
    chosen = chosen_energy_kind(kinds)
    return [r.energy_j for r, k in zip(done, kinds) if k == chosen]


# The columns a ranked table adds: the repeats' count, their SDs, their run folders and
# those whose energy the mean leaves out (obtained another way).
SPREAD = ("repeats", "objective_sd", "energy_sd", "repeat_runs", "energy_set_aside")


def records(table: pd.DataFrame) -> list[dict]:
    """A ranked table's rows for analysis.json: each row's `repeat_runs` (where the table
    is of means) as a list of run folders, as the recommendation has them."""
    rows = table.to_dict("records")
    for row in rows:
        for column in ("repeat_runs", "energy_set_aside"):
            if isinstance(row.get(column), str):
                row[column] = row[column].split()
    return rows


def ranked(sweep_dir: "str | Path", ok: pd.DataFrame, result: dict) -> pd.DataFrame:
    """What the rankings, the front and the recommendation read: the finished runs, or
    their means per configuration where sweep.json records repeats (then `result` gets
    `repeats`, the `summary`)."""
    n = of_sweep(sweep_dir)
    table = means(ok, n)
    if n > 1:
        result["repeats"] = summary(table, n)
    return table


def describe(rec: dict | None, table: pd.DataFrame) -> dict | None:
    """The recommendation with its configuration's repeats, SDs and run folders, where
    the table is of means; as it is otherwise."""
    if not rec or not rec.get("run") or "repeat_runs" not in table:
        return rec
    row = table[table["run"] == rec["run"]].iloc[0]
    aside = str(row.get("energy_set_aside") or "").split()
    return {**rec, "repeats": int(row["repeats"]), "repeat_runs": row["repeat_runs"].split(),
            "objective_sd": _plain(row["objective_sd"]), "energy_sd": _plain(row["energy_sd"]),
            **({"energy_set_aside": aside, "energy_set_aside_why": row["energy_set_aside_why"]}
               if aside else {})}


def words(result: dict) -> list[str]:
    """The console's line on repeats, or none."""
    info = result.get("repeats")
    if not info:
        return []
    sd = ", ".join(f"{k} {info[k + '_sd']:.4g}" for k in ("objective", "energy")
                   if info[k + "_sd"] is not None) or "n/a"
    lines = [f"{info['repeats']} repeats per configuration, ranked by their means: "
             f"{info['configurations']} configuration(s), {info['complete']} with every "
             f"repeat finished; seed-to-seed SD (pooled): {sd}"]
    rec = result.get("recommendation") or {}
    if rec.get("repeat_runs"):
        lines.append(f"the recommendation is the mean of {rec['repeats']} repeat(s): runs "
                     + ", ".join(rec["repeat_runs"]))
    for entry in info.get("energy_set_aside", []):
        lines.append(f"configuration of run {entry['run']}: {entry['reason']}")
    return lines


def _plain(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def beyond_space(space: Mapping, settings: Mapping) -> str | None:
    """What happens when the configurations `runs` asks for exceed the space's, in words
    (ranges.repeats, in configurations where settings.repeats is above 1); else None."""
    n, runs, total = of(settings), settings["runs"], ranges.size(space)
    if n == 1:
        return ranges.repeats(space, runs)
    if total is None or runs // n <= total:
        return None
    return (f"settings.runs {runs} with settings.repeats {n} is {runs // n} configurations, "
            f"but the space holds {total}: after each has trained {n} times, further runs "
            "train them again, in another order and with other training seeds (seed + run)")
