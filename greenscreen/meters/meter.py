"""`EnergyMeter`: a background sampler with a windows API.

Example:

```python
from greenscreen.meters import EnergyMeter

with EnergyMeter(interval=0.1) as meter:
    with meter.window("epoch-3") as w:
        train_one_epoch()
print(w.energy_j, w.power_avg_w, w.coverage, w.source)
```
"""

from __future__ import annotations

import atexit
import math
import os
import threading
import time
import warnings
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ..validation import check_choice, check_number, invalid
from .base import NAN, PowerSource, Sample, SourceUnavailable
from .processes import ProcessWatcher, share, watcher_for
from .registry import SOURCE_NAMES, make_source, pick_auto
from .series import DeviceSeries, DeviceWindow

ATTRIBUTIONS = ("process", "device")
_LIVE: "weakref.WeakSet[EnergyMeter]" = weakref.WeakSet()


@dataclass
class Window:
    """Energy figures over [t_start, t_end]; filled in when the window closes."""

    name: str
    t_start: float
    meter: "EnergyMeter" = field(repr=False)
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
    # Other compute processes on the measured devices: {"processes": most at once, "pids": all
    # seen}, None when this process had them to itself (or the source cannot tell).
    shared_with: dict | None = None
    device_energy_j: float = NAN  # the whole devices' energy, before attribution

    @property
    def duration_s(self) -> float:
        return self.t_end - self.t_start

    @property
    def closed(self) -> bool:
        return not math.isnan(self.t_end)

    def close(self, t_end: float | None = None) -> "Window":
        """Ends the window (now, by default) and computes its figures. Idempotent."""
        if not self.closed:
            self.t_end = time.time() if t_end is None else t_end
            self.meter._fill(self)
        return self

    def __enter__(self) -> "Window":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def as_dict(self) -> dict:
        keys = ("name", "t_start", "t_end", "duration_s", "energy_j", "power_avg_w",
                "power_peak_w", "temp_c", "util_pct", "samples", "coverage", "source", "reason",
                "shared_with", "device_energy_j")
        out = {k: getattr(self, k) for k in keys}
        out["devices"] = [d.as_dict() for d in self.devices]
        return out


