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
    energy_err_j: float = NAN  # half-width of the 95 % interval of sampling/integration

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
        self.range_j = NAN  # where the counter wraps, if it does
        self.rebased: list[float] = []  # when the counter went backwards
        self._first_power_unknown = False  # a counter's first reading, before the second
        # What the readings are known to be (`accuracy.py`); None: an estimate, no interval.
        self.facts: ReadingFacts | None = ReadingFacts()

    def append(self, s: Sample) -> None:
        if self.aux_t and s.t <= self.aux_t[-1]:
            return  # duplicate or out-of-order line: keep the series monotone
        self.aux_t.append(s.t)
        self.temp.append(s.temp_c)
        self.util.append(s.util_pct)
        self.mem.append(s.mem_used_mib)
        if s.has_energy:
            self._append_counter(s)
        elif s.has_power and not math.isnan(self.counter_origin):
            pass  # a counter's missed read: its next reading bridges the gap exactly, where
            # a trapezoid of instant power overshot and then read as the counter going back
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
        if not math.isnan(s.energy_range_mj):
            self.range_j = s.energy_range_mj / 1000
        if went_back or s.counter_reset:
            self.rebased.append(s.t)
        if math.isnan(self.counter_origin) or went_back:
            # First reading, or the counter went backwards (driver reload): rebase.
            base = self.e[-1] if self.t else 0.0
            self.counter_origin = s.energy_mj / 1000 - base
        energy = s.energy_mj / 1000 - self.counter_origin
        power = s.power_w
        if not s.has_power:
            power = (energy - self.e[-1]) / (s.t - self.t[-1]) if self.t else NAN
            if len(self.t) == 1 and self._first_power_unknown:
                # The first reading's power is known only now: the first interval's, held
                # before it as `counter_error` bounds it, not the 0 W placeholder.
                self.p[0] = power
        self._first_power_unknown = not self.t and not s.has_power
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
        error = self.energy_error(a, b) if coverage > 0 else NAN
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
            energy_err_j=error,
        )

    def energy_error(self, a: float, b: float) -> float:
        """The 95 % half-width (J) of `energy_at(b) - energy_at(a)`; NaN for an estimate."""
        if self.facts is None or not self.t:
            return NAN
        # Copies of the span around the window only: a view of the arrays would block
        # the sampler's appends, and the whole series can be long.
        lo = max(bisect_left(self.t, a) - CONTEXT - 1, 0)
        hi = bisect_right(self.t, b) + CONTEXT + 1
        t = np.array(self.t[lo:hi])
        if math.isnan(self.counter_origin):
            return power_error(t, np.array(self.p[lo:hi]), a, b, self.facts)
        return counter_error(t, np.array(self.e[lo:hi]), a, b, self.facts, self.range_j,
                             self.rebased)


def _nanmean(values: array) -> float:
    arr = np.asarray(values)
    if arr.size == 0 or np.isnan(arr).all():
        return NAN
    return float(np.nanmean(arr))


# -- the interval on a window's energy (issue 34) ------------------------------------------
#
# `energy_err_j` is the half-width of a 95 % interval for the error that sampling and
# integration can add to a window's joules. It does not include the sensor's own accuracy
# (`accuracy.py` states that apart): it answers "had every reading been exact, how far could
# the integral be off?". The terms, each from what the samples themselves show:
#
# Power samples (trapezoid rule):
# - curvature: a smooth signal's trapezoid error over an interval is h^2 (m0 - m1) / 12 to
#   leading order (the Hermite/Euler-Maclaurin end correction, with Catmull-Rom slopes m from
#   the neighbouring samples). It is signed, so it cancels over a window as the true error
#   does; its sum is an estimate of the systematic error, counted `CURVATURE_K` times.
# - jumps: a change between two samples that the neighbouring slopes do not explain (a step:
#   the median of the three slopes around an interval is its trend) happened at an unknown
#   moment in the interval, so the trapezoid is off by up to h |jump| / 2, uniformly. These
#   are independent from interval to interval: root-sum-square of their standard deviations.
# - gaps (an interval over `GAP_FACTOR` times the usual spacing: a restarted stream, [N/A]
#   rows) and the parts of the window before the first or after the last sample (power held
#   constant): the signal could have been anywhere in the range observed around the window,
#   so the bound is the length times the largest distance from the estimate to that range.
#   A part outside the readings longer than a gap (a stream that died: its power is carried
#   on past its last reading, with no later reading to bound it) could have been anything:
#   the bound is at least the whole energy carried there (power from 0 to twice the held
#   one), or the range's distance where that is larger. Worst cases, added linearly.
# - reading resolution (nvidia-smi prints 0.01 W) and timestamp resolution (it prints ms):
#   uniform errors per sample, propagated through the trapezoid weights, root-sum-square.
# Counter samples (E(t) interpolated between readings; the readings are exact in between):
# - each window edge falls inside one reading interval, where the counter is interpolated
#   linearly: off by up to h f (1 - f) times the change of the interval powers around it
#   (f: where the edge falls), uniform; for a linear ramp the same expression with a quarter
#   of it is the exact (signed) error, so the bound holds for both.
# - the counter's resolution (RAPL's energy unit, NVML's mJ) and its update period (a reading
#   reflects the energy up to some moment in the last period: P x period, uniform), per edge.
# - wraps: an interval long enough for the counter to wrap more than once unseen adds the
#   counter's range; a counter that went backwards (driver reload) adds that interval's
#   largest plausible energy. Worst cases, added linearly.
# A 95 % half-width is Z95 standard deviations of the random part plus the bounds.

