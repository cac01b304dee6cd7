"""Shared by the benchmark scripts: print a JSON report and, if asked, save it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from greenscreen.fileio import atomic_write_text, to_jsonable  # noqa: E402


def emit(report: dict, out: "str | Path | None") -> None:
    """Prints `report` as JSON and writes the same text to `out` atomically (never half a
    file); NaN and infinity are null, so the JSON is standard."""
    text = json.dumps(to_jsonable(report), indent=2, allow_nan=False)
    print(text)
    if out:
        atomic_write_text(out, text + "\n")
