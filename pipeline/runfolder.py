"""The run folder contract: parameters.yaml, logs.csv, summary.json, status.json.

status.json holds pending | running | done | failed | skipped, with the reason
and the traceback's tail when a run failed. Every file is written atomically.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from greenscreen._io import atomic_write_json, atomic_write_text

FINAL = ("done", "failed", "skipped")


def run_dir(sweep_dir: "str | Path", index: int) -> Path:
    return Path(sweep_dir) / f"{index:03d}"


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def status(folder: Path) -> str:
    """The run's state. A 'done' run whose summary is missing or unreadable is half-written."""
    st = read_json(folder / "status.json")
    if st is None:
        return "pending"
    if st.get("status") == "done" and read_json(folder / "summary.json") is None:
        return "half-written"
    return st.get("status", "pending")


def unfinished(sweep_dir: "str | Path", runs: int) -> list[int]:
    """Indices of the runs still to train: not done, failed or skipped."""
    return [i for i in range(runs) if status(run_dir(sweep_dir, i)) not in FINAL]


def statuses(sweep_dir: "str | Path", runs: int) -> list[dict]:
    """Every run's status.json with its index ('pending' where there is none yet)."""
    return [{"index": i, **(read_json(run_dir(sweep_dir, i) / "status.json")
                            or {"status": "pending"})} for i in range(runs)]


def write_status(folder: Path, state: str, **extra) -> None:
    atomic_write_json(folder / "status.json", {"status": state, "time": time.time(), **extra})


def write_parameters(folder: Path, params: dict) -> None:
    atomic_write_text(folder / "parameters.yaml", yaml.safe_dump(params, sort_keys=False))


def update_summary(folder: Path, extra: dict) -> None:
    summary = read_json(folder / "summary.json") or {}
    summary.update(extra)
    atomic_write_json(folder / "summary.json", summary)
