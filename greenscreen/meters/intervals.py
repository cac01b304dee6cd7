"""A window's intervals: each device's (from `series.py`) carried through attribution and
combined per component and for the window.

Devices and components are measured by separate sensors and sampled separately, so their
sampling errors are independent: they combine root-sum-square. A device charged a share of
its energy (attribution) is charged the same share of its interval. An estimate has none.
"""

from __future__ import annotations

import math

from .accuracy import ESTIMATE_REASON, sensor_accuracy
from .base import NAN


def rss(values: list[float]) -> float:
    """Root-sum-square of independent half-widths; NaN if any is NaN, 0 for none."""
    if any(math.isnan(v) for v in values):
        return NAN
    return math.sqrt(sum(v * v for v in values))


def fill_errors(window, before: list[float]) -> None:
    """Sets each device's, component's and the window's `energy_err_j` (and the reasons,
    and each component's `sensor_accuracy`). `before`: each device's joules before
    attribution, in `window.devices` order."""
    for d, whole in zip(window.devices, before):
        if d.energy_j != whole and whole and not math.isnan(whole) and not math.isnan(d.energy_j):
            d.energy_err_j *= abs(d.energy_j / whole)
    reasons = []
    for component, cw in window.components.items():
        cw.sensor_accuracy = sensor_accuracy(cw.source)
        if not cw.measured:
            cw.energy_err_j, cw.err_reason = NAN, ESTIMATE_REASON
        else:
            cw.energy_err_j = rss([d.energy_err_j for d in window.devices
                                   if d.component == component]) if cw.devices else NAN
            if math.isnan(cw.energy_err_j):
                cw.err_reason = f"{component}: no interval without its energy" \
                    if math.isnan(cw.energy_j) else f"{component}: too few readings to bound"
        if cw.err_reason:
            reasons.append(cw.err_reason)
    window.energy_err_j = rss([cw.energy_err_j for cw in window.components.values()]) \
        if window.components else NAN
    if math.isnan(window.energy_err_j):
        window.energy_err_reason = "; ".join(reasons) or "nothing measured"
