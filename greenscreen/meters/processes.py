"""Who computes on the measured GPUs: the compute processes of each device, and each
one's share of its streaming multiprocessors (SM) where the driver reports it.

A GPU's power is the whole board's. When other processes compute on it too, a
meter that charges this process with all of it counts their joules as well, and
two such meters count every joule twice. `ProcessWatcher` polls the driver on a
thread and keeps a timeline of `Occupancy` snapshots; `share` turns one snapshot
into this process's fraction of the device:

- `sm-share`: this process's SM utilisation over the sum of every process's;
- `even-split`: 1 / the number of processes, where utilisation is not reported
  for all of them (or sums to zero).

Two readers, matching the power sources: `nvidia-smi pmon -c 1 -s u` (one
process per poll), and NVML's `nvmlDeviceGetComputeRunningProcesses` plus
`nvmlDeviceGetProcessUtilization`. A poll a second keeps the time a change goes
unseen short, and costs one short nvidia-smi call (NVML: a few library calls).
"""

from __future__ import annotations

import math
import subprocess
import threading
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Callable

NAN = float("nan")


@dataclass(frozen=True)
class Occupancy:
    """The compute processes on one device at time `t`: pid -> SM % (NaN: not reported)."""

    t: float
    uuid: str
    sm_pct: dict = field(default_factory=dict)


def share(occupancy: "Occupancy | None", me: int) -> tuple[float, str | None, tuple]:
    """(this process's fraction, how it was attributed or None if alone, the other pids).

    This process counts as present even where the driver does not list it (a
    container's pids differ from the host's), since it measures the device to train.
    """
    if occupancy is None:
        return 1.0, None, ()
    others = tuple(sorted(p for p in occupancy.sm_pct if p != me))
    if not others:
        return 1.0, None, ()
    sm = {p: occupancy.sm_pct.get(p, NAN) for p in (me, *others)}
    total = sum(sm.values())
    if not math.isnan(total) and total > 0:
        return sm[me] / total, "sm-share", others
    return 1.0 / (len(others) + 1), "even-split", others


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return NAN


class SmiProcesses:
    """Reads the compute processes with one `nvidia-smi pmon -c 1 -s u` per poll (pid and
    SM % per GPU); where pmon is not supported, `--query-compute-apps` (pids only)."""

    def __init__(self, executable: str) -> None:
        self.executable = executable

    def _run(self, *args: str) -> str:
        return subprocess.run([self.executable, *args], capture_output=True, text=True,
                              timeout=20, check=True, stdin=subprocess.DEVNULL).stdout

    def read(self, uuid_of: dict[int, str]) -> list[Occupancy]:
        pids: dict[str, dict[int, float]] = {u: {} for u in uuid_of.values()}
        asked = time.time()
        try:
            monitored = self._run("pmon", "-c", "1", "-s", "u")
        except (OSError, subprocess.SubprocessError):
            monitored = None  # no per-process monitoring here (e.g. a vGPU)
        now = (asked + time.time()) / 2  # the listing describes the call's time, not its end
        if monitored is None:
            return self._apps(pids, now)
        for line in monitored.splitlines():
            parts = line.split()
            # "# gpu pid type sm mem ...": a compute process has "C" in its type
            if line.startswith("#") or len(parts) < 4 or not parts[1].isdigit() or \
                    "C" not in parts[2] or not parts[0].isdigit():
                continue
            uuid = uuid_of.get(int(parts[0]))
            if uuid in pids:
                pids[uuid][int(parts[1])] = _number(parts[3])
        return [Occupancy(now, u, sm) for u, sm in pids.items()]

    def _apps(self, pids: dict, now: float) -> list[Occupancy]:
        for line in self._run("--query-compute-apps=gpu_uuid,pid",
                              "--format=csv,noheader,nounits").splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 2 and parts[0] in pids and parts[1].isdigit():
                pids[parts[0]][int(parts[1])] = NAN
        return [Occupancy(now, u, sm) for u, sm in pids.items()]


