"""GPU energy through NVML (`pip install greenscreen[nvml]`).

Uses the total-energy counter (`nvmlDeviceGetTotalEnergyConsumption`, mJ since
the driver loaded; Volta and newer) where every selected GPU has it, and polls
instantaneous power otherwise. The provenance says which.
"""

from __future__ import annotations

import time

from ..validation import invalid
from ._util import check_gpus
from .base import NAN, PolledSource, Sample, SourceUnavailable
from .nvidia_smi import visible_gpus


def _nvml():
    try:
        import pynvml
    except ImportError as exc:
        raise SourceUnavailable(
            "the NVML bindings are not installed (pip install 'greenscreen[nvml]')"
        ) from exc
    return pynvml


class NvmlSource(PolledSource):
    """Polls NVML every `interval` seconds for the selected GPUs.

    `counter=False` ignores the total-energy counter and integrates polled
    power instead (provenance "measured:nvml-power"), e.g. to compare the two.
    """

    name = "nvml"

    def __init__(self, interval: float = 0.1, gpus=None, counter: bool = True) -> None:
        super().__init__(interval)
        check_gpus(gpus)
        if not isinstance(counter, bool):  # check_choice would take 1 and 0 as True, False
            raise invalid("counter", counter, "True (the total-energy counter where every "
                          "GPU has it) or False (polled power)")
        self.gpus = gpus
        self.use_counter = counter
        self.has_counter = False
        self._handles: list = []
        self._devices: list = []  # (component, index, uuid, name) of each opened GPU

    @property
    def provenance(self) -> str:  # type: ignore[override]
        return "measured:nvml-counter" if self.has_counter else "measured:nvml-power"

    def unavailable_reason(self) -> str | None:
        if self._handles:  # open, and sampling: reopening would close its handles
            return None
        try:
            self.open()
        except SourceUnavailable as exc:
            return str(exc)
        self.close()
        return None

    def open(self) -> None:
        nv = _nvml()
        try:
            nv.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            raise SourceUnavailable(f"NVML could not be initialised: {exc}") from exc
        try:
            self._handles = [self._handle(nv, gid) for gid in self._ids(nv)]
        except Exception as exc:
            nv.nvmlShutdown()
            raise SourceUnavailable(f"NVML could not open the GPUs: {exc}") from exc
        if not self._handles:
            nv.nvmlShutdown()
            raise SourceUnavailable("NVML lists no GPUs (or CUDA_VISIBLE_DEVICES hides them)")
        self.has_counter = self.use_counter and all(
            self._counter(nv, h) is not None for h in self._handles)
        self._devices = [self._identity(nv, h) for h in self._handles]

    @staticmethod
    def _identity(nv, handle) -> tuple[str, int, str, str] | None:
        try:
            return ("gpu", int(nv.nvmlDeviceGetIndex(handle)),
                    _text(nv.nvmlDeviceGetUUID(handle)), _text(nv.nvmlDeviceGetName(handle)))
        except Exception:  # a GPU that cannot say who it is: not expected by name
            return None

    def expected_devices(self) -> list[tuple[str, int, str, str]]:
        return [d for d in self._devices if d is not None]

    def _ids(self, nv) -> list[str]:
        ids = visible_gpus(self.gpus)
        if ids is None:
            return [str(i) for i in range(nv.nvmlDeviceGetCount())]
        return ids

    @staticmethod
    def _handle(nv, gid: str):
        if gid.isdigit():
            return nv.nvmlDeviceGetHandleByIndex(int(gid))
        return nv.nvmlDeviceGetHandleByUUID(gid)

    @staticmethod
    def _counter(nv, handle) -> float | None:
        try:
            return float(nv.nvmlDeviceGetTotalEnergyConsumption(handle))
        except Exception:
            return None

    def read(self) -> list[Sample]:
        nv = _nvml()
        now = time.time()
        return [self._sample(nv, h, now) for h in self._handles]

    def _sample(self, nv, h, now: float) -> Sample:
        return Sample(
            t=now,
            index=nv.nvmlDeviceGetIndex(h),
            uuid=_text(nv.nvmlDeviceGetUUID(h)),
            name=_text(nv.nvmlDeviceGetName(h)),
            power_w=_try(lambda: nv.nvmlDeviceGetPowerUsage(h) / 1000.0),
            temp_c=_try(lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
            util_pct=_try(lambda: nv.nvmlDeviceGetUtilizationRates(h).gpu),
            mem_used_mib=_try(lambda: nv.nvmlDeviceGetMemoryInfo(h).used / 2**20),
            energy_mj=self._energy_mj(nv, h),
        )

    def _energy_mj(self, nv, handle) -> float:
        value = self._counter(nv, handle) if self.has_counter else None
        return NAN if value is None else value

    def close(self) -> None:
        if self._handles:
            self._handles = []
            try:
                _nvml().nvmlShutdown()
            except Exception:
                pass


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _try(read) -> float:
    try:
        return float(read())
    except Exception:
        return NAN
