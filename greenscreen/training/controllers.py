"""Threshold controllers for sample gating: today's positional PI, and the AST study's form.

Both move a threshold on scores in [0, 1] so that the EMA of the activation rate
(the share of samples at or above the threshold) tracks a target. Their state
lives in non-trainable Keras variables (`variables`), so they run inside
compiled train steps on every backend.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from ..validation import check_number

_GAINS = {"kp": dict(low=0, high=math.inf, high_open=True),  # name: its interval
          "ki": dict(low=0, high=math.inf, high_open=True),
          "ema": dict(low=0, high=1, high_open=True)}


def check_gains(target_rate: float, **gains: float) -> None:
    """Checks a controller's target and the gains given (`kp`, `ki`, `ema`) in one place.

    Both controllers raise the threshold by kp * error + ki * integral, where
    error = ema(rate) - target is positive when too many samples pass: so kp and ki
    are finite and >= 0 (0 switches a term off); a negative gain moves the threshold
    the wrong way, and the rate runs away from its target until the threshold sticks
    at 0 or 1. `ema`, the weight of the old EMA value, is in [0, 1): at 1 the EMA
    never moves and the controller never sees the rate.
    """
    check_number("target_rate", target_rate, low=0, high=1, low_open=True)
    for name, gain in gains.items():
        check_number(name, gain, **_GAINS[name])


def _state(name: str, value: float) -> keras.Variable:
    return keras.Variable(value, dtype="float32", trainable=False, name=name)


class _Controller:
    """What both controllers share: their state, and the EMA-smoothed error."""

    target: float
    ema_coef: float

    def _init_state(self, threshold: float) -> None:
        self.threshold = _state("threshold", threshold)
        self.rate_ema = _state("rate_ema", self.target)
        self.integral = _state("integral", 0.0)

    @property
    def variables(self) -> list:
        return [self.threshold, self.rate_ema, self.integral]

    def _error(self, rate):
        """Updates the rate's EMA; returns EMA - target (positive: too many samples pass)."""
        ema = self.ema_coef * self.rate_ema.value + (1.0 - self.ema_coef) * ops.cast(
            rate, "float32")
        self.rate_ema.assign(ema)
        return ema - self.target


class PIController(_Controller):
    """Threshold controller with EMA-smoothed input and conditional-integration anti-windup.

    error = ema(rate) - target (too many samples -> positive -> raise threshold);
    threshold = clip(base + kp * error + ki * integral, 0, 1). The integral only
    accumulates while the output is not saturated in the error's direction.
    State lives in non-trainable Keras variables (`variables`).

    Args:
        target_rate: The activation rate to track, in (0, 1].
        kp, ki: Gains, finite and >= 0 (see `check_gains`).
        ema: Weight of the old EMA value, in [0, 1) (0.9: 10 % new).
        base: The threshold at zero error.
        integral_limit: The clamp of the integral.
    """

    def __init__(self, target_rate: float, kp: float = 0.5, ki: float = 0.05,
                 ema: float = 0.9, base: float = 0.5, integral_limit: float = 20.0) -> None:
        check_gains(target_rate, kp=kp, ki=ki, ema=ema)
        self.target, self.kp, self.ki, self.ema_coef = target_rate, kp, ki, ema
        self.base, self.limit = base, integral_limit
        self._init_state(base)

    def update(self, rate):
        error = self._error(rate)
        trial = ops.clip(self.integral.value + error, -self.limit, self.limit)
        raw = self.base + self.kp * error + self.ki * trial
        winding = ops.logical_or(ops.logical_and(raw > 1.0, error > 0),
                                 ops.logical_and(raw < 0.0, error < 0))
        integral = ops.where(winding, self.integral.value, trial)
        self.integral.assign(integral)
        self.threshold.assign(ops.clip(self.base + self.kp * error + self.ki * integral, 0., 1.))
        return self.threshold.value


# The AST study's gains, by target rate; other targets take the nearest one's.
AST_GAINS = {0.10: (0.0015, 0.00005), 0.06: (0.0008, 0.000002)}


class ASTController(_Controller):
    """The AST study's incremental PI controller.

    ema = 0.7 * ema + 0.3 * rate (30 % new); error = ema - target;
    integral += error, clamped to +-`integral_limit` and multiplied by `decay`
    (0.90) whenever it saturates; threshold += kp * error + ki * integral,
    clipped to [0, 1]. Default gains are the study's: kp 0.0015, ki 0.00005 for a
    10 % target and 0.0008, 0.000002 for 6 % (the nearest of the two otherwise).

    Args:
        target_rate: The activation rate to track, in (0, 1].
        kp, ki: Gains, finite and >= 0 (see `check_gains`); None takes `AST_GAINS`
            for the nearest target.
        ema: Weight of the old EMA value, in [0, 1) (0.7: 30 % new).
        integral_limit, decay: The integral clamp and its decay when saturated.
        initial_threshold: The threshold before the first update.
    """

    def __init__(self, target_rate: float, kp: float | None = None, ki: float | None = None,
                 ema: float = 0.7, integral_limit: float = 50.0, decay: float = 0.9,
                 initial_threshold: float = 0.5) -> None:
        check_gains(target_rate, ema=ema, **{k: v for k, v in (("kp", kp), ("ki", ki))
                                             if v is not None})
        nearest = min(AST_GAINS, key=lambda t: abs(t - target_rate))
        self.kp = AST_GAINS[nearest][0] if kp is None else kp
        self.ki = AST_GAINS[nearest][1] if ki is None else ki
        self.target, self.ema_coef = target_rate, ema
        self.limit, self.decay = integral_limit, decay
        self._init_state(initial_threshold)

    def update(self, rate):
        error = self._error(rate)
        integral = self.integral.value + error
        saturated = ops.abs(integral) > self.limit
        integral = ops.where(saturated, ops.clip(integral, -self.limit, self.limit) * self.decay,
                             integral)
        self.integral.assign(integral)
        self.threshold.assign(ops.clip(self.threshold.value + self.kp * error
                                       + self.ki * integral, 0.0, 1.0))
        return self.threshold.value


CONTROLLERS = {"pi": PIController, "ast": ASTController}


def simulate(controller, draw_scores, steps: int) -> list[float]:
    """Runs `controller` on a synthetic score stream; returns the activation rate per step.

    `draw_scores(step)` gives one batch of scores in [0, 1]. Used to check that a
    controller tracks its target (tests, `benchmarks/controllers.py`) without training.
    """
    import numpy as np

    rates = []
    for step in range(steps):
        threshold = float(keras.ops.convert_to_numpy(controller.threshold))
        rate = float(np.mean(draw_scores(step) >= threshold))
        controller.update(rate)
        rates.append(rate)
    return rates
