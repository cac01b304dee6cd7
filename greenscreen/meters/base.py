"""The sample type and the interface every power source implements.

A source turns a device (GPU, CPU package, process) into a stream of
timestamped `Sample`s and hands them to a sink, normally an `EnergyMeter`.
Streaming sources (nvidia-smi) push samples as their subprocess prints them;
polled sources (NVML, RAPL, the CPU estimate) are read on a timer thread.
"""

from __future__ import annotations

import abc
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..validation import check_number

NAN = float("nan")
MIN_GAP_S = 0.02  # the closest two reads of a polled source may be (or a quarter interval)
# The shortest sampling interval: nvidia-smi's --loop-ms counts whole milliseconds, and a
# shorter one would only make a polling thread spin, spending the energy it measures.
MIN_INTERVAL_S = 0.001
# What a sample measures: a GPU board, a CPU package (RAPL "package-N") or the DRAM of a
# package (RAPL "dram"). A meter sums its components into one total, never an estimate
# into a measurement.
COMPONENTS = ("gpu", "cpu", "dram")

Sink = Callable[[list["Sample"]], None]


def check_positive(name: str, value: Any, *, allow_none: bool = False) -> Any:
    """Checks a finite number > 0 (seconds, watts): infinity is refused here, at the
    argument, not later where a thread computes with it ("allowed: a number in (0, inf)").
    """
    return check_number(name, value, low=0, low_open=True, high=math.inf, high_open=True,
                        allow_none=allow_none)


def check_interval(interval: Any) -> Any:
    """Checks a sampling interval in seconds: a finite number of at least 0.001 (1 ms).

    The one rule for every source and meter, so that `EnergyMeter(interval=...)`,
    `SMICallback(interval=...)` and each source's own argument fail alike, at construction.
    """
    return check_number("interval", interval, low=MIN_INTERVAL_S, high=math.inf,
                        high_open=True)


class SourceUnavailable(RuntimeError):
    """A power source cannot run on this machine; the message says why."""


@dataclass(frozen=True)
class Sample:
    """One reading of one device. Missing values are NaN, never strings."""

    t: float  # Unix seconds of the reading
    index: int
    uuid: str
    name: str
    power_w: float = NAN
    temp_c: float = NAN
    util_pct: float = NAN
    mem_used_mib: float = NAN
    energy_mj: float = NAN  # cumulative hardware counter, where the source has one
    energy_range_mj: float = NAN  # where that counter wraps (RAPL's max_energy_range_uj)
    component: str = "gpu"  # one of COMPONENTS
    # The counter went back where its source could not unwrap it (RAPL: a reset, or a
    # wrap with its range unknown): rebased there, the interval it ends widened.
    counter_reset: bool = False

    @property
    def has_power(self) -> bool:
        return not math.isnan(self.power_w)

    @property
    def has_energy(self) -> bool:
        return not math.isnan(self.energy_mj)


# Faults a source counts in `SourceHealth.counts` (by name), listed for every source so
# that a meter's sources add up key by key: RAPL's counter that went back without a wrap.
COUNTED_FAULTS = ("counter_resets",)


@dataclass
class SourceHealth:
    """Fault counters and the last reason a source gave for missing data (or, for a
    counter reset, for energy not counted). `counts` holds the faults only some sources
    have (`COUNTED_FAULTS`): each is a fault as the others are, in `faults` and
    `as_dict`."""

    restarts: int = 0
    stalls: int = 0
    garbage_lines: int = 0
    read_errors: int = 0
    reason: str | None = None
    counts: dict = field(default_factory=dict)

    @property
    def faults(self) -> int:
        return (self.restarts + self.stalls + self.garbage_lines + self.read_errors
                + sum(self.counts.values()))

    def as_dict(self) -> dict:
        return {
            "restarts": self.restarts,
            "stalls": self.stalls,
            "garbage_lines": self.garbage_lines,
            "read_errors": self.read_errors,
            **{name: 0 for name in COUNTED_FAULTS},
            **self.counts,
            "faults": self.faults,
            "reason": self.reason,
        }


