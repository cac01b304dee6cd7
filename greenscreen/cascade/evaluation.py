"""Heterogeneity of model pairs, and duplicated data for evaluating the memory."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..validation import check_number


def heterogeneity_matrix(models: dict, x: np.ndarray | None, y: np.ndarray) -> pd.DataFrame:
    """Fraction of samples where row model A is wrong and column model B is right.

    `models` maps a name to a Keras model (run on `x`) or to its predictions
    (classes or probability rows). High values mark complementary pairs.
    """
    from .cascade import infer

    y = np.asarray(y).reshape(-1)
    right = {}
    for name, model in models.items():
        pred = np.asarray(model) if isinstance(model, (np.ndarray, list)) else infer(model, x)
        classes = np.argmax(pred, axis=1) if pred.ndim == 2 else pred
        right[name] = classes == y
    names = list(right)
    return pd.DataFrame([[float(np.mean(~right[a] & right[b])) for b in names] for a in names],
                        index=names, columns=names)


def add_duplicates(x: np.ndarray, y: np.ndarray, duplicates: float = 0.0,
                   rotations: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Re-inserts a `duplicates` fraction of the samples; a `rotations` fraction of those
    copies is rotated by 90°, 180° or 270° or flipped. The result is shuffled."""
    check_number("duplicates", duplicates, low=0, high=1)
    check_number("rotations", rotations, low=0, high=1)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x), size=int(round(duplicates * len(x))), replace=False)
    copies = x[pick].copy()
    for i in rng.choice(len(copies), size=int(round(rotations * len(copies))), replace=False):
        op = rng.integers(0, 4)
        copies[i] = np.fliplr(copies[i]) if op == 3 else np.rot90(copies[i], op + 1)
    xs, ys = np.concatenate([x, copies]), np.concatenate([y, y[pick]])
    order = rng.permutation(len(xs))
    return xs[order], ys[order]


def memory_verdict(costs: dict, hit_rate: float, escalation_rate: float) -> dict:
    """Does the memory pay for itself? `costs` holds the cost per 1000 predictions of
    "memory", "small" and "big" (each with "joules" and "seconds"); `escalation_rate` is
    that of the samples the models answered. A hit saves about one small-model prediction
    and, at that rate, one big-model prediction. Compared in joules, or in seconds where an
    energy is 0 or unknown (a window too short for the meter)."""
    rows = [costs[k] for k in ("memory", "small", "big")]
    in_joules = all(np.isfinite(r["joules"]) and r["joules"] > 0 for r in rows)
    unit, symbol = ("joules", "J") if in_joules else ("seconds", "s")
    memory, small, big = (r[unit] for r in rows)
    saved = hit_rate * (small + escalation_rate * big)
    pays = bool(memory < saved)
    note = (f"the memory costs {memory:.3g} {symbol} per 1000 predictions against the big "
            f"model's {big:.3g} {symbol}; its hits ({hit_rate:.1%} of the predictions) save "
            f"about {saved:.3g} {symbol}: it {'pays' if pays else 'does not pay'} on this data")
    return {"pays": pays, "compared_in": unit, "saved_per_1000_predictions": saved,
            "note": note}
