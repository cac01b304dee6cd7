"""The figures of one measured window: the total, each component, each device."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from ..validation import check_number
from .base import COMPONENTS, NAN
from .series import DeviceWindow


@dataclass
class ComponentWindow:
    """One component's figures over a window: "gpu", "cpu" or "dram".

    Attributes:
        component: Which component.
        energy_j: Joules charged to this process (the devices' own energy with
            attribution "device" or when nothing else shares them).
        power_avg_w: `energy_j` over the window's duration.
        source: Provenance, e.g. "measured:rapl;attributed:cpu-time-share".
        device_energy_j: The whole devices' joules, before attribution.
        devices: How many devices (GPUs, packages, DRAM zones) it sums.
        energy_err_j: Half-width of a 95 % interval for the error sampling and integration
            can add to `energy_j` (devices combined root-sum-square); NaN for an estimate,
            with `err_reason`. The sensor's own accuracy is not in it: `sensor_accuracy`.
        err_reason: Why `energy_err_j` is NaN, or None.
        sensor_accuracy: The sensor's published accuracy with its source, or "unknown".
    """

    component: str
    energy_j: float = NAN
    power_avg_w: float = NAN
    source: str = "none"
    device_energy_j: float = NAN
    devices: int = 0
    energy_err_j: float = NAN
    err_reason: str | None = None
    sensor_accuracy: str = "unknown"

    @property
    def measured(self) -> bool:
        """Whether this component is a measurement (not the CPU-time estimate)."""
        return self.source.startswith("measured")

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Window:
    """Energy figures over [t_start, t_end]; filled in when the window closes.

    `energy_j` is the sum of `components` (NaN if any of them is unknown); `unmeasured`
    names each component the meter could not measure, with the reason. `energy_err_j` is
    the half-width of a 95 % interval for the error sampling and integration can add to
    `energy_j` (components combined root-sum-square; NaN, with `energy_err_reason`, where
    a component has none, e.g. an estimate). The sensors' own accuracy is not in it.
    """

    name: str
    t_start: float
    meter: object = field(repr=False)
    t_end: float = NAN
    energy_j: float = NAN
    power_avg_w: float = NAN
    power_peak_w: float = NAN
    temp_c: float = NAN
    util_pct: float = NAN
    samples: int = 0
    coverage: float = 0.0
    source: str = "none"
    reason: str | None = None
    devices: list[DeviceWindow] = field(default_factory=list)
    # Other compute processes on the measured GPUs: {"processes": most at once, "pids": all
    # seen}; None when this process had them to itself (or the source lists no processes:
    # RAPL, the estimate); "unknown" when the driver listed none at all, not even this
    # process (a container), so who else used them cannot be told.
    shared_with: dict | str | None = None
    device_energy_j: float = NAN  # the whole devices' energy, before attribution
    components: dict[str, ComponentWindow] = field(default_factory=dict)
    unmeasured: dict[str, str] = field(default_factory=dict)
    energy_err_j: float = NAN
    energy_err_reason: str | None = None

    @property
    def duration_s(self) -> float:
        return self.t_end - self.t_start

    @property
    def closed(self) -> bool:
        return not math.isnan(self.t_end)

    @property
    def covers(self) -> list[str]:
        """The components summed into `energy_j`, in COMPONENTS order."""
        return [c for c in COMPONENTS if c in self.components]

    def close(self, t_end: float | None = None) -> "Window":
        """Ends the window (now, by default) and computes its figures. Idempotent."""
        if not self.closed:
            if t_end is not None:  # a window cut from the past: after its own start
                check_number("t_end", t_end, low=self.t_start, high=math.inf, high_open=True)
            self.t_end = time.time() if t_end is None else t_end
            if t_end is None:  # a window closing now, not one cut from the past
                self.meter.read_up_to(self.t_end)
            self.meter._fill(self)
        return self

    def __enter__(self) -> "Window":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def as_dict(self) -> dict:
        keys = ("name", "t_start", "t_end", "duration_s", "energy_j", "power_avg_w",
                "power_peak_w", "temp_c", "util_pct", "samples", "coverage", "source", "reason",
                "shared_with", "device_energy_j", "unmeasured", "energy_err_j",
                "energy_err_reason")
        out = {k: getattr(self, k) for k in keys}
        out["components"] = {c: w.as_dict() for c, w in self.components.items()}
        out["devices"] = [d.as_dict() for d in self.devices]
        return out
