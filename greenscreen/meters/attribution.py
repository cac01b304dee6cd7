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
from .processes import ProcessWatcher, share


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
    if polled and not listed:
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


def mark_unknown(window, warn: bool) -> None:
    """`window`'s GPUs listed no compute process, not even this one: who else used them is
    unknown; its figures stay the whole GPUs' (warned once per meter by the caller)."""
    window.shared_with = "unknown"
    if warn:
        warnings.warn("greenscreen: the driver lists no compute process on the measured "
                      "GPU(s), not even this one (a container?): the figures are the whole "
                      "GPUs' and marked ';attributed:sharing-unknown'; a local sweep splits "
                      "them evenly among its runs (sweep_energy.json)", RuntimeWarning,
                      stacklevel=4)


def charge_cpu(window, series: list, cpu_share: CpuShare) -> None:
    """Each CPU package's and DRAM zone's energy in `window` replaced by the process
    tree's share of it: per piece between CPU-time polls, its share of the node's busy
    CPU time (NaN where that share cannot be read)."""
    pieces = cpu_share.pieces(window.t_start, window.t_end)
    for d, s in zip(window.devices, series):
        if d.component in ("cpu", "dram") and not math.isnan(d.energy_j):
            charged = sum((s.energy_at(b) - s.energy_at(a)) * f for a, b, f in pieces)
            d.energy_j, d.power_avg_w = charged, charged / max(window.duration_s, 1e-12)
