"""Charging one process its share of shared devices: the GPUs by their compute processes
(`processes.py`), the CPU packages and DRAM by CPU time (`cputime.py`).

Both work piece by piece: a window is cut where the occupancy (GPUs) or the poll
(CPU time) changes, and each piece's energy, from the device's own series, is
multiplied by this process's fraction over that piece.
"""

from __future__ import annotations

import math
import warnings

from .cputime import CpuShare
from .processes import ProcessWatcher, share, watcher_for

# The longest a window's close waits for the GPUs' first process listing (once per meter;
# nvidia-smi pmon answers in a second or two, NVML at once). Past it, as before: a window
# no listing covers is charged as if alone.
FIRST_LISTING_S = 5.0


class Attribution:
    """One meter's attribution: who else used its devices, and this process's share.

    Holds the GPU process watcher and the CPU-time share, which the meter starts with
    its sources and stops with them, and warns once per meter about shared GPUs.

    Args:
        mode: "process" (charge this process its share) or "device" (the whole devices).
        pid: The process charged.
    """

    def __init__(self, mode: str, pid: int) -> None:
        self.mode, self.pid = mode, pid
        self.watcher: ProcessWatcher | None = None
        self.cpu_share: CpuShare | None = None
        self._warned_sharing = self._warned_unknown = False
        self._listing_awaited = False

    def start(self, gpu_source: str | None, uuids, cpu_measured: bool) -> None:
        """Watches the GPUs' processes where a GPU source (by name) runs, and the CPU-time
        share where the CPU or DRAM is measured and each process is charged its share."""
        self.watcher = watcher_for(gpu_source, uuids) if gpu_source else None
        self._listing_awaited = False  # a meter started again awaits its new watcher's
        if self.watcher is not None:
            self.watcher.start()
        if self.mode == "process" and cpu_measured:
            self.cpu_share = CpuShare(self.pid).start()

    def stop(self) -> None:
        for helper in (self.watcher, self.cpu_share):
            if helper is not None:
                helper.stop()

    def poll(self) -> None:
        """The CPU-time share up to now, not up to the last timer tick; and, before the
        first window is charged, the GPUs' first process listing (`FIRST_LISTING_S` at
        most): a first epoch shorter than pmon's first answer was charged the whole GPU,
        untagged, with others computing on it from the start."""
        if self.watcher is not None and not self._listing_awaited:
            self._listing_awaited = True  # once: a GPU never listed must not stall each close
            self.watcher.wait_first(FIRST_LISTING_S)
        if self.cpu_share is not None:
            self.cpu_share.poll()

    def share_reason(self) -> str:
        reason = self.cpu_share.reason if self.cpu_share else None
        return reason or "its CPU-time share is unknown"

    def gpus(self, window, series: list) -> str | None:
        """Records who shared the GPUs and, with mode "process", charges this process its
        share of each GPU. Returns how, or None when nothing changed."""
        if self.watcher is None:
            return None
        methods, pids, most = charge_gpus(window, series, self.watcher, self.pid,
                                          self.mode == "process")
        if not methods:
            return None
        if methods == {"sharing-unknown"}:  # a container? said, never assumed alone
            mark_unknown(window, warn=not self._warned_unknown, why=self.watcher.reason)
            self._warned_unknown = True
            return "sharing-unknown" if self.mode == "process" else None
        window.shared_with = {"processes": most, "pids": sorted(pids)}
        if not self._warned_sharing:
            self._warned_sharing = True
            warnings.warn(
                f"greenscreen: {most} other process(es) compute on the measured GPU(s) (pids "
                f"{', '.join(map(str, sorted(pids)))}); " + (
                    "each window charges this process its share (attribution='process')"
                    if self.mode == "process" else "each window charges this process "
                    "the whole devices (attribution='device'): their energy is counted too"),
                RuntimeWarning, stacklevel=2)
        if self.mode != "process":
            return None
        return "even-split" if "even-split" in methods else "sm-share"

    def cpu(self, window, series: list) -> str | None:
        """With mode "process", charges the packages' and DRAM's energy to this process
        tree by its share of the node's busy CPU time."""
        if self.cpu_share is None:
            return None
        charge_cpu(window, series, self.cpu_share)
        return "cpu-time-share"


def charge_gpus(window, series: list, watcher: ProcessWatcher, pid: int,
                charge: bool) -> tuple[set, set, int]:
    """Who shared each GPU of `window` with `pid`, and (if `charge`) each GPU's energy
    replaced by `pid`'s share of it. Returns (how it was split, the other pids, the
    most other processes at once); no methods means `pid` had the GPUs to itself, and
    {"sharing-unknown"} that the driver listed no compute process on any of them over the
    whole window, not even this one's (a container: other PID namespaces are invisible),
    so who else used them cannot be told. Before the first listing, nothing is assumed."""
    pids, most, methods, polled, listed = set(), 0, set(), False, False
    for d, s in zip(window.devices, series):
        if d.component == "gpu":
            seen = [o for _, _, o in watcher.segments(s.uuid, window.t_start, window.t_end)
                    if o is not None]
            polled, listed = polled or bool(seen), listed or any(o.sm_pct for o in seen)
    if (polled and not listed) or (not polled and watcher.reason):
        # Listed, but not even this process (a container); or never listed: the listing
        # fails (its reason). Who else used the GPUs cannot be told; never assumed alone.
        return {"sharing-unknown"}, set(), 0
    for d, s in zip(window.devices, series):
        if d.component != "gpu":
            continue
        charged = 0.0
        for a, b, occupancy in watcher.segments(s.uuid, window.t_start, window.t_end):
            fraction, how, others = share(occupancy, pid)
            if how:
                methods.add(how)
                pids.update(others)
                most = max(most, len(others))
            charged += (s.energy_at(b) - s.energy_at(a)) * fraction
        if charge and methods and not math.isnan(d.energy_j):
            d.energy_j, d.power_avg_w = charged, charged / max(window.duration_s, 1e-12)
    return methods, pids, most


def mark_unknown(window, warn: bool, why: str | None = None) -> None:
    """`window`'s GPUs listed no compute process, not even this one, or could not be
    listed (`why`): who else used them is unknown; its figures stay the whole GPUs'
    (warned once per meter by the caller)."""
    window.shared_with = "unknown"
    if warn:
        what = (f"the GPUs' compute processes were not listed ({why})" if why else
                "the driver lists no compute process on the measured GPU(s), not even "
                "this one (a container?)")
        warnings.warn(f"greenscreen: {what}: the figures are the whole GPUs' and marked "
                      "';attributed:sharing-unknown'; a local sweep splits them evenly "
                      "among its runs (sweep_energy.json)", RuntimeWarning, stacklevel=4)


def charge_cpu(window, series: list, cpu_share: CpuShare) -> None:
    """Each CPU package's and DRAM zone's energy in `window` replaced by the process
    tree's share of it: per piece between CPU-time polls, its share of the node's busy
    CPU time (NaN where that share cannot be read)."""
    pieces = cpu_share.pieces(window.t_start, window.t_end)
    for d, s in zip(window.devices, series):
        if d.component in ("cpu", "dram") and not math.isnan(d.energy_j):
            charged = sum((s.energy_at(b) - s.energy_at(a)) * f for a, b, f in pieces)
            d.energy_j, d.power_avg_w = charged, charged / max(window.duration_s, 1e-12)