Z95 = 1.959963984540054
CURVATURE_K = 2.0  # the curvature estimate's own error: counted twice (calibrated, RESULTS.md)
RAMP_K = 1.5  # a counter's ramp term is exact for a ramp: its estimate's error is smaller
GAP_FACTOR = 2.5   # an interval this many times the median spacing is a gap
CONTEXT = 3        # samples read either side of a window for slopes and the observed range


@dataclass(frozen=True)
class ReadingFacts:
    """What the error model knows of a source's readings (see `accuracy.py`)."""

    power_resolution_w: float = 0.0  # the smallest step of a power reading
    time_resolution_s: float = 0.0   # of the sample timestamps
    counter_resolution_j: float = 0.0
    counter_update_s: float = 0.0    # how often the hardware counter advances


def power_error(t: np.ndarray, p: np.ndarray, a: float, b: float,
                facts: ReadingFacts = ReadingFacts()) -> float:
    """The 95 % half-width (J) of the trapezoid integral of samples (t, p) over [a, b]."""
    n = len(t)
    if n == 0 or not b > a:
        return NAN if n == 0 else 0.0
    lo, hi = _span(t, a, b)
    ts, ps = t[lo:hi], p[lo:hi]
    if len(ts) < 2:
        return NAN  # one reading shows no range to bound the held power by (as a counter)
    low, high = float(np.min(ps)), float(np.max(ps))
    h, dp = np.diff(ts), np.diff(ps)
    bound = _outside(ts, float(ps[0]), float(ps[-1]), a, b, low, high, float(np.median(h)))
    overlap = np.clip(np.minimum(ts[1:], b) - np.maximum(ts[:-1], a), 0.0, None)
    frac = overlap / h
    gap = h > GAP_FACTOR * float(np.median(h))
    mean = (ps[1:] + ps[:-1]) / 2
    bound += float(np.sum(np.where(gap, overlap * np.maximum(high - mean, mean - low), 0.0)))
    slope = dp / h
    trend = np.median(np.vstack([np.r_[slope[0], slope[:-1]], slope,
                                 np.r_[slope[1:], slope[-1]]]), axis=0)
    jump = np.where(gap, 0.0, frac * h * np.abs(dp - h * trend) / 2)
    m = np.gradient(ps, ts) if len(ts) > 2 else np.full(len(ts), slope[0])
    curvature = np.where(gap, 0.0, frac * h**2 * (m[:-1] - m[1:]) / 12)
    weight = np.r_[overlap, 0.0] / 2 + np.r_[0.0, overlap] / 2  # each sample's share
    sensitivity = np.r_[0.0, (ps[:-2] - ps[2:]) / 2, 0.0] * (weight > 0)
    variance = (float(np.sum(jump**2)) / 3
                + (facts.power_resolution_w**2 / 12) * float(np.sum(weight**2))
                + (facts.time_resolution_s**2 / 3) * float(np.sum(sensitivity**2)))
    return CURVATURE_K * abs(float(np.sum(curvature))) + Z95 * math.sqrt(variance) + bound


