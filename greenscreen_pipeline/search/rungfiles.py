"""Rung records on shared storage: `<run folder>/rungs/<epoch>.json`, one file per rung.

The run process is the one writer of its own rung files (as of the rest of its folder);
every run of the sweep may read them. One small file per rung, written atomically
(temporary file, fsync, rename), because an append to a shared log is not atomic on
NFS and a reader on another node could see half a line. A Slurm array task applies the
halving rule from these files alone: no server, no lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from greenscreen.fileio import atomic_write_json

from ..runfolder import read_json, run_dir
from .halving import RungRecord

RUNGS = "rungs"


def rung_path(folder: "str | Path", epoch: int) -> Path:
    """Where the run in `folder` records rung `epoch`."""
    return Path(folder) / RUNGS / f"{epoch:04d}.json"


def write_rung(folder: "str | Path", record: RungRecord) -> None:
    """Records `record` in the run folder `folder`, atomically.

    A resumed run that reaches the rung again overwrites its own record with the same
    figures (its epoch and energy so far come from the checkpoint and summary.json).
    """
    path = rung_path(folder, record.epoch)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, record.to_json())


def read_rung(folder: "str | Path", epoch: int) -> RungRecord | None:
    """The record of rung `epoch` in `folder`; None if absent.

    Raises:
        runfolder.Unreadable: The file exists but cannot be read.
    """
    data = read_json(rung_path(folder, epoch))
    return None if data is None else RungRecord.from_json(data)


def rung_table(sweep_dir: "str | Path", runs: Iterable[int], epoch: int) -> dict[int, RungRecord]:
    """The records at rung `epoch` of the runs `runs` that have reached it."""
    out = {}
    for run in runs:
        record = read_rung(run_dir(sweep_dir, run), epoch)
        if record is not None:
            out[run] = record
    return out
