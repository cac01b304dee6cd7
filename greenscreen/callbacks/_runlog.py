"""The run folder's `logs.csv`: one row per epoch, flushed and synced per row."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from .._io import atomic_write_text

# Column names of the original pipeline's logs.csv, kept so older scripts still read ours.
SEED_COLUMNS = {"gpu_power_W": "power_w", "gpu_temp_C": "gpu_temp_c", "gpu_util_%": "gpu_util_pct"}


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
