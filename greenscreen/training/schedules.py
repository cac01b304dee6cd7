"""Schedules shared by the efficient-training methods, with their validation."""

from __future__ import annotations

from ..choices import PERCENT_SCHEDULES
from ..validation import check_choice, check_integer, check_number, invalid


def check_percentages(high: float, low: float, schedule: str) -> None:
    """Validates a decaying-percentage schedule's arguments in one place."""
    check_number("high_percentage", high, low=0, high=100, low_open=True)
    check_number("low_percentage", low, low=0, high=100, low_open=True)
    if low > high:
        raise invalid("low_percentage", low, f"a number <= high_percentage ({high!r})")
    check_choice("schedule", schedule, PERCENT_SCHEDULES)


def update_percentage(epoch: float, epochs: float, high: float, low: float,
                      schedule: str = "linear") -> float:
    """The share (in %) of weights or layers updated at `epoch` of `epochs`.

    linear: high - (high - low) * e / E;  exponential: high * (low / high) ** (e / E).
    `e / E` is clipped to [0, 1], so the value stays in [low, high].
    """
    frac = min(max(epoch / epochs, 0.0), 1.0) if epochs > 0 else 1.0
    if schedule == "linear":
        return high - (high - low) * frac
    if schedule == "exponential":
        return high * (low / high) ** frac
    raise invalid("schedule", schedule, "one of 'linear', 'exponential'")


def check_sparsity_schedule(initial_sparsity: float, final_sparsity: float, begin_step: int,
                            end_step: int, frequency: int) -> None:
    """Validates a pruning schedule's arguments in one place: sparsities in [0, 1), and
    `begin_step`, `end_step` and `frequency` integers (they count optimizer steps)."""
    check_number("initial_sparsity", initial_sparsity, low=0, high=1, high_open=True)
    check_number("final_sparsity", final_sparsity, low=0, high=1, high_open=True)
    if final_sparsity < initial_sparsity:
        raise invalid("final_sparsity", final_sparsity, f">= initial_sparsity ({initial_sparsity})")
    check_integer("begin_step", begin_step, low=0)
    check_integer("end_step", end_step, low=int(begin_step), low_open=True)
    check_integer("frequency", frequency, low=1)


def polynomial_sparsity(step: int, initial_sparsity: float, final_sparsity: float,
                        begin_step: int, end_step: int, power: float = 3.0) -> float:
    """Zhu & Gupta (2017): s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n dt)) ** 3.

    Before `begin_step` the sparsity is `initial_sparsity`; after `end_step`
    it stays at `final_sparsity`.
    """
    frac = (step - begin_step) / (end_step - begin_step)
    frac = min(max(frac, 0.0), 1.0)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - frac) ** power
