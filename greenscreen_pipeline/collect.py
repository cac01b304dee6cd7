"""Load every run folder of a sweep into one pandas DataFrame.

Reads our run folders (parameters.yaml, logs.csv, summary.json, status.json)
and the original pipeline's folders, which have no summary.json: their
logs.csv holds one nvidia-smi reading per epoch plus `pre`/`post` rows. For
those, energy is computed as each epoch row's power times the time since the
previous row, and the energy source says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .records import RunResults, RunSummary
from .runfolder import RunFolder, Unreadable, read_json
from .space import DIMENSIONS, METHOD_DIMENSIONS

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


def load_run(path: Path, dims: "list[str] | None" = None) -> dict | None:
    """One run's row, with the values of `dims` (default: the built-in dimensions); an
    unreadable folder is a row with status "unreadable" and the reason."""
    folder = RunFolder(path)
    row = {"run": folder.name, "path": str(path)}
    try:
        return _load(folder, row, dims or PARAMS)
    except Unreadable as exc:
        return {**row, "status": "unreadable", "reason": str(exc), "format": "greenscreen"}


def _load(folder: RunFolder, row: dict, dims: list[str]) -> dict | None:
    params = folder.parameters()
    if not params and not (folder.path / "logs.csv").exists():
        return None
    logs = folder.logs()
    row.update({k: params.get(k) for k in dims if k in params})
    for dim, method in METHOD_DIMENSIONS.items():  # a method's own setting, on other runs
        if dim in row and row.get("method") != method:
            row[dim] = "n/a"
    summary = RunSummary()
    if folder.is_seed_format():
        energy, power, duration = folder.seed_energy()
        row.update(status="done", energy_j=energy, power_w=power, duration_s=duration,
                   source=SEED_SOURCE, format="seed")
    else:
        outcome, summary = folder.outcome(), folder.summary() or RunSummary()
        row.update(status=outcome["status"], reason=outcome.get("reason"),
                   energy_j=summary.energy_j, power_w=summary.power_avg_w,
                   duration_s=summary.duration_s, source=summary.source,
                   attempts=len(summary.attempts) or None, format="greenscreen")
    results = (None if row["format"] == "seed" else folder.results()) or RunResults()
    # Folders written before results.json existed kept test metrics in summary.json.
    row["test_accuracy"] = params.get("test_accuracy", results.test_accuracy
                                      if results.test_accuracy is not None
                                      else summary.test_accuracy)
    for col in ("val_accuracy", "accuracy", "loss", "val_loss"):
        if col in logs and len(logs):
            values = pd.to_numeric(logs[col], errors="coerce")
            row[f"final_{col}"] = float(values.iloc[-1])
            row[f"best_{col}"] = float(values.max() if "acc" in col else values.min())
    row["n_parameters"] = params.get("n_parameters")
    return row


def load_sweep(sweep_dir: "str | Path") -> pd.DataFrame:
    """One row per run folder (three-digit names), in run order."""
    dims = dimensions(sweep_dir)
    # In run order: "1000" after "999", not between "100" and "101".
    rows = [r for f in sorted(Path(sweep_dir).iterdir(), key=lambda f: (len(f.name), f.name))
            if f.is_dir() and f.name.isdigit() and (r := load_run(f, dims)) is not None]
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    for col in ("energy_j", "power_w", "duration_s", "test_accuracy"):
        df[col] = pd.to_numeric(df.get(col), errors="coerce")
    # Accuracy used for ranking: test accuracy, else the final validation accuracy.
    fallback = df["final_val_accuracy"] if "final_val_accuracy" in df else np.nan
    df["accuracy"] = df["test_accuracy"].fillna(fallback)
    df["energy_kwh"] = df["energy_j"] / 3.6e6
    return df

