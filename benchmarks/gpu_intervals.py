"""The real-GPU check's interval part (issue 34 item 2): does each source's 95 % interval
(`energy_err_j`, the error sampling and integration can add) hold NVML's energy counter,
over the check's windows and the fit's epochs, and how wide is it?

The counter is the reference, not the truth: it is a sensor of its own, and the gap
between a power reading and it also holds what the interval leaves out by design (the
sensors' own accuracy; a 1-second mean's lag behind the instantaneous power). So a miss
here is a finding to read, not a proof that the interval is wrong.
"""

from __future__ import annotations

import math
import statistics


def inside(energy_j: float, counter_j: float, err_j: float) -> bool | None:
    """Whether |energy - counter| <= the half-width; None where one of them is missing."""
    if not all(isinstance(v, (int, float)) and math.isfinite(v)
               for v in (energy_j, counter_j, err_j)):
        return None
    return abs(energy_j - counter_j) <= err_j


def summary(result: dict) -> dict:
    """Per source, over the windows and the fit's epochs that have a counter reading and
    an interval: how many, how many the interval holds, the coverage, the median
    half-width and the median |error| (J), and their ratio. {"reason": ...} where the
    counter is unavailable."""
    counter = result.get("counter") or {}
    if not counter.get("available"):
        return {"reason": f"no NVML energy counter to check against: {counter.get('reason')}"}
    pairs: dict[str, list[tuple[float, float]]] = {}
    for row in result.get("windows", []):
        for name, cell in row["sources"].items():
            _add(pairs, name, cell["energy_j"], row["counter_j"], cell.get("energy_err_j"))
    fit = result.get("fit") or {}
    for name, cell in (fit.get("sources") or {}).items():
        for energy, count, err in zip(cell["energy_j"], fit.get("counter_j") or [],
                                      cell.get("energy_err_j") or []):
            _add(pairs, name, energy, count, err)
    out = {}
    for name, rows in pairs.items():
        errors, widths = [e for e, _ in rows], [w for _, w in rows]
        held = sum(e <= w for e, w in rows)
        median_error = statistics.median(errors)
        out[name] = {"checked": len(rows), "inside": held, "coverage": held / len(rows),
                     "median_half_width_j": statistics.median(widths),
                     "median_error_j": median_error,
                     "width_over_error": (statistics.median(widths) / median_error
                                          if median_error > 0 else math.nan)}
    return out


def _add(pairs: dict, name: str, energy, counter, err) -> None:
    if inside(energy, counter, err) is not None:
        pairs.setdefault(name, []).append((abs(energy - counter), err))


def lines(intervals: dict) -> list[str]:
    """The console's lines: one per source."""
    if "reason" in intervals:
        return [f"intervals: {intervals['reason']}"]
    return [f"interval {name}: holds the counter in {s['inside']}/{s['checked']} "
            f"({s['coverage']:.0%}); median half-width {s['median_half_width_j']:.2f} J, "
            f"median |error| {s['median_error_j']:.2f} J ({s['width_over_error']:.2f}x)"
            for name, s in intervals.items()]
