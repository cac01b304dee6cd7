"""SMICallback's own arguments, checked at construction as Keras callbacks check theirs
(the meter's are `EnergyMeter.check_arguments`')."""

from __future__ import annotations

from pathlib import Path

from ..meters import EnergyMeter, PowerSource
from ..validation import check_number, invalid


def check_arguments(log_dir, meter, first_sample_timeout, resume, source="auto",
                    **flags) -> None:
    """The callback's own arguments (the meter's are `EnergyMeter.check_arguments`').

    `source`: a list may not hold an estimating `PowerSource` (provenance
    "estimated:...", e.g. `CpuTimeEstimate()`) beside another source, as it may not
    hold the name "estimate": an estimate is never added to a measurement."""
    if log_dir is not None and not isinstance(log_dir, (str, Path)):
        raise invalid("log_dir", log_dir, "a folder path (str or pathlib.Path) or None")
    if meter is not None and not isinstance(meter, EnergyMeter):
        raise invalid("meter", meter, "None or a greenscreen EnergyMeter")
    check_number("first_sample_timeout", first_sample_timeout, low=0)
    if isinstance(source, (list, tuple)) and len(source) > 1 and any(
            isinstance(s, PowerSource) and str(s.provenance).startswith("estimated:")
            for s in source):
        raise invalid("source", source, "an estimating PowerSource (provenance "
                      "'estimated:...') alone: an estimate is never added to a measurement")
    if resume is not None and not isinstance(resume, bool):
        raise invalid("resume", resume, "None (continue when a fit resumes), True or False")
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise invalid(name, value, "True or False")
