"""SMICallback's files: `logs.csv`, one row per epoch, flushed and synced per row, and
the attempts that `summary.json` totals when a fit is resumed."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import time
from pathlib import Path

from ..fileio import atomic_write_text
from ._windows import COMPONENT_ERR_KEYS, COMPONENT_KEYS

LOG_KEYS = ("energy_j", "energy_err_j", *COMPONENT_KEYS, *COMPONENT_ERR_KEYS, "power_w",
            "power_peak_w", "gpu_temp_c", "gpu_util_pct", "epoch_s",
            "energy_estimated", "energy_total_j", "energy_total_estimated")  # SMICallback's


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)


class CsvRunLog:
    """Appends epoch rows; if a later epoch brings new keys (e.g. `validation_freq`),
    the file is rewritten atomically with the wider header, so nothing is lost."""

    def __init__(self, path: "str | Path") -> None:
        self.path = Path(path)
        self.columns: list[str] = []
        self.rows: list[dict] = []

    def append(self, row: dict) -> None:
        self.rows.append(row)
        new = [k for k in row if k not in self.columns]
        if new or not self.path.exists():
            self.columns += new
            self._rewrite()
            return
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerow([_cell(row.get(c)) for c in self.columns])
            fh.flush()
            os.fsync(fh.fileno())

    def _rewrite(self) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(self.columns)
        for r in self.rows:
            writer.writerow([_cell(r.get(c)) for c in self.columns])
        atomic_write_text(self.path, buf.getvalue())

    def load(self) -> None:
        """Reads the rows already in the file; a row cut short by a kill is left out.
        Raises ValueError, reading nothing, when the file is not a logs.csv (not UTF-8, NUL
        bytes, no epoch column, an epoch that is not a whole number, a broken row)."""
        data = self.path.read_bytes()
        if 0 in data:
            raise ValueError(f"it holds {data.count(0)} NUL bytes")
        try:
            reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
            columns, rows = list(reader.fieldnames or []), list(reader)
        except csv.Error as exc:
            raise ValueError(str(exc)) from exc
        if "epoch" not in columns:
            raise ValueError(f"no epoch column in its header {','.join(columns)[:80]!r}")
        whole = [r for r in rows if None not in r.values() and None not in r]
        if rows[:-1] != whole[:len(rows) - 1] or any(
                not re.fullmatch(r"\d+", r["epoch"]) for r in whole):
            raise ValueError("a row that is not an epoch's")
        self.columns, self.rows = columns, whole
        if len(self.rows) != len(rows):
            self._rewrite()  # appending after a cut-short line would garble the next row

    def set_aside(self, why: str = "unreadable") -> Path:
        """Moves the file to `logs.csv.<why>-<time>` (kept, never deleted) and starts
        with no rows; returns where it went."""
        aside = set_aside(self.path, why)
        self.rows, self.columns = [], []
        return aside

    def mark_lost(self, epochs: int, why: str) -> None:
        """Rows for epochs 0 .. epochs-1 whose figures were lost: energy NaN, and why."""
        self.rows = [{"epoch": e, "energy_j": math.nan, "reason": f"lost: {why}"}
                     for e in range(epochs)] + self.rows
        self.columns = list(dict.fromkeys(["epoch", "energy_j", "reason", *self.columns]))

    def mark_missing(self, epochs: int, why: str) -> list[int]:
        """Rows for the epochs before `epochs` that have none (a file cut short or edited),
        energy NaN and `lost: why`, in epoch order; returns those epochs."""
        have = {int(e) for e in map(_epoch_of, self.rows) if not math.isnan(e)}
        missing = [e for e in range(epochs) if e not in have]
        if missing:
            lost = [{"epoch": e, "energy_j": math.nan, "reason": f"lost: {why}"}
                    for e in missing]
            self.rows = sorted(self.rows + lost, key=_epoch_of)
            self.columns = list(dict.fromkeys(["epoch", "energy_j", *self.columns,
                                               "reason"]))
            self._rewrite()
        return missing

    def drop_from_epoch(self, epoch: int) -> None:
        """Removes the rows of `epoch` and later (a resumed fit trains them again)."""
        kept = [r for r in self.rows if not _epoch_of(r) >= epoch]
        if len(kept) != len(self.rows):
            self.rows = kept
            self._rewrite()

    def end(self) -> int:
        """The epoch after the last one recorded; 0 where none is."""
        epochs = [e for e in map(_epoch_of, self.rows) if not math.isnan(e)]
        return int(max(epochs)) + 1 if epochs else 0

    def has_epochs_before(self, epoch: int) -> bool:
        """Whether a row holds an epoch before `epoch` (a fit starting there continues)."""
        return any(_epoch_of(r) < epoch for r in self.rows)


def set_aside(path: Path, why: str) -> Path:
    """Moves `path` to `<name>.<why>-<time>` beside it (a new name, never over another
    file); returns where it went."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside, n = path.with_name(f"{path.name}.{why}-{stamp}"), 1
    while aside.exists():
        aside, n = path.with_name(f"{path.name}.{why}-{stamp}-{n}"), n + 1
    os.replace(path, aside)
    return aside