def counter_error(t: np.ndarray, e: np.ndarray, a: float, b: float,
                  facts: ReadingFacts = ReadingFacts(), range_j: float = NAN,
                  rebased: "list[float] | None" = None) -> float:
    """The 95 % half-width (J) of E(b) - E(a) of a counter read at times t (values e, J)."""
    n = len(t)
    if n == 0 or not b > a:
        return NAN if n == 0 else 0.0
    lo, hi = _span(t, a, b)
    ts, es = t[lo:hi], e[lo:hi]
    if len(ts) < 2:
        return NAN  # one reading: no power to speak of, nothing to bound the edges by
    h = np.diff(ts)
    power = np.diff(es) / h
    low, high = float(np.min(power)), float(np.max(power))
    held = np.r_[power[0], power[0], power, power[-1], power[-1]]  # held at the ends
    bound = _outside(ts, float(power[0]), float(power[-1]), a, b, low, high,
                     float(np.median(h)))
    gap = h > GAP_FACTOR * float(np.median(h))
    variance, ramp = 2 * facts.counter_resolution_j**2 / 12, 0.0
    for sign, edge in ((-1.0, a), (1.0, b)):
        k = int(np.searchsorted(ts, edge, side="right")) - 1
        if k < 0 or k >= len(h):
            continue  # outside the readings: counted in `bound`
        f = (edge - ts[k]) / h[k]
        if gap[k]:
            bound += h[k] * min(f, 1 - f) * (high - low)
            continue
        # The interval powers around it, p[1] its own: their changes d0..d3. A ramp
        # (d1 + d2 = 2 s h) is off by exactly h f (1 - f) (d1 + d2) / 4 (signed: summed over
        # the edges); a step in the interval by up to h f (1 - f) |jump|, where the jump is
        # what the outer changes d0, d3 do not explain.
        d = np.diff(held[k:k + 5])
        ramp += sign * h[k] * f * (1 - f) * (d[1] + d[2]) / 4
        jump = abs(d[1] + d[2] - d[0] - d[3])
        variance += (h[k] * f * (1 - f) * jump) ** 2 / 3
        variance += (facts.counter_update_s * held[k + 2]) ** 2 / 12
    inside = (ts[1:] > a) & (ts[:-1] < b)
    if not math.isnan(range_j) and range_j > 0:
        plausible = 1.5 * max(high, 0.0) * h  # 1.5 x the highest power seen, per interval
        bound += range_j * float(np.sum(inside & (plausible >= range_j)))
    for when in rebased or ():
        k = int(np.searchsorted(ts, when, side="left")) - 1
        if 0 <= k < len(h) and inside[k]:
            bound += h[k] * max(high, 0.0)
    return RAMP_K * abs(ramp) + Z95 * math.sqrt(variance) + bound


def _span(t: np.ndarray, a: float, b: float) -> tuple[int, int]:
    """The slice of samples around [a, b]: those inside, and CONTEXT either side."""
    lo = max(int(np.searchsorted(t, a, side="left")) - CONTEXT, 0)
    hi = min(int(np.searchsorted(t, b, side="right")) + CONTEXT, len(t))
    return lo, hi


def _outside(ts: np.ndarray, first: float, last: float, a: float, b: float, low: float,
             high: float, spacing: float) -> float:
    """Bound on the parts of [a, b] before the first or after the last reading, where the
    power is held at its end value (`first`, `last`): length x distance to the range, and
    at least the whole energy held there (length x |power|) where the part is longer than
    a gap (`GAP_FACTOR` x the usual `spacing`): a stream that died, a source that had not
    answered yet. Within a gap of the readings (a window closing before a stream's next
    line, as every window can) the range's distance alone."""
    before = max(min(ts[0], b) - a, 0.0)
    after = max(b - max(ts[-1], a), 0.0)
    return (before * _held_error(first, low, high, before > GAP_FACTOR * spacing)
            + after * _held_error(last, low, high, after > GAP_FACTOR * spacing))


def _held_error(power: float, low: float, high: float, unbounded: bool) -> float:
    """How far (W) the power held past a reading may be from the truth: to the range
    observed, or (`unbounded`: held longer than a gap) at least the power itself."""
    spread = max(high - power, power - low)
    return max(spread, abs(power)) if unbounded else spread
