"""Heterogeneity of model pairs, and duplicated data for evaluating the memory."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..provenance import bases
from ..validation import check_integer, check_number, invalid
from . import _inputs


def heterogeneity_matrix(models: dict, x: np.ndarray | None, y: np.ndarray) -> pd.DataFrame:
    """Fraction of samples where row model A is wrong and column model B is right.

    `models` maps a name to a Keras model (run on `x`) or to its predictions
    (classes or probability rows). High values mark complementary pairs.
    """
    if not isinstance(models, dict) or not models:
        raise invalid("models", models, "a dict of at least one name -> a model or its "
                      "predictions")
    right = {name: _right(name, model, x, y) for name, model in models.items()}
    names = list(right)
    return pd.DataFrame([[float(np.mean(~right[a] & right[b])) for b in names] for a in names],
                        index=names, columns=names)


def _right(name: str, model, x, y) -> np.ndarray:
    """Whether `model` (a model run on `x`, or its predictions: classes or probability
    rows) is right on each sample of `y`."""
    from .cascade import infer
    from .scores import probabilities

    if _inputs.is_model(model):
        pred = infer(model, _inputs.samples("x", x, model=model))
    else:
        pred = _inputs.one_array(f"models[{name!r}]", model)
        if pred.ndim not in (1, 2):
            raise invalid(f"models[{name!r}]", f"<predictions shaped {pred.shape}>",
                          f"a model ({_inputs.MODEL}), or its predictions: one class per "
                          "sample, or one row of class probabilities per sample")
    classes = np.argmax(probabilities(pred), axis=1) if pred.ndim == 2 else pred
    n = len(np.atleast_1d(np.asarray(y)))
    if len(classes) != n:
        raise invalid(f"models[{name!r}]", f"<{len(classes)} predictions>",
                      f"one prediction per label: {n}")
    return classes == _inputs.labels("y", y, len(classes))


def add_duplicates(x: np.ndarray, y: np.ndarray, duplicates: float = 0.0,
                   rotations: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Re-inserts a `duplicates` fraction of the samples; a `rotations` fraction of those
    copies is rotated by 90°, 180° or 270° or flipped (images that are not square: turned
    by 180° or flipped either way, which keep their shape). The result is shuffled."""
    check_number("duplicates", duplicates, low=0, high=1)
    check_number("rotations", rotations, low=0, high=1)
    check_integer("seed", seed, low=0, allow_none=True)  # as np.random.default_rng takes
    x = _inputs.samples("x", x, inputs=False)
    y = _inputs.labels("y", y, len(x))
    if rotations > 0 and x.ndim not in (3, 4):
        raise invalid("rotations", rotations, f"0 for samples that are not images (N, H, W) "
                      f"or (N, H, W, C); x is shaped {x.shape}")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x), size=int(round(duplicates * len(x))), replace=False)
    copies = x[pick].copy()
    for i in rng.choice(len(copies), size=int(round(rotations * len(copies))), replace=False):
        copies[i] = _turned(copies[i], int(rng.integers(0, 4)))
    xs, ys = np.concatenate([x, copies]), np.concatenate([y, y[pick]])
    order = rng.permutation(len(xs))
    return xs[order], ys[order]


def _turned(image: np.ndarray, op: int) -> np.ndarray:
    """One of the dihedral views of `image`: ops 0-2 turn it by 90°, 180°, 270°, op 3
    mirrors it. A quarter turn changes a non-square image's shape, so there ops 0 and 2
    mirror it upside down instead."""
    if op == 3:
        return np.fliplr(image)
    if op != 1 and image.shape[0] != image.shape[1]:
        return np.flipud(image)
    return np.rot90(image, op + 1)


def memory_verdict(costs: dict, hit_rate: float, escalation_rate: float) -> dict:
    """Does the memory pay for itself? `costs` holds the cost per 1000 predictions of
    "memory", "small" and "big" (each with "joules", "seconds" and the joules' "source");
    `escalation_rate` is that of the samples the models answered. A hit saves about one
    small-model prediction and, at that rate, one big-model prediction: the saving is
    modelled from those measured costs (`saving`), not measured with and without the
    memory. Compared in joules where all three are of one provenance (`source`, named in
    the note), else in seconds, as where an energy is 0 or unknown (a window too short for
    the meter): joules of an estimate and of a measurement are never weighed together."""
    rows = [costs[k] for k in ("memory", "small", "big")]
    sources = {bases(r.get("source")) for r in rows}
    in_joules = len(sources) == 1 and all(np.isfinite(r["joules"]) and r["joules"] > 0
                                          for r in rows)
    unit, symbol = ("joules", "J") if in_joules else ("seconds", "s")
    memory, small, big = (r[unit] for r in rows)
    saved = hit_rate * (small + escalation_rate * big)
    pays = bool(memory < saved)
    source = rows[1].get("source") if in_joules else None
    kind = f" ({source})" if source else ""
    note = (f"the memory costs {memory:.3g} {symbol}{kind} per 1000 predictions against the "
            f"big model's {big:.3g} {symbol}; its hits ({hit_rate:.1%} of the predictions) "
            f"save about {saved:.3g} {symbol} (modelled from those costs): it "
            f"{'pays' if pays else 'does not pay'} on this data")
    return {"pays": pays, "compared_in": unit, "saved_per_1000_predictions": saved,
            "saving": "modelled: hit rate x (small + escalation rate x big), each cost "
                      "measured", "source": source, "note": note}
