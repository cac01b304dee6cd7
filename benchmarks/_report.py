"""Shared by the benchmark scripts: print a JSON report and, if asked, save it."""

from __future__ import annotations

import json
from pathlib import Path


def emit(report: dict, out: "str | Path | None") -> None:
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