class PowerSource(abc.ABC):
    """Abstract power source. Subclasses set `name`, `provenance` and `components`."""

    name: str = "abstract"
    provenance: str = "unknown"
    components: tuple[str, ...] = ("gpu",)  # what its samples measure (see COMPONENTS)
    # A source whose `read_now` is cheap from any thread (RAPL, the estimate, NVML): the
    # meter reads it when a window closes after its newest reading, so the window's end
    # lies between two readings and is never figured again. Where it cannot be read (a
    # stream: nvidia-smi), the meter waits a moment for its next reading instead.
    reads_on_demand: bool = False

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = check_interval(interval)
        self.health = SourceHealth()

    @abc.abstractmethod
    def unavailable_reason(self) -> str | None:
        """Returns why this source cannot run here, or None if it can."""

    @abc.abstractmethod
    def start(self, sink: Sink) -> None:
        """Begins delivering samples to `sink` from a background thread."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stops delivering samples and releases every process and handle."""

    def read_now(self, sink: Sink, wanted: Callable[[], bool]) -> bool:  # noqa: B027
        """Where `reads_on_demand` and `wanted()`: one sample per device, taken now and
        given to `sink`. Returns whether it could ask (False: it cannot be read on demand,
        or its timer's read held it up). Sources that cannot be read on demand do nothing."""
        return False

    def expected_devices(self) -> list[tuple[str, int, str, str]]:
        """(component, index, uuid, name) of each device this source, once started, should
        give readings of, as its samples name it: a meter counts one that gave none as
        unknown (NaN), not as absent. [] where the source does not know them in advance."""
        return []

    def cpu_seconds(self) -> float:
        """CPU time the sampler has used so far: its thread (and subprocess, where it has
        one). Linux only; NaN elsewhere or when it is not running."""
        thread = getattr(self, "_thread", None)
        if thread is None or thread.native_id is None:
            return NAN
        return proc_cpu_seconds(f"/proc/self/task/{thread.native_id}/stat")


def proc_cpu_seconds(stat_path: str) -> float:
    """utime + stime of a /proc stat file, in seconds; NaN if it cannot be read."""
    import os

    try:
        with open(stat_path) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return NAN


class PolledSource(PowerSource):
    """A source read on a timer: subclasses implement `open`, `read`, `close`."""

    reads_on_demand = True

    def __init__(self, interval: float = 0.1) -> None:
        super().__init__(interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # One read at a time, the timer's or the meter's on demand: a RAPL zone keeps the
        # last value it unwrapped from.
        self._read_lock = threading.Lock()
        # Two reads are at least this far apart: a counter read twice within its own update
        # period (RAPL: ~1 ms) would show a power of nothing, or many times the true one.
        self.min_gap = min(interval / 4, MIN_GAP_S)
        self._last_read = -math.inf  # time.monotonic() of the last read

    def open(self) -> None:  # noqa: B027 - optional hook
        """Acquires handles; raises `SourceUnavailable` with the reason."""

    @abc.abstractmethod
    def read(self) -> list[Sample]:
        """Returns one sample per device, taken now."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Releases handles."""

    def read_now(self, sink: Sink, wanted: Callable[[], bool]) -> bool:
        # `wanted` is asked under the read lock, which the timer holds until its reading is
        # stored: a reading the timer took meanwhile is seen, not read again microseconds
        # later. Waits a moment at most: a read takes microseconds, and `min_gap` at most
        # separates it from the timer's.
        if not self.reads_on_demand or not self._read_lock.acquire(timeout=0.25):
            return False
        try:
            if wanted():
                time.sleep(max(self._last_read + self.min_gap - time.monotonic(), 0.0))
                self._read_into(sink)
        finally:
            self._read_lock.release()
        return True

    def _read_into(self, sink: Sink) -> None:
        """One reading, given to `sink`; the caller holds the read lock."""
        try:
            samples = self.read()
        finally:
            self._last_read = time.monotonic()
        sink(samples)

    def start(self, sink: Sink) -> None:
        self.open()
        # Each start's thread its own stop: a thread of an earlier start that outlived
        # `stop`'s join (a read hung past it) must not loop again beside the new one.
        self._stop = stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, args=(sink, stop), name=f"greenscreen-{self.name}", daemon=True
        )
        self._thread.start()

    def _loop(self, sink: Sink, stop: threading.Event) -> None:
        next_t = time.monotonic()
        while not stop.is_set():
            try:
                with self._read_lock:  # read and stored as one, for `read_now`
                    if time.monotonic() - self._last_read >= self.min_gap:  # else just read
                        self._read_into(sink)
            except Exception as exc:  # a failed read must not end the sampler
                self.health.read_errors += 1
                self.health.reason = f"{self.name} read failed: {exc}"
            next_t += self.interval
            delay = next_t - time.monotonic()
            if delay < 0:  # fell behind: skip missed ticks rather than burst
                next_t = time.monotonic()
                delay = 0
            stop.wait(delay)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.close()