class NvmlProcesses:
    """Reads the compute processes through NVML."""

    def __init__(self) -> None:
        import pynvml

        self.nv = pynvml
        self.nv.nvmlInit()
        self.last_seen: dict[str, int] = {}

    def read(self, uuid_of: dict[int, str]) -> list[Occupancy]:
        nv, now, out = self.nv, time.time(), []
        for uuid in uuid_of.values():
            handle = nv.nvmlDeviceGetHandleByUUID(uuid)
            sm = {p.pid: NAN for p in nv.nvmlDeviceGetComputeRunningProcesses(handle)}
            try:
                for s in nv.nvmlDeviceGetProcessUtilization(handle, self.last_seen.get(uuid, 0)):
                    if s.pid in sm:
                        sm[s.pid] = float(s.smUtil)
                    self.last_seen[uuid] = max(self.last_seen.get(uuid, 0), s.timeStamp)
            except nv.NVMLError:
                pass  # no utilisation samples (yet, or on this GPU): split evenly
            out.append(Occupancy(now, uuid, sm))
        return out

    def close(self) -> None:
        self.nv.nvmlShutdown()


class ProcessWatcher:
    """Polls a reader every `interval` seconds; answers "what was on device u at t?".

    A failed read is recorded in `reason` and the last snapshot stays in force.
    """

    def __init__(self, reader, devices: Callable[[], dict[int, str]],
                 interval: float = 1.0) -> None:
        self.reader, self.devices, self.interval = reader, devices, interval
        self.reason: str | None = None
        self._timeline: dict[str, tuple[list[float], list[Occupancy]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._polled = threading.Event()  # set once a poll of the GPUs has ended
        self._thread: threading.Thread | None = None

    def wait_first(self, timeout: float) -> bool:
        """Waits (at most `timeout` seconds) until the first poll has ended: a window that
        closes before the first listing would otherwise be charged as if alone (pmon's
        first answer takes a second or two). True if it has."""
        return self._polled.wait(timeout)

    def start(self) -> "ProcessWatcher":
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="greenscreen-processes",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=25)
            self._thread = None
        if hasattr(self.reader, "close"):
            self.reader.close()

    def poll(self) -> bool:
        """One read, now (the thread calls it; tests and callers may too). False where
        the GPUs are not known yet (the power source's first sample has not come)."""
        uuid_of = self.devices()
        if not uuid_of:
            return False
        try:
            self._read(uuid_of)
        finally:
            self._polled.set()
        return True

    def _read(self, uuid_of: dict[int, str]) -> None:
        try:
            snapshots = self.reader.read(uuid_of)
        except Exception as exc:  # a missing or failing reader must not stop the meter
            self.reason = f"could not list the GPUs' compute processes: {exc}"
            return
        with self._lock:
            for occ in snapshots:
                times, occs = self._timeline.setdefault(occ.uuid, ([], []))
                times.append(occ.t)
                occs.append(occ)

    def _loop(self) -> None:
        while not self._stop.is_set():
            # Until the GPUs are known, soon again: the first listing is awaited.
            self._stop.wait(self.interval if self.poll() else min(0.1, self.interval))

    def segments(self, uuid: str, a: float, b: float) -> list[tuple[float, float, Occupancy]]:
        """[a, b] cut where the occupancy of `uuid` changes, each piece with its snapshot.

        A change seen at one poll happened at some time since the poll before; it is
        placed halfway between them, which halves the error on average and makes it
        as likely early as late. The first snapshot also stands for the time before it.
        """
        with self._lock:
            times, occs = self._timeline.get(uuid, ([], []))
            times, occs = list(times), list(occs)
        if not occs:
            return [(a, b, None)]
        starts = [-math.inf] + [(t0 + t1) / 2 for t0, t1 in zip(times, times[1:])]
        first = max(0, bisect_right(starts, a) - 1)
        out, lo = [], a
        for k in range(first, len(occs)):
            hi = min(b, starts[k + 1]) if k + 1 < len(occs) else b
            if hi > lo:
                out.append((lo, hi, occs[k]))
            lo = max(lo, hi)
            if lo >= b:
                break
        return out or [(a, b, occs[first])]


def watcher_for(source_name: str, devices, interval: float = 1.0) -> ProcessWatcher | None:
    """The watcher matching a power source, or None for sources without processes."""
    if source_name == "nvidia-smi":
        from .nvidia_smi import executable_or_none

        executable = executable_or_none()
        return ProcessWatcher(SmiProcesses(executable), devices, interval) if executable \
            else None
    if source_name == "nvml":
        try:
            return ProcessWatcher(NvmlProcesses(), devices, interval)
        except Exception as exc:  # its reads fail, saying why: sharing is then unknown
            return ProcessWatcher(Unlistable(str(exc)), devices, interval)
    return None


class Unlistable:
    """The reader for GPUs whose processes cannot be listed: every read fails, saying why."""

    def __init__(self, why: str) -> None:
        self.why = why

    def read(self, uuid_of: dict[int, str]) -> list:
        raise RuntimeError(self.why)
