"""`EnergyMeter`: background samplers over several components, with a windows API.

Example:

```python
from greenscreen.meters import EnergyMeter

with EnergyMeter(interval=0.1) as meter:  # GPUs, CPU packages and DRAM, where readable
    with meter.window("epoch-3") as w:
        train_one_epoch()
print(w.energy_j, w.power_avg_w, w.coverage, w.source)
print({c: (cw.energy_j, cw.source) for c, cw in w.components.items()}, w.unmeasured)
```
"""

from __future__ import annotations

import atexit
import functools
import math
import os
import threading
import time
import warnings
import weakref

import numpy as np

from ..validation import check_choice, check_number, invalid
from ._util import check_gpus, component_rank, mean_of_finite, sum_or_nan, unique
from .accuracy import facts_for
from .attribution import Attribution
from .base import COMPONENTS, NAN, PowerSource, Sample, SourceUnavailable, check_interval
from .intervals import fill_errors
from .registry import check_source, kept_plan
from .series import DeviceSeries, DeviceWindow
from .window import ComponentWindow, Window

ATTRIBUTIONS = ("process", "device")
_LIVE: "weakref.WeakSet[EnergyMeter]" = weakref.WeakSet()


class EnergyMeter:
    """Samples power in the background and integrates it over windows.

    Args:
        source: What to measure. "auto" (default): every component it can read, the
            GPUs (NVML counter, else nvidia-smi, else NVML power) and the CPU packages
            and DRAM (RAPL); with none readable, the CPU-time estimate, labelled
            "estimated:cpu-time" and never added to a measurement. One name
            ("nvidia-smi", "nvml", "rapl", "estimate") measures that source alone
            and raises `SourceUnavailable` where it cannot run. A list of names (or
            `PowerSource`s), e.g. `["nvml", "rapl"]`, measures those that can run
            and records why the others cannot. Or a `PowerSource` instance.
        interval: Seconds between samples (default 0.1, i.e. 10 Hz; at least 0.001).
        gpus: GPU indices or UUIDs to measure; default `CUDA_VISIBLE_DEVICES`.
        attribution: "process" (default) or "device", for every component. GPUs: when
            other processes compute on a measured GPU, "process" charges this process its
            share, by SM utilisation where the driver reports it per process, else split
            evenly ("measured:nvidia-smi;attributed:sm-share"); alone on its GPUs, both
            are the same; where the driver lists no process at all, not even this one
            (a container), the whole GPUs, marked ";attributed:sharing-unknown". CPU and
            DRAM: "process" charges this process tree its share of the node's busy CPU
            time ("measured:rapl;attributed:cpu-time-share", see
            `greenscreen.meters.cputime`); "device" charges the whole packages and DRAM.

    Windows may nest and overlap; `start` and `stop` are idempotent and the meter is
    thread-safe. Every figure carries `source`, its provenance; each window's
    `components` has the figures of "gpu", "cpu" and "dram" (those measured) and
    `unmeasured` the reason for each component that could not be.
    """

    def __init__(
        self,
        source: "str | PowerSource | list[str | PowerSource]" = "auto",
        interval: float = 0.1,
        gpus: "list[int | str] | None" = None,
        attribution: str = "process",
    ) -> None:
        self.check_arguments(source, interval, gpus, attribution)
        self.attribution = attribution
        self.pid = os.getpid()  # the process charged: the one that measures to train
        self._attribution = Attribution(attribution, self.pid)
        self.requested = source
        self.interval = interval
        self.gpus = gpus
        self.hold = max(5 * interval, 0.5)
        # The sampling interval the started sources keep: a source instance keeps its own
        # interval, whatever the meter's; the coarsest where they differ.
        self.sample_interval = interval
        self._lock = threading.Lock()
        self._series: dict[tuple[str, int], DeviceSeries] = {}
        self._origin: dict[tuple[str, int], PowerSource | None] = {}  # the source of each
        self._sources: list[PowerSource] = []
        self._plan = None  # the first start's: a restart runs the same sources, unprobed
        self._provenance: dict[str, str] = {}  # component -> provenance of its source
        self._running = False
        self.skipped: dict[str, str] = {}
        self.unmeasured: dict[str, str] = {}

    @staticmethod
    def check_arguments(
        source: "str | PowerSource | list[str | PowerSource]" = "auto",
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

        Example:

        >>> EnergyMeter.check_arguments(source=["nvml", "rapl"], attribution="device")
        """
        check_source(source)
        check_interval(interval)
        check_gpus(gpus)
        check_choice("attribution", attribution, ATTRIBUTIONS)
        instances = [source] if isinstance(source, PowerSource) else (
            source if isinstance(source, (list, tuple)) else [])
        if gpus is not None and any(isinstance(s, PowerSource) and "gpu" in s.components
                                    for s in instances):
            raise invalid("gpus", gpus, "None where the GPU source is a PowerSource "
                          "instance: give the instance its own gpus= (e.g. "
                          "NvmlSource(gpus=[1])), which it measures")

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> "EnergyMeter":
        """Starts sampling. Raises `SourceUnavailable` with the reason if the requested
        source (or none of a list) can run here ("auto" always finds one, unless the
        estimate it falls back on has an invalid GREENSCREEN_CPU_TDP_W). The sources are
        chosen, and probed, at the first start that succeeds; a meter stopped and started
        again runs the same ones (a new series each), without asking them again."""
        if self._running:
            return self
        self._plan = chosen = kept_plan(self._plan, self.requested, self.interval, self.gpus)
        self.skipped, self.unmeasured = dict(chosen.skipped), dict(chosen.unmeasured)
        self._sources, self._provenance = [], {}
        with self._lock:  # a restart begins new series: its sources' counters start afresh
            self._series.clear()
            self._origin.clear()
        try:
            self._start_sources(chosen.sources)
            if not self._sources:
                raise SourceUnavailable("no source could start: " + "; ".join(
                    f"{c}: {r}" for c, r in self.unmeasured.items()))
        except BaseException:
            # Nothing may outlive a failed start: the sources already running (threads,
            # nvidia-smi children) are stopped before the error reaches the caller; and
            # the next start plans afresh (kept, a failed GPU source was never replaced).
            self._stop_sources()
            self._plan = None
            raise
        self.sample_interval = max(s.interval for s in self._sources)
        self.hold = max(5 * self.sample_interval, 0.5)
        self._running = True
        gpu = next((s.name for s in self._sources if "gpu" in s.components), None)
        self._attribution.start(gpu, self._uuids, any(
            self._provenance.get(c, "").startswith("measured") for c in ("cpu", "dram")))
        _LIVE.add(self)
        return self

    def _start_sources(self, sources: list[PowerSource]) -> None:
        for source in sources:
            try:
                source.start(functools.partial(self._ingest, source=source))
            except SourceUnavailable as exc:  # it could run a moment ago: record why not now
                if len(sources) == 1:
                    raise
                for component in source.components:
                    self.unmeasured.setdefault(component, str(exc))
                continue
            self._sources.append(source)
            for component in source.components:
                self._provenance.setdefault(component, source.provenance)

    def _stop_sources(self) -> None:
        for source in self._sources:
            try:
                source.stop()
            except Exception as exc:  # one source's failure must not leave the rest running
                warnings.warn(f"greenscreen: {source.name} did not stop cleanly: {exc}",
                              RuntimeWarning, stacklevel=3)

    def stop(self) -> None:
        """Stops sampling and reaps every subprocess. Idempotent."""
        if self._running:
            self._stop_sources()
        self._attribution.stop()
        self._running = False
        _LIVE.discard(self)

    def __enter__(self) -> "EnergyMeter":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _uuids(self) -> dict[int, str]:
        with self._lock:
            return {s.index: s.uuid for s in self._series.values() if s.component == "gpu"}

    # -- data --------------------------------------------------------------
    def _ingest(self, samples: list[Sample], source: PowerSource | None = None) -> None:
        with self._lock:
            for s in samples:
                series = self._series.get((s.component, s.index))
                if series is None:
                    series = self._series[(s.component, s.index)] = DeviceSeries(s)
                    self._origin[(s.component, s.index)] = source
                series.append(s)

    def _ordered(self) -> list[DeviceSeries]:
        return sorted(self._series.values(),
                      key=lambda s: (component_rank(s.component), s.index))

    def wait_for_sample(self, timeout: float = 5.0) -> bool:
        """Blocks until every component has a reading from each of its devices, or
        `timeout` passes. Returns whether they all arrived.

        A source needs a moment to produce its first line (nvidia-smi without
        persistence mode can take seconds); a window that ends before then
        has nothing to integrate.
        """
        deadline = time.monotonic() + timeout
        while self._running and time.monotonic() < deadline:
            with self._lock:
                seen = {s.component for s in self._series.values() if s.p}
                if self._series and all(s.p for s in self._series.values()) and \
                        seen >= set(self._provenance):
                    return True
            time.sleep(min(0.02, self.interval))
        return False

    @property
    def running(self) -> bool:
        return self._running

    @property
    def source(self) -> str:
        """Provenance of the figures, e.g. "measured:nvidia-smi", or with several
        sources each one's joined by " + " ("measured:nvml-counter + measured:rapl")."""
        return " + ".join(unique(s.provenance for s in self._sources)) or "none"

    @property
    def components(self) -> dict[str, str]:
        """Each component measured (or estimated), with its provenance."""
        return {c: self._provenance[c] for c in COMPONENTS if c in self._provenance}

    @property
    def health(self) -> dict:
        """Every source's fault counters added up, and the first reason given."""
        if not self._sources:
            return {"faults": 0, "reason": None}
        rows = [s.health.as_dict() for s in self._sources]
        keys = dict.fromkeys(k for r in rows for k in r if k != "reason")
        out = {k: sum(r.get(k, 0) for r in rows) for k in keys}
        out["reason"] = next((r["reason"] for r in rows if r["reason"]), None)
        return out

    @property
    def devices(self) -> list[dict]:
        with self._lock:
            return [{"index": s.index, "uuid": s.uuid, "name": s.name,
                     "component": s.component} for s in self._ordered()]

    def latest(self) -> dict:
        """The newest reading: total power and per-device power, O(devices).

        `per_device` is keyed by the GPU index for GPUs and by "cpu0", "dram0", ...
        for the others. Cheap enough for every batch: it reads memory, never spawns.
        """
        with self._lock:
            powers = {(s.index if s.component == "gpu" else f"{s.component}{s.index}"):
                      (s.p[-1] if s.p else NAN) for s in self._ordered()}
            t = max((s.aux_t[-1] for s in self._series.values() if s.aux_t), default=NAN)
        total = float(sum(powers.values())) if powers else NAN
        return {"t": t, "power_w": total, "per_device": powers}

    # -- windows -----------------------------------------------------------
    def window(self, name: str = "window", t_start: float | None = None) -> Window:
        """Opens a window now (or at `t_start`, Unix seconds). Use with `with`, or
        `.close()`."""
        check_number("t_start", t_start, low=-math.inf, low_open=True, high=math.inf,
                     high_open=True, allow_none=True)
        return Window(name=name, t_start=time.time() if t_start is None else t_start, meter=self)

    def read_up_to(self, t_end: float) -> None:
        """For a window closing now: reads now each source that can be read on demand
        (`reads_on_demand`: the estimate, RAPL, NVML), so that its newest reading lies at
        or after `t_end`. Carried past the newest reading, the last power would give way
        to the next reading's interpolation in any later window, which could then have
        less energy over more time (a fit's total below what its last epoch logged); with
        a reading on each side, a window's end keeps its figure. A stream (nvidia-smi) is
        not waited for: its next line comes within an interval, and waiting for it at each
        epoch's end cost 52 ms an epoch (benchmarks/callback_overhead.py); a later window
        may then differ from an earlier one over the same seconds by at most one
        interval's change of power."""
        for source in self._sources if self._running else ():
            try:
                source.read_now(functools.partial(self._ingest, source=source),
                                functools.partial(self._locked_behind, source, t_end))
            except Exception:  # the timer's reads count and report a failing source
                continue

    def _locked_behind(self, source: PowerSource, t_end: float) -> bool:
        """Whether a series of `source` has no reading at or after `t_end` yet."""
        with self._lock:
            return any(s.t and s.t[-1] < t_end for key, s in self._series.items()
                       if self._origin.get(key) is source)

    def _fill(self, w: Window) -> None:
        if w.t_end < w.t_start:  # the wall clock stepped back: -2705 J "measured" before
            w.source = " + ".join(unique(self.components.values())) or "none"
            w.unmeasured = dict(self.unmeasured)
            w.reason = (f"the system clock went back {w.t_start - w.t_end:.1f} s during "
                        "this window (an NTP step, date -s, a resumed VM): its energy cannot "
                        "be told")
            return
        self._attribution.poll()
        with self._lock:
            series = self._ordered()
            for s in series:  # what its readings are known to be (None: an estimate)
                s.facts = facts_for(self._provenance.get(s.component, "measured"))
            # The devices that gave no reading go last: attribution pairs the first ones
            # with `series`.
            w.devices = ([s.window(w.t_start, w.t_end, self.hold) for s in series]
                         + self._silent_devices())
            before = [d.energy_j for d in w.devices]  # attribution may charge a share
            w.power_peak_w = self._total_peak(w.t_start, w.t_end)
            missing = {(s.component, s.index): s.missing_power for s in series}
            whole = {c: sum_or_nan([d.energy_j for d in w.devices if d.component == c])
                     for c in COMPONENTS}
            w.device_energy_j = sum_or_nan([d.energy_j for d in w.devices]) if w.devices else NAN
            how = {"gpu": self._attribution.gpus(w, series),
                   **dict.fromkeys(("cpu", "dram"), self._attribution.cpu(w, series))}
        w.unmeasured = dict(self.unmeasured)
        for c, provenance in self.components.items():
            devices = [d for d in w.devices if d.component == c]
            energy = sum_or_nan([d.energy_j for d in devices]) if devices else NAN
            w.components[c] = ComponentWindow(
                c, energy, energy / w.duration_s if w.duration_s > 0 else NAN,
                provenance + (f";attributed:{how[c]}" if how.get(c) else ""),
                whole[c] if devices else NAN, len(devices))
        w.source = " + ".join(unique(cw.source for cw in w.components.values())) or "none"
        fill_errors(w, before)
        if not w.devices:
            w.reason = self._why_nothing()
            return
        w.energy_j = sum_or_nan([cw.energy_j for cw in w.components.values()])
        w.power_avg_w = w.energy_j / w.duration_s if w.duration_s > 0 else NAN
        gpus = [d for d in w.devices if d.component == "gpu"]
        w.temp_c = mean_of_finite([d.temp_c for d in gpus])
        w.util_pct = mean_of_finite([d.util_pct for d in gpus])
        w.samples = sum(d.samples for d in w.devices)
        w.coverage = min(d.coverage for d in w.devices)
        if math.isnan(w.energy_j):
            w.reason = self._why_nan(w, missing)
        elif w.coverage < 0.99:
            w.reason = f"samples cover {w.coverage:.0%} of the window" + self._health_suffix()

    def _silent_devices(self) -> list[DeviceWindow]:
        """A NaN window for each device a source should read and has given no reading of
        since it started (a RAPL package that fails from its first read): its component's
        total is then unknown, not the total of the devices that did answer. Under the
        lock."""
        return [DeviceWindow(index, uuid, name, NAN, NAN, NAN, NAN, NAN, NAN, 0, 0.0,
                             component)
                for source in self._sources
                for component, index, uuid, name in source.expected_devices()
                if (component, index) not in self._series]

    def _why_nan(self, w: Window, missing: dict) -> str:
        parts = [f"no sample received for {c} from its source ({cw.source})"
                 for c, cw in w.components.items() if not cw.devices]
        for d in w.devices:
            if not math.isnan(d.energy_j):
                continue
            what = f"device {d.index}" if d.component == "gpu" else \
                f"{d.component} {d.index} ({d.uuid})"
            if d.coverage > 0:  # measured, but its share could not be worked out
                parts.append(f"{what}: {self._attribution.share_reason()}")
                continue
            # What the fault is, not how often it happened: the count grows with every
            # reading, and a caller that warns once per distinct reason (SMICallback)
            # would warn again at each window for the same fault.
            parts.append(f"{what} has no power sample near the window"
                         + (" (its power readings were [N/A])"
                            if missing.get((d.component, d.index)) else ""))
        return "; ".join(parts) + self._health_suffix()

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
        if not self._running and not self._sources:
            return "the meter was never started"
        reason = self.health.get("reason")
        names = ", ".join(s.name for s in self._sources)
        return f"no sample received from {names}" + (f": {reason}" if reason else "")


@atexit.register
def _stop_all() -> None:
    for meter in list(_LIVE):
        meter.stop()
