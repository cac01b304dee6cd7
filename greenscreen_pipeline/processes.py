"""Whether the process a claim or an attempt's start names is alive, and is the one that
wrote it: a pid with its start in clock ticks after the boot (Linux's /proc/PID/stat),
so that a pid reused after a reboot or a wrap is not taken for the writer."""

from __future__ import annotations

import os
from pathlib import Path


def process_alive(pid: int, started: int | None = None) -> bool:
    """Whether process `pid` of this host is alive; with `started` (its `process_start`
    as recorded with its pid: in a claim, an attempt's start), only if the live process
    started then: one that started at another time holds a reused pid (after a reboot,
    say), not the process that wrote it."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if started is None:
        return True
    now = process_start(pid)
    return now is None or now == started


def recorded_alive(record: dict) -> bool:
    """Whether the process a claim or an attempt's start names (`pid`, on this host) is
    alive and is the one that wrote it: by its recorded start (`pid_started`), or, in a
    record from before those, by its wall-clock `time` against the live process's start
    (one second of slack: the boot time is kept in whole seconds)."""
    pid, ticks, written = record.get("pid", 0), started_of(record), record.get("time")
    if ticks is not None or not isinstance(written, (int, float)):
        return process_alive(pid, ticks)
    return process_alive(pid) and not _started_after(pid, float(written))


def _started_after(pid: int, t: float) -> bool:
    ticks = process_start(pid)
    try:
        with open("/proc/stat") as stat:
            boot = next(int(line.split()[1]) for line in stat if line.startswith("btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    return ticks is not None and boot + ticks / os.sysconf("SC_CLK_TCK") > t + 1.0


def started_of(record: dict) -> int | None:
    """The `process_start` a claim or an attempt's start recorded with its pid
    (`pid_started`); None in one from before these were recorded."""
    ticks = record.get("pid_started")
    return ticks if isinstance(ticks, int) and not isinstance(ticks, bool) else None


def process_start(pid: int) -> int | None:
    """When process `pid` started, in clock ticks after the boot (Linux's /proc/PID/stat):
    counted from the boot, not the wall clock, so a clock step changes nothing, and two
    processes that held one pid in turn differ. None where this cannot be told."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None
