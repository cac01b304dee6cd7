"""EnergyBudget: stop training once the measured energy passes a budget."""

from __future__ import annotations

import math
import warnings

import keras

from ..validation import check_number, invalid
from ._arguments import check_verbose
from ._lock import beside
from ._windows import covered, covers_text, is_estimate
from .smi import SMICallback


class EnergyBudget(keras.callbacks.Callback):
    """Stops training, like `EarlyStopping`, when measured energy exceeds a budget.

    Reads the energy from the epoch logs, so put it after `SMICallback` in the callback
    list. What it counts as spent is `SMICallback`'s running total, `energy_total_j`:
    the `energy_j` its `summary.json` holds at that epoch's end, so the line that stops
    training and `summary.json` agree. That is everything measured since the fit began,
    the time between epochs included (set-up, other callbacks' work such as
    checkpoints), and, where `SMICallback` resumes an interrupted fit's `log_dir`
    (`resume=True`, or a `BackupAndRestore` resume), every earlier attempt's energy too:
    energy spent is never forgotten. With no `energy_total_j` in the logs (an
    `energy_j` from another callback), or where it is NaN (an earlier attempt's energy
    is unknown), it adds up the epochs' `energy_j` instead, and says so once.

    The energy is the total of every component `SMICallback` measures (GPUs, CPU
    packages, DRAM); `covers` lists them, and the message that stops training names
    them, or says that the energy was estimated (`estimated`), in whole
    ("energy_j estimated, not measured") or in part ("in part estimated: GPU measured,
    the rest estimated"), where any of it is the CPU-time estimate. Each epoch's logs
    gain `energy_spent_j` and `budget_exceeded` (0 or 1). An epoch whose energy is NaN
    is not counted and the callback warns once: it never stops training on a guess.

    Args:
        max_joules: Budget in joules. Give this or `max_kwh`, not both.
        max_kwh: Budget in kilowatt-hours.
        verbose: 1 prints a line when the budget stops training.

    Example:

    ```python
    model.fit(x, y, epochs=100,
              callbacks=[SMICallback(), EnergyBudget(max_kwh=0.5)])
    ```

    A fit that resumes counts what its interrupted attempts spent:

    ```python
    smi = SMICallback(log_dir="run-1")
    callbacks = [smi, EnergyBudget(max_joules=400),
                 keras.callbacks.BackupAndRestore("run-1/backup")]
    try:
        model.fit(x, y, epochs=30, callbacks=callbacks)
    except KeyboardInterrupt:  # after 6 epochs: what they spent stays in summary.json
        smi.close()
    model.fit(x, y, epochs=30, callbacks=callbacks)  # resumes at epoch 6, counts it all
    ```

    Where the earlier attempts already spent the budget, the resumed fit stops after its
    first batch (Keras trains at least one) and the line says so.
    """

    def __init__(self, max_joules: float | None = None, max_kwh: float | None = None,
                 verbose: int = 1) -> None:
        super().__init__()
        self.max_joules = max_joules
        self.max_kwh = max_kwh
        self.verbose = verbose
        self.budget_j = self._budget()  # bad arguments raise here, as in Keras
        check_verbose(verbose)

    def _budget(self) -> float:
        if (self.max_joules is None) == (self.max_kwh is None):
            raise invalid("max_joules/max_kwh", (self.max_joules, self.max_kwh),
                          "exactly one of the two, a positive number")
        # Finite: an infinite budget is no budget (leave EnergyBudget out)
        if self.max_joules is not None:
            return check_number("max_joules", self.max_joules, low=0, low_open=True,
                                high=math.inf, high_open=True)
        joules = check_number("max_kwh", self.max_kwh, low=0, low_open=True, high=math.inf,
                              high_open=True) * 3.6e6
        if not math.isfinite(joules):  # above about 5e301 kWh: no budget either
            raise invalid("max_kwh", self.max_kwh, "a number in (0, inf) whose joules are "
                          "finite (at most about 5e301 kWh)")
        return joules

    def on_train_begin(self, logs=None):
        self.spent_j = 0.0
        self.stopped_epoch: int | None = None
        self.stop_reason: str | None = None
        self.covers: list[str] = []  # the components counted, e.g. ["gpu", "cpu", "dram"]
        self.estimated = False  # whether what it counts is, even in part, an estimate
        self._warned: set[str] = set()
        self._began = False  # this fit's first epoch has begun

    def on_epoch_begin(self, epoch, logs=None):
        # A fit that continues earlier attempts may have spent the budget before its first
        # epoch: it stops now, after one batch (Keras checks `stop_training` after each),
        # not after a whole epoch more.
        if getattr(self, "_began", True):  # True: hooks called without on_train_begin
            return
        self._began = True
        try:
            before = next((c.energy_so_far() for c in beside(self)
                           if isinstance(c, SMICallback)), None)
        except Exception as exc:  # measurement never stops training: counted from the
            # first epoch's end instead, as before a resume was known
            self._warn_once("before", "could not read what the fit spent before its first "
                                      f"epoch ({type(exc).__name__}: {exc}); it counts from "
                                      "the first epoch's end")
            return
        if before is None or math.isnan(before["energy_total_j"]):
            return
        self.spent_j = float(before["energy_total_j"])
        self.covers = before["covers"]
        self.estimated = before["energy_total_estimated"] == 1.0
        if self.spent_j >= self.budget_j:
            self._stop(epoch, when="before this fit's first epoch (its earlier attempts); "
                                   "Keras trains one batch of it")

    def _warn_once(self, key: str, why: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(f"greenscreen: EnergyBudget {why}", RuntimeWarning, stacklevel=3)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        energy, total = logs.get("energy_j"), logs.get("energy_total_j")
        if total is not None and not math.isnan(total):  # SMICallback's running total
            self.spent_j = max(self.spent_j, float(total))
            self.covers = covered(logs)
            self.estimated |= logs.get("energy_total_estimated") == 1.0 or is_estimate(logs)
        elif energy is None or math.isnan(energy):
            why = "no energy_j in logs: put SMICallback before EnergyBudget" \
                if energy is None else "energy_j is NaN (no measurement)"
            self._warn_once("epoch", f"cannot count this epoch: {why}")
        else:
            if total is not None:
                self._warn_once("total", "counts this fit's epochs from here: energy_total_j "
                                         "is NaN (the energy spent before is not known)")
            self.spent_j += float(energy)
            self.covers = covered(logs)
            self.estimated |= is_estimate(logs)
        exceeded = self.spent_j >= self.budget_j
        logs["energy_spent_j"] = self.spent_j
        logs["budget_exceeded"] = float(exceeded)
        if exceeded and self.stopped_epoch is None:
            self._stop(epoch)

    def _stop(self, epoch: int, when: str = "") -> None:
        self.stopped_epoch = epoch
        self.model.stop_training = True
        # What SMICallback's summary.json records of the stop (its attempt's `stopped_by`)
        self.stop_reason = (f"EnergyBudget at epoch {epoch + 1}: {self.spent_j:.1f} J spent "
                            f"of a {self.budget_j:.1f} J budget "
                            f"({covers_text(self.covers, self.estimated)})")
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: EnergyBudget stopped training: "
                  f"{self.spent_j:.1f} J spent of a {self.budget_j:.1f} J budget "
                  f"({covers_text(self.covers, self.estimated)})"
                  + (f", {when}." if when else "."))