def _epoch_of(row: dict) -> float:
    """A row's epoch; NaN (never before or at any epoch) where it is not a number."""
    try:
        return int(row.get("epoch"))
    except (TypeError, ValueError):
        return math.nan


def epoch_row(epoch: int, window, logs: dict, *, val_energy_j: float, reason: str,
              attempt: int) -> dict:
    """logs.csv's row for one epoch: the window's times, every log (numbers as floats),
    the energy keys (the components only where measured), each device's energy, and the
    window's coverage, provenance, sharing and, per component, source or why unmeasured."""
    row = {"epoch": epoch, "t_start": window.t_start, "t_end": window.t_end}
    row.update({k: _float_or_as_is(v) for k, v in logs.items() if k not in LOG_KEYS})
    row.update({k: logs.get(k, math.nan) for k in LOG_KEYS  # components: those measured
                if k in logs or k not in COMPONENT_KEYS + COMPONENT_ERR_KEYS})
    row["val_energy_j"] = val_energy_j
    for dev in window.devices:
        row[f"{dev.component}{dev.index}_energy_j"] = dev.energy_j
    row.update(coverage=window.coverage, source=window.source,
               shared_with=_others(window.shared_with), reason=reason, attempt=attempt)
    for component, cw in window.components.items():
        row[f"{component}_source"] = cw.source
    for component, why in window.unmeasured.items():
        row[f"{component}_unmeasured"] = why
    return row


def _float_or_as_is(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _others(shared_with) -> "int | str":
    """logs.csv's shared_with: the most other processes at once, or "unknown"."""
    if isinstance(shared_with, str):
        return shared_with
    return (shared_with or {}).get("processes", 0)


def read_summary(log_dir) -> dict | None:
    """`log_dir/summary.json`, or None where there is none. One that cannot be read (or
    is not a JSON object) raises RuntimeError, so that no caller overwrites it unread."""
    path = Path(log_dir) / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"{path} cannot be read to resume from it: {exc}") from exc
    if not isinstance(summary, dict):
        raise RuntimeError(f"{path} cannot be read to resume from it: not a JSON object")
    return summary


def earlier_attempts(log_dir) -> list[dict]:
    """The attempts recorded in `log_dir/summary.json` by an earlier, interrupted fit.

    A summary without an attempts list (written before attempts were recorded)
    counts as one attempt. An attempt recorded without its `source` (before attempts
    had one) takes the summary's, as the summary was read then. No summary: none. One
    that cannot be read raises RuntimeError, so that the caller leaves it as it is
    instead of overwriting it."""
    summary = None if log_dir is None else read_summary(log_dir)
    if summary is None:
        return []
    source = summary.get("source")
    if "attempts" in summary:
        return [{**a, "source": a.get("source", source)} if isinstance(a, dict) else a
                for a in summary["attempts"]]
    keys = ("t_start", "t_end", "duration_s", "energy_j", "epochs")
    return [{**{k: summary.get(k, math.nan) for k in keys}, "ended": "completed",
             "source": source}]


def totals(attempts: list[dict], components: "list[str] | None" = None) -> dict:
    """Energy and time over every attempt; NaN if any attempt's energy is unknown.

    `components` totals each of `components` ("gpu", "cpu", "dram"; None: those the last
    attempt measured) over every attempt: NaN where an attempt has no figure for it (an
    attempt recorded before components were, or one that did not measure it)."""
    energy = sum(_number(a.get("energy_j")) for a in attempts)
    duration = sum(_number(a.get("duration_s")) for a in attempts)
    if components is None:
        components = list((attempts[-1].get("components") or {}) if attempts else {})
    parts = components
    components = {c: sum(_number((a.get("components") or {}).get(c)) for a in attempts)
                  for c in parts}
    # Attempts are sampled apart: their intervals' errors are independent (root-sum-square).
    # An attempt recorded without one (before issue 34) makes the total's unknown.
    errors = {c: _rss([(a.get("components_err_j") or {}).get(c) for a in attempts])
              for c in parts}
    return {"duration_s": duration, "energy_j": energy, "energy_kwh": energy / 3.6e6,
            "power_avg_w": energy / duration if duration > 0 else math.nan,
            "energy_err_j": _rss([a.get("energy_err_j") for a in attempts]),
            "components": components, "components_err_j": errors}


def _rss(values: list) -> float:
    numbers = [_number(v) for v in values]
    return math.sqrt(sum(v * v for v in numbers)) if numbers else math.nan


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan
