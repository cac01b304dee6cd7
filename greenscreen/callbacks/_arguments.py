"""SMICallback's arguments, checked at construction with the library's one error template."""

from __future__ import annotations

from pathlib import Path

from ..validation import check_choice, check_number, invalid
from ..meters import EnergyMeter, PowerSource
from ..meters.registry import SOURCE_NAMES


def check_smi_arguments(log_dir, interval, source, gpus, meter, first_sample_timeout,
                        attribution, **flags) -> None:
    """The callback's arguments, checked at construction with the library's one template."""
    if log_dir is not None and not isinstance(log_dir, (str, Path)):
        raise invalid("log_dir", log_dir, "a folder path (str or pathlib.Path) or None")
    check_number("interval", interval, low=0, low_open=True)
    if not isinstance(source, PowerSource) and source not in SOURCE_NAMES:
        raise invalid("source", source, ", ".join(repr(s) for s in SOURCE_NAMES)
                      + " or a PowerSource instance")
    if gpus is not None and (isinstance(gpus, (str, bytes)) or not all(
            isinstance(g, (int, str)) and not isinstance(g, bool) for g in gpus)):
        raise invalid("gpus", gpus, "None or a list of GPU indices or UUIDs")
    if meter is not None and not isinstance(meter, EnergyMeter):
        raise invalid("meter", meter, "None or a greenscreen EnergyMeter")
    check_number("first_sample_timeout", first_sample_timeout, low=0)
    check_choice("attribution", attribution, ("process", "device"))
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise invalid(name, value, "True or False")
