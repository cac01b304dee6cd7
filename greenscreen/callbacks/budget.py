"""EnergyBudget: stop training once the measured energy passes a budget."""

from __future__ import annotations

import math
import warnings

import keras

from ..validation import check_number, invalid
from ._windows import covered, covers_text, is_estimate


class EnergyBudget(keras.callbacks.Callback):
    """Stops training, like `EarlyStopping`, when measured energy exceeds a budget.

    Reads `energy_j` from the epoch logs, so put it after `SMICallback` in
    the callback list: the total of every component `SMICallback` measures
    (GPUs, CPU packages, DRAM); `covers` lists them, and the message that stops
    training names them, or says that the energy was estimated (`estimated`), where
    `SMICallback` could only estimate it. Each epoch's logs gain `energy_spent_j` and
    `budget_exceeded` (0 or 1). An epoch whose energy is NaN is not counted
    and the callback warns once: it never stops training on a guess.

    Args:
        max_joules: Budget in joules. Give this or `max_kwh`, not both.
        max_kwh: Budget in kilowatt-hours.
        verbose: 1 prints a line when the budget stops training.

    Example:

    ```python
    model.fit(x, y, epochs=100,
              callbacks=[SMICallback(), EnergyBudget(max_kwh=0.5)])
    ```
    """

    def __init__(self, max_joules: float | None = None, max_kwh: float | None = None,
                 verbose: int = 1) -> None:
        super().__init__()
        self.max_joules = max_joules
        self.max_kwh = max_kwh
        self.verbose = verbose
        self.budget_j = self._budget()  # bad arguments raise here, as in Keras

    def _budget(self) -> float:
        if (self.max_joules is None) == (self.max_kwh is None):
            raise invalid("max_joules/max_kwh", (self.max_joules, self.max_kwh),
                          "exactly one of the two, a positive number")
        if self.max_joules is not None:
            return check_number("max_joules", self.max_joules, low=0, low_open=True)
        return check_number("max_kwh", self.max_kwh, low=0, low_open=True) * 3.6e6

    def on_train_begin(self, logs=None):
        self.spent_j = 0.0
        self.stopped_epoch: int | None = None
        self.covers: list[str] = []  # the components counted, e.g. ["gpu", "cpu", "dram"]
        self.estimated = False  # whether what it counts is an estimate (CPU time)
        self._warned = False

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        energy = logs.get("energy_j")
        if energy is None or math.isnan(energy):
            if not self._warned:
                self._warned = True
                why = "no energy_j in logs: put SMICallback before EnergyBudget" \
                    if energy is None else "energy_j is NaN (no measurement)"
                warnings.warn(f"greenscreen: EnergyBudget cannot count this epoch: {why}",
                              RuntimeWarning, stacklevel=2)
        else:
            self.spent_j += float(energy)
            self.covers, self.estimated = covered(logs), is_estimate(logs)
        exceeded = self.spent_j >= self.budget_j
        logs["energy_spent_j"] = self.spent_j
        logs["budget_exceeded"] = float(exceeded)
        if exceeded and self.stopped_epoch is None:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: EnergyBudget stopped training: "
                      f"{self.spent_j:.1f} J spent of a {self.budget_j:.1f} J budget "
                      f"({covers_text(self.covers, self.estimated)}).")
