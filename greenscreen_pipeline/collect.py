"""Load every run folder of a sweep into one pandas DataFrame.

Reads our run folders (parameters.yaml, logs.csv, summary.json, status.json)
and the original pipeline's folders, which have no summary.json: their
logs.csv holds one nvidia-smi reading per epoch plus `pre`/`post` rows. For
those, energy is computed as each epoch row's power times the time since the
previous row, and the energy source says so.

Every run gets an `objective` value, the figure the analysis ranks it by (the sweep's
`settings.objective`, see objective.py): the value results.json recorded, else the test
split's value of the metric (parameters.yaml, results.json), else the last epoch's
validation value in logs.csv. For the default objective, val_accuracy, that is the
`accuracy` column's rule; classification sweeps keep that column too.

Each file of a run is read on its own: one that cannot be read is named in the run's
`warnings` (or, for status.json, its status "unreadable" and the reason), and the run's
other figures are still read from the files that hold them. A run without parameters.yaml
takes its configuration from configuration.json, else from sweep.json's seed and space and
its index (`ranges.configuration`, as the run itself did), with a warning. A run of your
own training loop (`settings.train`) has a `train` column naming it; the built-in
dimensions it did not read are "n/a", as the run recorded them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import ledger, ranges, repeats, sharing
from .objective import Objective
from .provenance import usable_energy
from .records import RunResults, RunSummary
from .runfolder import RunFolder, Unreadable, read_json
from .space import DIMENSIONS, METHOD_DIMENSIONS

COMPONENTS = ("gpu", "cpu", "dram")  # each run's measured split, a column each
# A folder with any of these was trained, or an attempt at it started: attempts.jsonl alone
# is a run stopped before it wrote status.json (interrupted, or failed), still named.
RUN_FILES = ("parameters.yaml", "logs.csv", "status.json", "summary.json", "results.json",
             "attempts.jsonl")
SEED_SOURCE = "computed:power×Δt (seed format, one nvidia-smi sample per epoch)"
PARAMS = list(DIMENSIONS)


def dimensions(sweep_dir: "str | Path") -> list[str]:
    """The sweep's dimensions: the built-in ones, then your own as sweep.json records them
    (the original pipeline's folders have no sweep.json: built-in ones only)."""
    try:
        recorded = (read_json(Path(sweep_dir) / "sweep.json") or {}).get("space", {})
    except Unreadable:
        recorded = {}
    return PARAMS + [dim for dim in recorded if dim not in PARAMS]


def load_run(path: Path, dims: "list[str] | None" = None,
             objective: Objective | None = None) -> dict | None:
    """One run's row, with the values of `dims` (default: the built-in dimensions) and its
    `objective` value (default objective: val_accuracy); an unreadable folder is a row with
    status "unreadable" and the reason."""
    folder = RunFolder(path)
    row = {"run": folder.name, "path": str(path)}
    try:
        return _load(folder, row, dims or PARAMS, objective or Objective())
    except Unreadable as exc:
        return {**row, "status": "unreadable", "reason": str(exc), "format": "greenscreen"}


def _load(folder: RunFolder, row: dict, dims: list[str], objective: Objective) -> dict | None:
    if not any((folder.path / name).exists() for name in RUN_FILES):
        return None  # nothing trained here yet (a claim, a proposal)
    notes: list[str] = []

    def read(reader, default):
        """One file: an unreadable one is noted, and the run is read on without it."""
        try:
            return reader()
        except Unreadable as exc:
            notes.append(str(exc))
            return default

    params = read(folder.parameters, {})
    logs = read(folder.logs, pd.DataFrame())
    if not params:
        params = configuration_of(folder, notes)
    row.update({k: params.get(k) for k in dims if k in params})
    for dim, method in METHOD_DIMENSIONS.items():  # a method's own setting, on other runs
        if dim in row and row.get("method") != method:
            row[dim] = "n/a"
    summary = RunSummary()
    if folder.is_seed_format():
        energy, power, duration = folder.seed_energy()
        if math.isnan(energy):  # an epoch without a reading (logs.csv read again for it)
            joules = folder.seed_epoch_joules()
            missing, epochs = sum(map(math.isnan, joules)), len(joules)
            notes.append(f"logs.csv has no power reading (gpu_power_W) in {missing} of its "
                         f"{epochs} epochs: its energy is unknown, not the other epochs' "
                         "sum")
        try:  # done where the original pipeline finished it, else skipped (runfolder)
            outcome = folder.seed_outcome()
        except Unreadable as exc:
            outcome = {"status": "unreadable", "reason": str(exc)}
        row.update(status=outcome["status"], reason=outcome.get("reason"), energy_j=energy,
                   power_w=power, duration_s=duration, source=SEED_SOURCE, format="seed",
                   energy_err_j=float("nan"))
    else:
        try:
            outcome = folder.outcome()
        except Unreadable as exc:  # its energy still comes from summary.json, if readable
            outcome = {"status": "unreadable", "reason": str(exc)}
        summary = read(folder.summary, None) or RunSummary()
        row.update(status=outcome["status"], reason=outcome.get("reason"),
                   energy_j=summary.energy_j, power_w=summary.power_avg_w,
                   energy_err_j=_number(summary.raw.get("energy_err_j")),  # NaN: none
                   duration_s=summary.duration_s, source=summary.source,
                   attempts=len(summary.attempts) or None, format="greenscreen",
                   **{f"energy_{c}_j": summary.component_energy_j(c) for c in COMPONENTS},
                   **{f"energy_{c}_err_j": component_err_j(summary, c) for c in COMPONENTS},
                   **{f"{c}_source": part.source for c, part in summary.components.items()
                      if c in COMPONENTS})  # why a component's figure is NaN: estimated?
    results = (None if row["format"] == "seed" else read(folder.results, None)) or RunResults()
    if params.get("train") or results.train:  # your own loop ran, not the pipeline's fit
        row["train"] = params.get("train") or results.train
    row["test_accuracy"] = metric_on_test("test_accuracy", params, results, summary)
    row[objective.test_name] = metric_on_test(objective.test_name, params, results, summary)
    for col in dict.fromkeys(("val_accuracy", "accuracy", "loss", "val_loss", objective.name,
                              objective.metric)):
        if col in logs and len(logs):
            values = pd.to_numeric(logs[col], errors="coerce")
            row[f"final_{col}"] = float(values.iloc[-1])
            higher = "acc" in col or (objective.maximise and col in (objective.name,
                                                                      objective.metric))
            row[f"best_{col}"] = float(values.max() if higher else values.min())
    row["objective"] = objective_value(objective, results, row.get(objective.test_name),
                                       row.get(f"final_{objective.name}"))
    if (row["status"] == "done" and math.isnan(_number(row.get(objective.test_name)))
            and results.objective.get("name") != objective.name
            and not math.isnan(row["objective"])):  # ranked beside test values: said
        notes.append(f"no test value recorded ({objective.test_name}): ranked by its last "
                     f"epoch's {objective.name}, a validation value")
    row["n_parameters"] = params.get("n_parameters")
    if params.get("configuration_unknown") and row["status"] == "done":
        row.update(status="unreadable", reason=params["configuration_unknown"])
    notes = [n for n in dict.fromkeys(notes) if n != row.get("reason")]
    if notes and row["status"] in ("done", "stopped"):  # ranked or drawn: say what is missing
        row["warnings"] = "; ".join(notes)
    return row


def configuration_of(folder: RunFolder, notes: list[str]) -> dict:
    """A run's configuration without parameters.yaml: configuration.json (a pareto
    search's proposal), else sweep.json's seed and space at the run's index; notes which.
    {"configuration_unknown": why} where neither says it."""
    missing = "parameters.yaml is missing or unreadable"
    try:
        proposed = folder.configuration()
        sweep = read_json(folder.path.parent / "sweep.json") or {}
    except Unreadable as exc:
        proposed, sweep = None, {}
        notes.append(str(exc))
    if proposed:
        notes.append(f"{missing}: its configuration is read from configuration.json")
        return dict(proposed)
    if sweep.get("space") and "seed" in sweep and folder.name.isdigit():
        notes.append(f"{missing}: its configuration is run {int(folder.name)} of sweep.json's "
                     "seed and space")
        c = repeats.configuration_index(int(folder.name), repeats.of(sweep.get("settings") or {}))
        return ranges.configuration(sweep["space"], sweep["seed"], c)
    return {"configuration_unknown": f"{missing}, and neither configuration.json nor "
                                     "sweep.json says its configuration: it is not ranked"}


def metric_on_test(name: str, params: dict, results: RunResults, summary: RunSummary):
    """A test-split metric as the run recorded it: parameters.yaml first, then results.json
    (folders written before results.json existed kept test_accuracy in summary.json)."""
    if name in params:
        return params[name]
    recorded = {k: v for k, v in results.metrics.items() if v is not None}
    return recorded.get(name, summary.test_accuracy if name == "test_accuracy" else None)


def objective_value(objective: Objective, results: RunResults, test_value,
                    final_validation) -> float:
    """The value a run is ranked by: results.json's objective value (when it names this
    objective), else the test split's value, else the last epoch's validation value."""
    recorded = results.objective
    stated = recorded.get("value") if recorded.get("name") == objective.name else None
    for value in (stated, test_value, final_validation):
        number = _number(value)
        if not math.isnan(number):
            return number
    return float("nan")


def component_err_j(summary: RunSummary, component: str) -> float:
    """A component's 95 % interval in joules, where its figure is measured (the same rule
    as its energy: an estimate has no interval here); NaN where none was recorded."""
    if math.isnan(summary.component_energy_j(component)):
        return float("nan")
    recorded = summary.raw.get(f"energy_{component}_err_j")
    if recorded is None:  # the per-component record, where the top-level key is missing
        recorded = ((summary.raw.get("components") or {}).get(component) or {}).get(
            "energy_err_j")
    return _number(recorded)


def _number(value) -> float:
    """A figure as pandas.to_numeric(errors="coerce") reads it; NaN when it is none."""
    if isinstance(value, bool) or value is None:
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def load_sweep(sweep_dir: "str | Path", objective: Objective | None = None) -> pd.DataFrame:
    """One row per run folder (three-digit names), in run order; `objective` defaults to
    the one sweep.json records (val_accuracy for folders without one)."""
    dims = dimensions(sweep_dir)
    objective = objective or Objective.of_sweep(sweep_dir)
    # In run order: "1000" after "999", not between "100" and "101".
    shares = ledger.shares(Path(sweep_dir))  # the sweep's split of GPUs no run saw into
    rows = [sharing.reattribute(r, shares.get(r["run"]))
            for f in sorted(Path(sweep_dir).iterdir(), key=lambda f: (len(f.name), f.name))
            if f.is_dir() and f.name.isdigit() and (r := load_run(f, dims, objective)) is not None]
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    for col in ("energy_j", "energy_err_j", "power_w", "duration_s", "test_accuracy", "objective",
                *(f"energy_{c}_j" for c in COMPONENTS),
                *(f"energy_{c}_err_j" for c in COMPONENTS)):
        df[col] = pd.to_numeric(df.get(col), errors="coerce")
    if objective.classification:
        # Accuracy: test accuracy, else the final validation accuracy (the objective's rule
        # for val_accuracy; kept for every classification sweep, whatever it ranks by).
        fallback = df["final_val_accuracy"] if "final_val_accuracy" in df else np.nan
        df["accuracy"] = df["test_accuracy"].fillna(fallback)
    df["energy_kwh"] = df["energy_j"] / 3.6e6
    return df


def rankable(df: pd.DataFrame, status: str = "done") -> pd.DataFrame:
    """The rows of `status` that a ranking or a plot can use: an objective value and a usable
    energy figure (`provenance.usable_energy`: finite, above 0 J)."""
    if df.empty:
        return df
    return df[(df["status"] == status) & df["objective"].notna()
              & df["energy_j"].map(usable_energy)]
