"""Per-device sample storage and the integration of power into energy.

Energy over a window [a, b] is E(b) - E(a) of a cumulative energy curve E(t):
- with a hardware counter, E is the counter, linearly interpolated;
- otherwise E integrates power linearly interpolated between samples
  (the trapezoid rule, with the window edges interpolated too), so the time
  between the last sample and a window edge is not lost.
Before the first and after the last sample, power is held constant; the
`coverage` figure says how much of a window had a sample within `hold` seconds.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

import numpy as np

from .base import NAN, Sample


@dataclass
class DeviceWindow:
    """One device's figures over one window."""

    index: int
    uuid: str
    name: str
    energy_j: float
    power_avg_w: float
    power_peak_w: float
    temp_c: float
    util_pct: float
    mem_used_mib: float
    samples: int
    coverage: float
    component: str = "gpu"

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class DeviceSeries:
    """Time series of one device. Not thread-safe: the meter holds the lock."""

    def __init__(self, sample: Sample) -> None:
        self.index, self.uuid, self.name = sample.index, sample.uuid, sample.name
        self.component = sample.component
        self.t, self.p, self.e = array("d"), array("d"), array("d")  # energy curve
        self.aux_t, self.temp, self.util, self.mem = (array("d") for _ in range(4))
        self.counter_origin = NAN
        self.missing_power = 0

    def append(self, s: Sample) -> None:
        if self.aux_t and s.t <= self.aux_t[-1]:
            return  # duplicate or out-of-order line: keep the series monotone
        self.aux_t.append(s.t)
        self.temp.append(s.temp_c)
        self.util.append(s.util_pct)
        self.mem.append(s.mem_used_mib)
        if s.has_energy:
            self._append_counter(s)
        elif s.has_power:
            self._append_power(s.t, s.power_w)
        else:
            self.missing_power += 1

    def _append_power(self, t: float, power_w: float) -> None:
        if self.t:
            dt = t - self.t[-1]
            self.e.append(self.e[-1] + 0.5 * (self.p[-1] + power_w) * dt)
        else:
            self.e.append(0.0)
        self.t.append(t)
        self.p.append(power_w)

    def _append_counter(self, s: Sample) -> None:
        went_back = self.t and s.energy_mj / 1000 - self.counter_origin < self.e[-1]
        if math.isnan(self.counter_origin) or went_back:
            # First reading, or the counter went backwards (driver reload): rebase.
            base = self.e[-1] if self.t else 0.0
            self.counter_origin = s.energy_mj / 1000 - base
        energy = s.energy_mj / 1000 - self.counter_origin
        power = s.power_w
        if not s.has_power:
            power = (energy - self.e[-1]) / (s.t - self.t[-1]) if self.t else NAN
        self.t.append(s.t)
        self.e.append(energy)
        self.p.append(power if not math.isnan(power) else (self.p[-1] if self.p else 0.0))

    def energy_at(self, t: float) -> float:
        """Cumulative energy (J) at time t, interpolated between samples."""
        n = len(self.t)
        if n == 0:
            return NAN
        if t <= self.t[0]:
            return self.e[0] - self.p[0] * (self.t[0] - t)
        if t >= self.t[-1]:
            return self.e[-1] + self.p[-1] * (t - self.t[-1])
        i = bisect_right(self.t, t) - 1
        t0, t1 = self.t[i], self.t[i + 1]
        frac = (t - t0) / (t1 - t0)
        if math.isnan(self.counter_origin):
            p_t = self.p[i] + frac * (self.p[i + 1] - self.p[i])
            return self.e[i] + 0.5 * (self.p[i] + p_t) * (t - t0)
        return self.e[i] + frac * (self.e[i + 1] - self.e[i])

    def power_at(self, times: np.ndarray) -> np.ndarray:
        if not self.t:
            return np.full(len(times), NAN)
        return np.interp(times, np.asarray(self.t), np.asarray(self.p))

    def coverage(self, a: float, b: float, hold: float) -> float:
        """Fraction of [a, b] lying within `hold` seconds of some sample."""
        if b <= a:
            return 1.0 if self.t and self._near(a, hold) else 0.0
        lo, hi = bisect_left(self.t, a - hold), bisect_right(self.t, b + hold)
        ts = np.asarray(self.t[lo:hi])
        if ts.size == 0:
            return 0.0
        starts, ends = np.maximum(ts - hold, a), np.minimum(ts + hold, b)
        # Equal-width intervals from sorted centres: trim each by the next start.
        ends[:-1] = np.minimum(ends[:-1], starts[1:])
        return float(np.clip(ends - starts, 0, None).sum() / (b - a))

    def _near(self, t: float, hold: float) -> bool:
        i = bisect_left(self.t, t)
        return any(abs(self.t[j] - t) <= hold for j in (i - 1, i) if 0 <= j < len(self.t))

    def window(self, a: float, b: float, hold: float) -> DeviceWindow:
        duration = b - a
        coverage = self.coverage(a, b, hold)
        lo, hi = bisect_left(self.t, a), bisect_right(self.t, b)
        inside = np.asarray(self.p[lo:hi])
        edges = self.power_at(np.array([a, b]))
        if coverage > 0:
            energy = self.energy_at(b) - self.energy_at(a)
            peak = float(np.nanmax(np.concatenate([inside, edges])))
        else:
            energy = peak = NAN
        alo, ahi = bisect_left(self.aux_t, a - hold), bisect_right(self.aux_t, b + hold)
        return DeviceWindow(
            index=self.index,
            uuid=self.uuid,
            name=self.name,
            energy_j=energy,
            power_avg_w=energy / duration if duration > 0 else NAN,
            power_peak_w=peak,
            temp_c=_nanmean(self.temp[alo:ahi]),
            util_pct=_nanmean(self.util[alo:ahi]),
            mem_used_mib=_nanmean(self.mem[alo:ahi]),
            samples=int(inside.size),
            coverage=coverage,
            component=self.component,
        )


def _nanmean(values: array) -> float:
    arr = np.asarray(values)
    if arr.size == 0 or np.isnan(arr).all():
        return NAN
    return float(np.nanmean(arr))
