"""The (objective, energy) Pareto front and its 2-D hypervolume.

Both are written here in plain numpy rather than imported: scikit-learn has neither, and
Optuna's hypervolume lives in a private module (`optuna._hypervolume`) that may change
under us in any release. In two dimensions the hypervolume is a staircase: sort the front
by energy and add one rectangle per point, O(n log n) in a dozen lines.

Conventions, shared by halving.py and the benchmark: the objective is maximised unless
`maximize=False` (val_loss, say); energy is always minimised. A point whose objective or
energy is NaN is never on the front and adds nothing to the hypervolume.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _as_costs(objective: Sequence[float], energy: Sequence[float],
              maximize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Both axes as costs to minimise; NaN becomes +inf (the worst there is)."""
    obj = np.asarray(objective, dtype=float)
    eng = np.asarray(energy, dtype=float)
    if obj.shape != eng.shape or obj.ndim != 1:
        raise ValueError(f"objective and energy must be 1-D of one length; got {obj.shape} "
                         f"and {eng.shape}")
    cost = -obj if maximize else obj.copy()
    cost[np.isnan(cost)] = np.inf
    eng = np.where(np.isnan(eng), np.inf, eng)
    return cost, eng


def pareto_mask(objective: Sequence[float], energy: Sequence[float],
                maximize: bool = True) -> np.ndarray:
    """Which points no other point dominates.

    A point is dominated when another is at least as good on both axes and better on one;
    equal points therefore stay on the front together. A point with a NaN objective is
    never on the front; a NaN energy counts as the highest energy there is.

    Args:
        objective: One value per point.
        energy: One value per point, joules (lower is better).
        maximize: Whether a higher objective is better.

    Returns:
        A boolean array, True for the points on the front.
    """
    cost, eng = _as_costs(objective, energy, maximize)
    keep = np.zeros(len(cost), dtype=bool)
    if not len(cost):
        return keep
    order = np.lexsort((eng, cost))  # by objective (best first), cheapest first on ties
    best_energy = np.inf
    i = 0
    while i < len(order):
        # Points with the same objective are judged together: among them only the
        # cheapest can be on the front, and only if cheaper than every better point.
        j = i
        while j < len(order) and cost[order[j]] == cost[order[i]]:
            j += 1
        group = order[i:j]
        low = eng[group].min()
        # The best objective is on the front even at an unknown (inf) energy: nothing beats it.
        if (low < best_energy or i == 0) and np.isfinite(cost[order[i]]):
            keep[group[eng[group] == low]] = True
            best_energy = low
        i = j
    return keep


def hypervolume(objective: Sequence[float], energy: Sequence[float],
                reference: tuple[float, float], maximize: bool = True) -> float:
    """The area the points dominate, bounded by the reference point.

    Args:
        objective: One value per point.
        energy: One value per point, joules.
        reference: (objective, energy) of the reference point, worse than the points of
            interest on both axes; points not strictly better on both add nothing.
        maximize: Whether a higher objective is better.

    Returns:
        The area in objective units times joules (0.0 for no point).
    """
    cost, eng = _as_costs(objective, energy, maximize)
    ref_cost = -float(reference[0]) if maximize else float(reference[0])
    ref_energy = float(reference[1])
    inside = (cost < ref_cost) & (eng < ref_energy)
    cost, eng = cost[inside], eng[inside]
    if not len(cost):
        return 0.0
    order = np.lexsort((cost, eng))  # cheapest first, the best objective first on ties
    area, best = 0.0, ref_cost
    energies = np.append(eng[order], ref_energy)
    for k, point in enumerate(order):
        best = min(best, cost[point])  # the best objective at this energy or below
        area += (energies[k + 1] - energies[k]) * (ref_cost - best)
    return float(area)
