"""A labelled estimate: this process's CPU time times a per-core wattage.

This is not a measurement. Its provenance is always "estimated:cpu-time", so
no figure it produces can be mistaken for a metered one. The wattage per
busy core is `tdp_w / os.cpu_count()`; the default TDP of 85 W is the fallback
codecarbon uses when a CPU model is unknown. Set `tdp_w` (or the environment
variable `GREENSCREEN_CPU_TDP_W`) to your CPU's TDP for a better estimate.
"""

from __future__ import annotations

import math
import os
import time

from ..validation import invalid
from .base import PolledSource, Sample, check_positive

DEFAULT_TDP_W = 85.0


TDP_VARIABLE = "GREENSCREEN_CPU_TDP_W"


def tdp_from_environment() -> float:
    """The TDP GREENSCREEN_CPU_TDP_W gives (85 W where it is unset or empty).

    Raises:
        ValueError: "GREENSCREEN_CPU_TDP_W='abc' is not valid; allowed: ..." where it is
            not a finite number of watts > 0.
    """
    raw = os.environ.get(TDP_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_TDP_W
    allowed = "your CPU's TDP in watts, a finite number > 0 (e.g. 65), or unset for 85"
    try:
        tdp = float(raw)
    except ValueError:
        raise invalid(TDP_VARIABLE, raw, allowed) from None
    if not math.isfinite(tdp) or tdp <= 0:
        raise invalid(TDP_VARIABLE, raw, allowed)
    return tdp


def watts_per_core(tdp_w: float | None = None) -> float:
    """The estimate's wattage per busy core: `tdp_w` (else GREENSCREEN_CPU_TDP_W, else
    85 W) over this machine's cores.

    Raises:
        ValueError: The TDP is not a finite number > 0 (naming GREENSCREEN_CPU_TDP_W where it
            comes from there).
    """
    tdp = tdp_w if tdp_w is not None else tdp_from_environment()
    check_positive("tdp_w", tdp)
    return tdp / (os.cpu_count() or 1)


class CpuTimeEstimate(PolledSource):
    """Estimates energy as CPU seconds (process + reaped children) x W/core.

    Args:
        interval: Seconds between reads.
        tdp_w: The CPU's TDP in watts, shared by its cores; default
            GREENSCREEN_CPU_TDP_W, else 85 W.
        watts_per_core: Watts per busy core, instead of `tdp_w`.

    Raises:
        ValueError: `tdp_w` or `watts_per_core` is not a finite number > 0 ("tdp_w=-5 is
            not valid; allowed: a number in (0, inf) or None."), here, where it is given. An
            invalid GREENSCREEN_CPU_TDP_W is no argument: it makes the source unavailable
            (`unavailable_reason` names the variable), so "auto" and a fit go on without it.
    """

    name = "estimate"
    provenance = "estimated:cpu-time"
    reads_on_demand = True
    components = ("cpu",)

    def __init__(self, interval: float = 0.1, tdp_w: float | None = None,
                 watts_per_core: float | None = None) -> None:
        super().__init__(interval)
        self.tdp_w = check_positive("tdp_w", tdp_w, allow_none=True)
        self.watts_per_core = check_positive("watts_per_core", watts_per_core, allow_none=True)

    def _watts(self) -> float:
        if self.watts_per_core is not None:
            return check_positive("watts_per_core", self.watts_per_core)
        return watts_per_core(self.tdp_w)

    def unavailable_reason(self) -> str | None:
        """None, unless the wattage it would use is not valid (an invalid
        GREENSCREEN_CPU_TDP_W: the arguments are checked where they are given): then that
        error's message."""
        try:
            self._watts()
        except ValueError as exc:
            return str(exc)
        return None

    def open(self) -> None:
        self._w = self._watts()

    def read(self) -> list[Sample]:
        # process_time: this process's threads to the nanosecond (os.times counts in clock
        # ticks, 10 ms: a few-millisecond epoch read at both ends would show none); the
        # reaped children only os.times has.
        t = os.times()
        cpu_s = time.process_time() + t.children_user + t.children_system
        return [Sample(t=time.time(), index=0, uuid=f"cpu-time:{os.getpid()}",
                       name="CPU time (estimate)", energy_mj=cpu_s * self._w * 1000.0,
                       component="cpu")]
