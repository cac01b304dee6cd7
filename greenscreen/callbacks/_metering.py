"""How SMICallback starts and stops its meter: one of its own, kept from call to call, or
the one you gave."""

from __future__ import annotations

from ..meters import EnergyMeter
from ._windows import BlindWindow


class MeterLifecycle:
    """SMICallback's meter. Its own (`_own_meter`) probes its sources at its first start
    only, and is restarted for each later fit, evaluate or predict (a hung nvidia-smi's 2 s
    probe once, not every call); a start that failed is not tried again until the next fit
    (`_start_failed`, reset with the fit's state). A meter you gave stopped is started
    here and stopped here too; one given running is left running."""

    def _start_meter(self) -> None:
        if self._meter is not None and self._meter.running:
            return
        if self._start_failed is not None:  # not asked again until the next fit
            self._meter, self._reason = None, self._start_failed
            return
        try:
            if self.meter is not None:
                # A meter given stopped is started here, so it is stopped here too: left
                # running, its sources (an nvidia-smi stream) outlived every fit.
                self._owns_meter = not self.meter.running
                self._meter = self.meter.start()
            else:
                if self._own_meter is None:
                    self._own_meter = EnergyMeter(self.source, self.interval, self.gpus,
                                                  self.attribution)
                self._meter = self._own_meter.start()
                self._owns_meter = True
                # Bounded: a source that never answers costs this once, then NaN.
                self._meter.wait_for_sample(timeout=self.first_sample_timeout)
        except Exception as exc:  # measurement must never stop training
            self._meter, self._reason = None, f"meter could not start: {exc}"
            self._start_failed = self._reason
            self._warn_once("start", f"{self._reason}; energy is recorded as NaN")

    def _stop_meter(self) -> None:
        if self._meter is not None and self._owns_meter:
            self._meter.stop()
        self._owns_meter = False

    def _open(self, name: str):
        return self._meter.window(name) if self._meter is not None else BlindWindow(name)
