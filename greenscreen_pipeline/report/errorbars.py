"""Energy error bars: each run's 95 % interval of sampling and integration
(summary.json's `energy_err_j`, a half-width in joules), drawn where it is finite and
left out where it is NaN (an estimate, or an older run folder that has none).

Nothing here draws random numbers: the bars are a function of the run table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .layout import EnergyUnit

ENERGY_BARS = "95 % interval of sampling and integration (not the sensor's own accuracy)"


def energy_errors(runs: pd.DataFrame, unit: EnergyUnit) -> np.ndarray:
    """Each run's energy half-width in `unit`, NaN where it has none.

    Args:
        runs: The run table (collect.load_sweep), with or without `energy_err_j`.
        unit: The report's energy unit.

    Returns:
        One half-width per row of `runs`, in the order of its rows.
    """
    if "energy_err_j" not in runs:
        return np.full(len(runs), np.nan)
    err = pd.to_numeric(runs["energy_err_j"], errors="coerce").to_numpy(float)
    return np.where(np.isfinite(err) & (err >= 0), err / unit.joules, np.nan)


def draw_energy_errors(ax, x, y, err: np.ndarray, horizontal: bool, colour: str,
                       label: bool = True):
    """Error bars on the runs whose energy has an interval; none on the others.

    Args:
        ax: The matplotlib axes to draw on.
        x: The runs' x positions (energy when `horizontal`).
        y: The runs' y positions (energy when not `horizontal`).
        err: The half-widths (energy_errors), NaN for no bar.
        horizontal: The energy is on the x axis (xerr), else on the y axis (yerr).
        colour: The bars' colour.
        label: Name the bars in the legend (ENERGY_BARS).

    Returns:
        The ErrorbarContainer, or None where no run has an interval.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(err) & np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        return None
    bars = {"xerr" if horizontal else "yerr": err[keep]}
    return ax.errorbar(x[keep], y[keep], fmt="none", ecolor=colour, elinewidth=0.8,
                       capsize=2, alpha=0.7, label=ENERGY_BARS if label else None, **bars)
