"""EnergyForecast: predict a run's total time, energy and CO2 from its first epochs."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import keras

from ..carbon import carbon_intensity as resolve_intensity
from ..fileio import atomic_write_json
from ..validation import check_integer
from ._arguments import check_log_dir, check_verbose
from ._lock import beside
from ._windows import covered, covers_text, is_estimate
from .smi import SMICallback

NAN = float("nan")


class EnergyForecast(keras.callbacks.Callback):
    """Forecasts total time, energy and CO2 for the planned epochs, then scores itself.

    After `after_epochs` epochs it predicts the totals as the energy already
    spent plus the remaining epochs times the mean epoch energy. With two or
    more observed epochs the first is left out of that mean, because it carries
    one-off costs (tracing, compilation, caches); carbontracker multiplies the
    plain mean by the epoch count. At train end it records the forecast's error
    against the measured totals in `self.result` (and `forecast.json` in
    `log_dir`). Reads `energy_j`/`epoch_s` from the logs: put it after
    `SMICallback`.

    The energy already spent, and the actual energy it is scored against, is
    `SMICallback`'s running total `energy_total_j` (as `EnergyBudget` counts it): the
    `energy_j` of its `summary.json` at that epoch's end, with the time between epochs
    and, for a resumed fit, the earlier attempts; without it (or where it is NaN) the
    sum of the epochs' `energy_j`. Times are the epochs' own (`epoch_s`) of this fit.
    The energy is the total of the components `SMICallback` measures; the forecast's
    `covers` lists them (e.g. ["gpu", "cpu", "dram"]), and its `estimated` says where
    any of it is an estimate (then so does the line it prints).

    Each epoch's logs gain `forecast_energy_j`, `forecast_time_s` and
    `forecast_co2_g` (NaN until the forecast exists).

    Args:
        after_epochs: Epochs to observe before forecasting: an integer >= 1.
        log_dir: Folder for `forecast.json`; None writes no file.
        carbon_intensity, country, pue: As for `SMICallback`. Where the place
            (`carbon_intensity` and `country`) or `pue` is left out, that of the
            `SMICallback` in the same callbacks list, each on its own, so that the
            forecast's CO2 and `summary.json`'s agree (without one: the world average,
            and a PUE of 1).
        verbose: 1 prints the forecast and, at the end, its error.

    Example:

    ```python
    model.fit(x, y, epochs=50,
              callbacks=[SMICallback(), EnergyForecast(after_epochs=2)])
    ```
    """

    def __init__(self, after_epochs: int = 1, log_dir: "str | Path | None" = None,
                 carbon_intensity: float | None = None, country: str | None = None,
                 pue: float | None = None, verbose: int = 1) -> None:
        super().__init__()
        check_integer("after_epochs", after_epochs, low=1)  # bad arguments raise here
        check_log_dir(log_dir)
        check_verbose(verbose)
        self.after_epochs = after_epochs
        self.log_dir = log_dir
        self.carbon_intensity = carbon_intensity
        self.country = country
        self.pue = pue
        self.verbose = verbose
        # bad arguments raise here
        self.intensity = resolve_intensity(carbon_intensity, country, _pue(pue))

    def on_train_begin(self, logs=None):
        self.intensity = self._intensity(next(
            (c for c in beside(self) if isinstance(c, SMICallback)), None))
        self.energies: list[float] = []
        self.times: list[float] = []
        self.total_j = NAN  # SMICallback's running total at the latest epoch end
        self.totals: list[float] = []  # ... at each epoch end
        self.first_epoch: int | None = None
        self.covers: list[str] = []
        self.estimated = False
        self.forecast: dict | None = None
        self.result: dict | None = None

    def _intensity(self, smi: SMICallback | None):
        """The place and the PUE each its own, else the SMICallback's: a forecast given
        only pue=1.5 beside SMICallback(country="FR") was priced at the world average,
        6x France's, beside a summary.json priced in France."""
        place = (self.carbon_intensity, self.country)
        if place == (None, None) and smi is not None:
            place = (smi.carbon_intensity, smi.country)
        pue = self.pue if self.pue is not None or smi is None else smi.pue
        return resolve_intensity(*place, _pue(pue))

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        self.energies.append(float(logs.get("energy_j", NAN)))
        self.times.append(float(logs.get("epoch_s", NAN)))
        self.total_j = float(logs.get("energy_total_j", NAN))
        self.totals.append(self.total_j)
        self.covers = covered(logs)
        self.estimated |= is_estimate(logs) or logs.get("energy_total_estimated") == 1.0
        if self.forecast is None and len(self.energies) >= self.after_epochs:
            self.forecast = self._predict()
            if self.verbose:
                f = self.forecast
                print(f"\ngreenscreen forecast for {f['epochs_planned']} epochs: "
                      f"{f['energy_j']:.1f} J ({covers_text(f['covers'], f['estimated'])}), "
                      f"{f['time_s']:.1f} s, "
                      f"{f['co2_g']:.3f} g CO2")
        f = self.forecast or {}
        logs["forecast_energy_j"] = f.get("energy_j", NAN)
        logs["forecast_time_s"] = f.get("time_s", NAN)
        logs["forecast_co2_g"] = f.get("co2_g", NAN)

    def _planned(self) -> int:
        return int(self.params.get("epochs", len(self.energies))) - (self.first_epoch or 0)

    def _predict(self) -> dict:
        planned = self._planned()
        remaining = max(planned - len(self.energies), 0)
        per_epoch = self._per_epoch()
        if math.isnan(per_epoch) and remaining:
            warnings.warn("greenscreen: EnergyForecast found no epoch's energy_j to forecast "
                          "from (NaN in every epoch so far: no measurement, or SMICallback "
                          "placed after it in the callbacks list); the forecast is NaN",
                          RuntimeWarning, stacklevel=2)
        energy = self._spent() + (remaining * per_epoch if remaining else 0.0)
        time_s = sum(self.times) + (remaining * _steady(self.times) if remaining else 0.0)
        return {"epochs_planned": planned, "after_epochs": len(self.energies),
                "energy_j": energy, "time_s": time_s, "co2_g": self.intensity.grams(energy),
                "covers": self.covers, "estimated": self.estimated}

    def _per_epoch(self) -> float:
        """An epoch's energy from here on: the steady step of the running total, which
        holds what lies between epochs (checkpoints, other callbacks' work: the epochs'
        own `energy_j` left it out, a forecast 20 to 65 % low), else of `energy_j`."""
        # A resumed fit's first total lags its epoch's end (+9 % forecast from its first
        # step): its steps are counted from the second epoch's end.
        totals = self.totals[1:] if (self.first_epoch or 0) > 0 else self.totals
        steps = [b - a for a, b in zip(totals, totals[1:])
                 if math.isfinite(a) and math.isfinite(b)]
        return sum(steps) / len(steps) if steps else _steady(self.energies)

    def _spent(self) -> float:
        """The energy spent so far: the running total, else the epochs' sum."""
        return self.total_j if not math.isnan(self.total_j) else sum(self.energies)

    def on_train_end(self, logs=None):
        if self.forecast is None:
            if self.energies:  # a fit shorter than after_epochs: said, not silent
                warnings.warn(f"greenscreen: EnergyForecast made no forecast: this fit "
                              f"trained {len(self.energies)} epoch(s), fewer than "
                              f"after_epochs={self.after_epochs}", RuntimeWarning,
                              stacklevel=2)
            return
        energy, time_s = self._spent(), sum(self.times)
        self.result = {
            "forecast": self.forecast,
            "actual": {"epochs": len(self.energies), "energy_j": energy, "time_s": time_s,
                       "co2_g": self.intensity.grams(energy), "covers": self.covers,
                       "estimated": self.estimated},
            "completed": len(self.energies) == self.forecast["epochs_planned"],
            "energy_error_pct": _error(self.forecast["energy_j"], energy),
            "time_error_pct": _error(self.forecast["time_s"], time_s),
            "carbon": self.intensity.as_dict(),
        }
        if self.verbose:
            print(f"greenscreen forecast error: energy {self.result['energy_error_pct']:+.1f}%, "
                  f"time {self.result['time_error_pct']:+.1f}%"
                  + ("" if self.result["completed"] else " (training stopped early)"))
        if self.log_dir is not None:
            try:
                atomic_write_json(Path(self.log_dir) / "forecast.json", self.result)
            except OSError as exc:  # measurement never fails a fit that has trained
                warnings.warn(f"greenscreen: EnergyForecast could not write forecast.json "
                              f"({exc}); the forecast and its error are in its `result`",
                              RuntimeWarning, stacklevel=2)


def _pue(pue: float | None) -> float:
    return 1.0 if pue is None else pue


def _steady(values: list[float]) -> float:
    """An epoch's figure once training runs steadily: the mean of the epochs after the
    first (which pays for set-up and tracing), else of the first; epochs whose figure is
    NaN (a meter's gap) are left out rather than making every forecast NaN."""
    later = [v for v in values[1:] if math.isfinite(v)]
    pool = later or [v for v in values if math.isfinite(v)]
    return sum(pool) / len(pool) if pool else NAN


def _error(forecast: float, actual: float) -> float:
    if not actual or math.isnan(actual):
        return NAN
    return 100.0 * (forecast - actual) / actual