class EnergyMeter:
    """Samples power in the background and integrates it over windows.

    Args:
        source: "auto" (NVML counter, then nvidia-smi, then RAPL, then the
            CPU-time estimate), one of "nvidia-smi", "nvml", "rapl",
            "estimate", or a `PowerSource` instance.
        interval: Seconds between samples (default 0.1, i.e. 10 Hz).
        gpus: GPU indices or UUIDs to measure; default `CUDA_VISIBLE_DEVICES`.
        attribution: "process" (default) or "device". When other processes compute
            on a measured GPU, "process" charges this process its share: by SM
            utilisation where the driver reports it per process, else split evenly;
            the source then says so (e.g. "measured:nvidia-smi;attributed:sm-share").
            "device" charges the whole device. Alone on its GPUs, both are the same.
            Either way, sharing is warned about once and recorded in `shared_with`.

    Windows may nest and overlap; `start` and `stop` are idempotent and the
    meter is thread-safe. Every figure carries `source`, its provenance
    (e.g. "measured:nvidia-smi" or "estimated:cpu-time").
    """

    def __init__(
        self,
        source: "str | PowerSource" = "auto",
        interval: float = 0.1,
        gpus: "list[int | str] | None" = None,
        attribution: str = "process",
    ) -> None:
        self.check_arguments(source, interval, gpus, attribution)
        self.attribution = attribution
        self.pid = os.getpid()  # the process charged: the one that measures to train
        self._watcher: ProcessWatcher | None = None
        self._warned_sharing = False
        self.requested = source
        self.interval = interval
        self.gpus = gpus
        self.hold = max(5 * interval, 0.5)
        self._lock = threading.Lock()
        self._series: dict[int, DeviceSeries] = {}
        self._source: PowerSource | None = None
        self._running = False
        self.skipped: dict[str, str] = {}

    @staticmethod
    def check_arguments(
        source: "str | PowerSource" = "auto",
        interval: float = 0.1,
        gpus: "list[int | str] | None" = None,
        attribution: str = "process",
    ) -> None:
        """Checks the constructor's arguments without starting anything.

        The meter's one place for these rules: the constructor calls it, and so
        does every class that builds a meter later (`SMICallback` at its own
        construction), so a bad argument fails early with the same message.

        Args:
            source, interval, gpus, attribution: As for the constructor.

        Raises:
            ValueError: "name=value is not valid; allowed: ..." for the first
                argument the meter cannot take.
        """
        if not isinstance(source, PowerSource) and source not in SOURCE_NAMES:
            raise invalid("source", source, ", ".join(repr(s) for s in SOURCE_NAMES)
                          + " or a PowerSource instance")
        check_number("interval", interval, low=0, low_open=True)
        if gpus is not None and not _is_gpu_list(gpus):
            raise invalid("gpus", gpus, "None or a list of GPU indices or UUIDs")
        check_choice("attribution", attribution, ATTRIBUTIONS)

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> "EnergyMeter":
        """Starts sampling. Raises `SourceUnavailable` with the reason if the
        requested source cannot run here ("auto" always finds one)."""
        if self._running:
            return self
        if isinstance(self.requested, PowerSource):
            source = self.requested
            self.hold = max(5 * source.interval, 0.5)
        elif self.requested == "auto":
            source, self.skipped = pick_auto(self.interval, self.gpus)
        else:
            source = make_source(self.requested, self.interval, self.gpus)
            reason = source.unavailable_reason()
            if reason:
                raise SourceUnavailable(f"source={self.requested!r} is unavailable: {reason}")
        source.start(self._ingest)
        self._source, self._running = source, True
        self._watcher = watcher_for(source.name, self._uuids)
        if self._watcher is not None:
            self._watcher.start()
        _LIVE.add(self)
        return self

    def stop(self) -> None:
        """Stops sampling and reaps every subprocess. Idempotent."""
        if self._running and self._source is not None:
            self._source.stop()
        if self._watcher is not None:
            self._watcher.stop()
        self._running = False
        _LIVE.discard(self)

    def __enter__(self) -> "EnergyMeter":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _uuids(self) -> dict[int, str]:
        with self._lock:
            return {s.index: s.uuid for s in self._series.values()}

    # -- data --------------------------------------------------------------
    def _ingest(self, samples: list[Sample]) -> None:
        with self._lock:
            for s in samples:
                series = self._series.get(s.index)
                if series is None:
                    series = self._series[s.index] = DeviceSeries(s)
                series.append(s)

    def wait_for_sample(self, timeout: float = 5.0) -> bool:
        """Blocks until every device has a power reading, or `timeout` passes.

        A source needs a moment to produce its first line (nvidia-smi without
        persistence mode can take seconds); a window that ends before then
        has nothing to integrate. Returns whether a reading arrived.
        """
        deadline = time.monotonic() + timeout
        while self._running and time.monotonic() < deadline:
            with self._lock:
                if self._series and all(s.p for s in self._series.values()):
                    return True
            time.sleep(min(0.02, self.interval))
        return False

    @property
    def running(self) -> bool:
        return self._running

    @property
    def source(self) -> str:
        """Provenance of every figure, e.g. "measured:nvidia-smi"."""
        return self._source.provenance if self._source else "none"

    @property
    def health(self) -> dict:
        return self._source.health.as_dict() if self._source else {"faults": 0, "reason": None}

    @property
    def devices(self) -> list[dict]:
        with self._lock:
            return [{"index": s.index, "uuid": s.uuid, "name": s.name}
                    for s in sorted(self._series.values(), key=lambda d: d.index)]

    def latest(self) -> dict:
        """The newest reading: total power and per-device power, O(devices).

        Cheap enough for every batch: it reads memory, never spawns a process.
        """
        with self._lock:
            powers = {i: (s.p[-1] if s.p else NAN) for i, s in self._series.items()}
            t = max((s.aux_t[-1] for s in self._series.values() if s.aux_t), default=NAN)
        total = float(sum(powers.values())) if powers else NAN
        return {"t": t, "power_w": total, "per_device": powers}

    # -- windows -----------------------------------------------------------
    def window(self, name: str = "window", t_start: float | None = None) -> Window:
        """Opens a window now (or at `t_start`). Use with `with`, or `.close()`."""
        return Window(name=name, t_start=time.time() if t_start is None else t_start, meter=self)

    def _fill(self, w: Window) -> None:
        with self._lock:
            series = sorted(self._series.values(), key=lambda d: d.index)
            w.devices = [s.window(w.t_start, w.t_end, self.hold) for s in series]
            w.power_peak_w = self._total_peak(w.t_start, w.t_end)
            missing = {s.index: s.missing_power for s in self._series.values()}
            # The whole devices' energy, before _attribute charges this process its share.
            w.device_energy_j = _sum([d.energy_j for d in w.devices]) if w.devices else NAN
            how = self._attribute(w, series)
        w.source = self.source + (f";attributed:{how}" if how else "")
        if not w.devices:
            w.reason = self._why_nothing()
            return
        energies = [d.energy_j for d in w.devices]
        w.energy_j = float(sum(energies)) if not any(map(math.isnan, energies)) else NAN
        w.power_avg_w = w.energy_j / w.duration_s if w.duration_s > 0 else NAN
        w.temp_c = _mean([d.temp_c for d in w.devices])
        w.util_pct = _mean([d.util_pct for d in w.devices])
        w.samples = sum(d.samples for d in w.devices)
        w.coverage = min(d.coverage for d in w.devices)
        if math.isnan(w.energy_j):
            blind = [d for d in w.devices if math.isnan(d.energy_j)]
            w.reason = "; ".join(
                f"device {d.index} has no power sample near the window"
                + (f" ({missing[d.index]} readings were [N/A])" if missing[d.index] else "")
                for d in blind) + self._health_suffix()
        elif w.coverage < 0.99:
            w.reason = f"samples cover {w.coverage:.0%} of the window" + self._health_suffix()

    def _attribute(self, w: Window, series: list) -> str | None:
        """Records who shared the devices and, with attribution "process", charges this
        process its share of each device. Returns how, or None when nothing changed."""
        if self._watcher is None:
            return None
        pids, most, methods = set(), 0, set()
        for d, s in zip(w.devices, series):
            charged = 0.0
            for a, b, occupancy in self._watcher.segments(s.uuid, w.t_start, w.t_end):
                fraction, how, others = share(occupancy, self.pid)
                if how:
                    methods.add(how)
                    pids.update(others)
                    most = max(most, len(others))
                charged += (s.energy_at(b) - s.energy_at(a)) * fraction
            if self.attribution == "process" and methods and not math.isnan(d.energy_j):
                d.energy_j, d.power_avg_w = charged, charged / max(w.duration_s, 1e-12)
        if not methods:
            return None
        w.shared_with = {"processes": most, "pids": sorted(pids)}
        if not self._warned_sharing:
            self._warned_sharing = True
            warnings.warn(
                f"greenscreen: {most} other process(es) compute on the measured GPU(s) (pids "
                f"{', '.join(map(str, sorted(pids)))}); " + (
                    "each window charges this process its share (attribution='process')"
                    if self.attribution == "process" else "each window charges this process "
                    "the whole devices (attribution='device'): their energy is counted too"),
                RuntimeWarning, stacklevel=2)
        if self.attribution != "process":
            return None
        return "even-split" if "even-split" in methods else "sm-share"

    def _total_peak(self, a: float, b: float) -> float:
        series = [s for s in self._series.values() if s.t]
        if not series:
            return NAN
        inside = []
        for s in series:
            t = np.asarray(s.t)
            inside.append(t[(t >= a) & (t <= b)])
        grid = np.unique(np.concatenate(inside + [np.array([a, b])]))
        return float(np.max(sum(s.power_at(grid) for s in series)))

    def _health_suffix(self) -> str:
        reason = self.health.get("reason")
        return f"; last source fault: {reason}" if reason else ""

    def _why_nothing(self) -> str:
        if not self._running and self._source is None:
            return "the meter was never started"
        reason = self.health.get("reason")
        return f"no sample received from {self._source.name}" + (f": {reason}" if reason else "")


def _is_gpu_list(gpus) -> bool:
    """Whether `gpus` lists GPU indices or UUIDs (a string such as "0,1" does not)."""
    if isinstance(gpus, (str, bytes)) or not isinstance(gpus, Iterable):
        return False
    return all(isinstance(g, (int, str)) and not isinstance(g, bool) for g in gpus)


def _sum(values: list[float]) -> float:
    return NAN if any(math.isnan(v) for v in values) else float(sum(values))


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(sum(finite) / len(finite)) if finite else NAN


@atexit.register
def _stop_all() -> None:
    for meter in list(_LIVE):
        meter.stop()
