"""Choose a cascade threshold on a validation split, with measured costs.

Each model's cost per prediction is measured once on the validation data:
wall time, and energy from an `EnergyMeter` (with its provenance). The cost of
threshold t is then small + escalation_rate(t) x big, per prediction.
Choosing a threshold on the test split would leak it into the evaluation:
this function takes `x_val, y_val` on purpose.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..meters import EnergyMeter
from ..provenance import bases
from ..validation import check_integer, check_number
from . import _inputs
from .cascade import buckets, check_same_classes, classes_of, infer
from .memory import PredictionMemory
from .scores import score as score_fn


@dataclass
class ModelCost:
    seconds_per_prediction: float
    joules_per_prediction: float
    source: str


@dataclass
class ThresholdSearch:
    thresholds: np.ndarray
    accuracy: np.ndarray
    escalation_rate: np.ndarray
    seconds_per_prediction: np.ndarray
    joules_per_prediction: np.ndarray
    small_accuracy: float
    big_accuracy: float
    best_threshold: float  # highest accuracy (the cheapest of ties)
    cheapest_matching_threshold: float | None  # within `tolerance` of the big model
    costs: dict = field(default_factory=dict)
    tolerance: float = 0.005
    source: str = "none"  # the provenance of joules_per_prediction (both models' meter)
    energy_reason: str | None = None  # why joules_per_prediction is NaN, where it is

    def as_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                for k, v in self.__dict__.items() if k != "costs"} | {
            "costs": {k: c.__dict__ for k, c in self.costs.items()}}

    def at(self, threshold: float) -> dict:
        """The accuracy, escalation rate and cost per prediction at one threshold of the grid
        (the nearest to `threshold`, a number in [0, 1])."""
        check_number("threshold", threshold, low=0, high=1)
        i = int(np.argmin(np.abs(self.thresholds - threshold)))
        return {"threshold": float(self.thresholds[i]), "accuracy": float(self.accuracy[i]),
                "escalation_rate": float(self.escalation_rate[i]),
                "seconds_per_prediction": float(self.seconds_per_prediction[i]),
                "joules_per_prediction": float(self.joules_per_prediction[i]),
                "source": self.source}

    def summary(self) -> dict:
        """`as_dict` without the per-threshold arrays, with each chosen threshold's row; a
        threshold that does not exist is left out, and `note` says why."""
        out = {"small_accuracy": self.small_accuracy, "big_accuracy": self.big_accuracy,
               "n_threshold_values": len(self.thresholds), "tolerance": self.tolerance,
               "best_threshold": self.best_threshold,
               "at_best_threshold": self.at(self.best_threshold)}
        note = (f"the per-threshold arrays ({len(self.thresholds)} values each) are left out; "
                "find_threshold(...).as_dict() gives them in Python")
        if self.cheapest_matching_threshold is None:
            note += (f"; no threshold reaches the big model's validation accuracy within "
                     f"{self.tolerance}, so cheapest_matching_threshold is left out")
        else:
            out["cheapest_matching_threshold"] = self.cheapest_matching_threshold
            out["at_cheapest_matching_threshold"] = self.at(self.cheapest_matching_threshold)
        costs = {k: c.__dict__ for k, c in self.costs.items()}
        if self.energy_reason is not None:  # the joules are NaN: why
            out["energy_reason"] = self.energy_reason
        return out | {"costs": costs, "source": self.source, "note": note}


def measure(model, x: _inputs.Given, batch_size: int = 256, meter: EnergyMeter | None = None,
            ) -> tuple[np.ndarray, ModelCost]:
    """Predicts `x` and measures the time and energy it took, per prediction, with `meter`
    (started if it is not running), or with an `EnergyMeter("auto")` started for it."""
    _inputs.check_model("model", model)
    _inputs.check_batch_size(batch_size)
    _inputs.check_meter(meter)
    x = _inputs.samples("x", x, empty=False, model=model)
    warm_up(model, x, batch_size)
    return _timed(lambda: infer(model, x, batch_size), len(x), meter)


def warm_up(model, x: np.ndarray, batch_size: int = 256) -> None:
    """Runs `model` once on every padded batch shape `infer` can give it on `x`
    (`cascade.buckets`), so that tracing and compiling fall outside a measured window."""
    for size in buckets(len(x), batch_size):
        infer(model, x[:size], batch_size)


def measure_memory(kind: str, x: np.ndarray, batch_size: int = 256,
                   meter: EnergyMeter | None = None, capacity: int = 10_000) -> ModelCost:
    """The cost per prediction of a `PredictionMemory`'s own work on `x` (keys, lookups,
    and adds of the misses), in a fresh memory, without any model."""
    memory = PredictionMemory(kind, capacity)
    _inputs.check_batch_size(batch_size)
    _inputs.check_meter(meter)
    x = _inputs.samples("x", x, empty=False, inputs=False)
    PredictionMemory(kind).keys(x[:1])  # warm-up: the key layout for this image shape

    def work():
        for start in range(0, len(x), batch_size):
            keys, known = memory.lookup_batch(x[start:start + batch_size])
            memory.add_keys([k for k, p in zip(keys, known) if p is None], [0] * len(keys))

    return _timed(work, len(x), meter)[1]


@contextmanager
def measuring(meter: EnergyMeter | None):
    """`meter`, started if it is not running (and left running: it is the caller's), or
    an `EnergyMeter("auto")` started for the block and stopped after it."""
    if meter is not None:
        if not meter.running:  # started here: its first reading before the first window
            meter.start().wait_for_sample(5.0)
        yield meter
        return
    own = EnergyMeter(interval=0.05).start()
    try:
        own.wait_for_sample(5.0)
        yield own
    finally:
        own.stop()


def _timed(work, n: int, meter: EnergyMeter | None) -> tuple:
    """work()'s result and its cost per prediction over `n` predictions."""
    with measuring(meter) as running, running.window("predict") as w:
        out, seconds = timed_work(work)
    return out, ModelCost(seconds / n, w.energy_j / n, w.source)


def timed_work(work) -> tuple:
    """work()'s result and its seconds. Called inside a meter's window, so that the time
    is the work's alone: closing a window can wait (a GPU meter's first window waits once
    for its first process listing), and that wait is no prediction's."""
    t0 = time.perf_counter()
    out = work()
    return out, time.perf_counter() - t0


def find_threshold(small, big, x_val: _inputs.Given, y_val: np.ndarray, score: str = "difference",
                   n_values: int = 2000, tolerance: float = 0.005, batch_size: int = 256,
                   meter: EnergyMeter | None = None) -> ThresholdSearch:
    """Sweeps `n_values` thresholds in [0, 1] on the validation split.

    `x_val`: one array of samples, or the models' several inputs (a list, tuple or dict of
    arrays); `y_val`: one class per sample of `x_val` ((n,), (n, 1) or one-hot rows). Every
    argument is checked before anything is measured. Both models are measured with one
    meter (`meter`, or one started here), and `joules_per_prediction` adds their joules
    only where both have the same provenance (`source`); otherwise it is NaN and
    `energy_reason` says why."""
    _inputs.check_model("small", small)
    _inputs.check_model("big", big)
    check_integer("n_values", n_values, low=2)
    check_number("tolerance", tolerance, low=0, high=1)
    _inputs.check_batch_size(batch_size)
    _inputs.check_meter(meter)
    x_val = _inputs.samples("x_val", x_val, empty=False, model=small)
    y_val = _inputs.labels("y_val", y_val, len(x_val))
    score_fn(score, np.full((1, 2), 0.5), np.zeros(1))  # validates the name
    check_same_classes(classes_of(small), classes_of(big))
    with measuring(meter) as running:
        small_p, small_c = measure(small, x_val, batch_size, running)
        big_p, big_c = measure(big, x_val, batch_size, running)
    check_same_classes(small_p.shape[1], big_p.shape[1])
    source, energy_reason = _joint_source(small_c, big_c)
    s = score_fn(score, small_p, y_val)
    small_right, big_right = _right(small_p, y_val), _right(big_p, y_val)
    # Escalated, a NaN row of the big model keeps the small model's answer (Cascade's rule)
    escalated_right = np.where(np.isnan(big_p).any(axis=1), small_right, big_right)
    ts = np.linspace(0.0, 1.0, n_values)
    order = np.sort(s[~np.isnan(s)])
    # Per threshold, the samples escalated are those scoring below it (a NaN score too):
    # counted from the sorted scores, in O(samples + thresholds) memory, not a
    # thresholds x samples matrix (2 GB at 500 000 samples).
    below = np.searchsorted(order, ts, side="left") + int(np.isnan(s).sum())
    rate = below / len(s)
    by_score = np.argsort(np.where(np.isnan(s), -np.inf, s), kind="stable")
    gain = np.concatenate([[0], np.cumsum((escalated_right.astype(int)
                                           - small_right.astype(int))[by_score])])
    acc = (small_right.sum() + gain[below]) / len(s)
    secs = small_c.seconds_per_prediction + rate * big_c.seconds_per_prediction
    joules = small_c.joules_per_prediction + rate * big_c.joules_per_prediction
    if energy_reason is not None:
        joules = np.full_like(rate, np.nan)
    best = int(np.flatnonzero(acc == acc.max())[np.argmin(rate[acc == acc.max()])])
    ok = np.flatnonzero(acc >= big_right.mean() - tolerance)
    cheapest = float(ts[ok[np.argmin(rate[ok])]]) if len(ok) else None
    return ThresholdSearch(ts, acc, rate, secs, joules, float(small_right.mean()),
                           float(big_right.mean()), float(ts[best]), cheapest,
                           {"small": small_c, "big": big_c}, tolerance, source,
                           energy_reason)


def _right(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which rows answer their label; a NaN row (a model that diverged) answers none."""
    return (np.argmax(p, axis=1) == y) & ~np.isnan(p).any(axis=1)


def _joint_source(small: ModelCost, big: ModelCost) -> tuple[str, str | None]:
    """The provenance of the two models' joules added up, and why they cannot be, if so:
    a measurement and an estimate (or two sources) are never added into one figure."""
    if small.source == big.source:
        return small.source, None
    if bases(small.source) == bases(big.source):  # only the attribution
        return f"{small.source} + {big.source}", None  # differs (another process came)
    return "none", (f"the small model's energy was {small.source} and the big model's "
                    f"{big.source}: they are not added into one figure")
