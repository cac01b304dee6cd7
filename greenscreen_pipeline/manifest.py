"""sweep.json: which sweep a folder holds, so that two different sweeps never mix in one.

Checked once, by `record`, before any executor starts: the local pool, a Slurm
submission and a Ray sweep all pass through `commands.sweep`.
"""

from __future__ import annotations

import json
from pathlib import Path

from greenscreen.fileio import atomic_write_json

from .errors import UsageError
from .runfolder import read_json
from .space import BASELINE, SweepConfig

FILE = "sweep.json"


class OtherSweep(UsageError):
    """The folder holds a sweep with another seed or search space."""


def record(config: SweepConfig, sweep_dir: Path) -> None:
    """Refuses to mix two different sweeps in one folder; records this sweep otherwise."""
    manifest = Path(sweep_dir) / FILE
    mine = _jsonable({"seed": config.settings["seed"], "space": config.space})
    old = read_json(manifest)
    if old is not None and not same_sweep(old, mine):
        raise OtherSweep(f"{sweep_dir} holds a sweep with another seed or search space; pass "
                         "another --sweep-dir (or delete that folder).")
    atomic_write_json(manifest, {**mine, "config": config.path, "settings": config.settings})


def same_sweep(old: dict, mine: dict) -> bool:
    """Same seed and space. A dimension added since the old sweep was recorded matches
    when it holds only its baseline value, which is what those runs trained with."""
    added = set(mine["space"]) - set(old.get("space", {}))
    baseline = _jsonable({dim: [BASELINE[dim]] for dim in added if dim in BASELINE})
    return old.get("seed") == mine["seed"] and (
        {**old.get("space", {}), **baseline} == mine["space"])


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d))
