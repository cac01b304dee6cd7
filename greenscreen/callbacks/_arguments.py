"""SMICallback's own arguments, checked at construction as Keras callbacks check theirs
(the meter's are `EnergyMeter.check_arguments`')."""

from __future__ import annotations

from pathlib import Path

from ..meters import EnergyMeter
from ..validation import check_number, invalid


def check_arguments(log_dir, meter, first_sample_timeout, resume, **flags) -> None:
    """The callback's own arguments (the meter's are `EnergyMeter.check_arguments`', whose
    rule keeps an estimate, by name or as a `PowerSource` such as `CpuTimeEstimate()`,
    alone)."""
    if log_dir is not None and not isinstance(log_dir, (str, Path)):
        raise invalid("log_dir", log_dir, "a folder path (str or pathlib.Path) or None")
    if meter is not None and not isinstance(meter, EnergyMeter):
        raise invalid("meter", meter, "None or a greenscreen EnergyMeter")
    check_number("first_sample_timeout", first_sample_timeout, low=0)
    if resume is not None and not isinstance(resume, bool):
        raise invalid("resume", resume, "None (continue when a fit resumes), True or False")
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise invalid(name, value, "True or False")
