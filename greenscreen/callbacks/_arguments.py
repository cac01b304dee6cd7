"""SMICallback's own arguments, checked at construction as Keras callbacks check theirs
(the meter's are `EnergyMeter.check_arguments`')."""

from __future__ import annotations

import math
from pathlib import Path

from ..meters import EnergyMeter
from ..validation import check_integer, check_number, invalid


def check_arguments(log_dir, meter, first_sample_timeout, resume, **flags) -> None:
    """The callback's own arguments (the meter's are `EnergyMeter.check_arguments`', whose
    rule keeps an estimate, by name or as a `PowerSource` such as `CpuTimeEstimate()`,
    alone)."""
    check_log_dir(log_dir)
    if meter is not None and not isinstance(meter, EnergyMeter):
        raise invalid("meter", meter, "None or a greenscreen EnergyMeter")
    # Finite: a GPU that never reads a power ([N/A]) would hold the fit for ever.
    check_number("first_sample_timeout", first_sample_timeout, low=0, high=math.inf,
                 high_open=True)
    if resume is not None and not isinstance(resume, bool):
        raise invalid("resume", resume, "None (continue when a fit resumes), True or False")
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise invalid(name, value, "True or False")


def backup_deletes(log_dir, others: list) -> str | None:
    """Why a `BackupAndRestore` beside the callback will delete `log_dir` (its backup_dir
    is `log_dir` or a folder above it: Keras deletes that folder when training ends, and
    logs.csv and summary.json with it), or None."""
    import keras

    if log_dir is None:
        return None
    mine = Path(log_dir).resolve()
    for other in others:
        folder = getattr(other, "backup_dir", None)
        if isinstance(other, keras.callbacks.BackupAndRestore) and folder is not None \
                and getattr(other, "delete_checkpoint", True):
            theirs = Path(folder).resolve()
            if mine == theirs or theirs in mine.parents:
                return (f"BackupAndRestore's backup_dir {str(folder)!r} holds log_dir "
                        f"{str(log_dir)!r}: Keras deletes it when training ends, and "
                        "logs.csv and summary.json with it; give BackupAndRestore a folder "
                        "of its own (e.g. log_dir/backup)")
    return None


def check_log_dir(log_dir) -> None:
    """`log_dir`: None, or a folder path (str or pathlib.Path) that is a folder or can be
    made one: neither it nor the nearest of its parents that exists is a file."""
    allowed = "a folder path (str or pathlib.Path) or None"
    if log_dir is None:
        return
    if not isinstance(log_dir, (str, Path)) or not str(log_dir).strip():
        # "": Path("") is the current folder, written into unasked
        raise invalid("log_dir", log_dir, allowed)
    path = Path(log_dir)
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                raise invalid("log_dir", log_dir, f"{allowed}; {str(folder)!r} is a file, "
                              "not a folder")
            return


def check_verbose(verbose) -> None:
    """Keras's `verbose`: a non-negative integer, True taken as 1 as Keras takes it."""
    if not isinstance(verbose, bool):
        check_integer("verbose", verbose, low=0)
