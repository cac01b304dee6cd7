"""A process tree's share of the node's busy CPU time: how CPU and DRAM energy is
attributed to one training among everything else the node runs.

RAPL measures whole packages and their DRAM. With `attribution="process"`, a meter
charges its process tree (itself and every descendant: data-loader workers, compiler
subprocesses) the share of the node's *busy* CPU time that the tree used over the same
time, `measured:rapl;attributed:cpu-time-share`:

    share = (tree's user + system time) / (node's busy time, every CPU)

The node's busy time is `/proc/stat`'s user + nice + system + irq + softirq + steal
(idle and iowait left out), or the file `$GREENSCREEN_PROC_STAT` names. The shares of
all the processes on a node add up to one, so two runs' charges add up to the packages'
energy, idle power included: idle power is split in proportion to busy time (a lone
run on an otherwise idle node is charged all of it, as with "device").

`CpuShare` polls both counters on a thread (on each whole second of the wall clock by
default, the same instants in every process, and whenever a window closes) and keeps
the timeline; `pieces(a, b)` cuts [a, b] at the polls, each piece with the share over it.

Example:

```python
import os
from greenscreen.meters.cputime import CpuShare

share = CpuShare(os.getpid()).start()
...
for a, b, fraction in share.pieces(t0, t1):
    print(a, b, fraction)
share.stop()
```
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_right

import numpy as np

NAN = float("nan")
ENV_STAT = "GREENSCREEN_PROC_STAT"
_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system (idle iowait) irq softirq steal


def node_busy_seconds(path: str | None = None) -> float:
    """The node's busy CPU seconds since boot, summed over every CPU (`/proc/stat`'s
    first line). Raises OSError or ValueError where it cannot be read."""
    with open(path or os.environ.get(ENV_STAT) or "/proc/stat") as fh:
        fields = fh.readline().split()
    if not fields or fields[0] != "cpu":
        raise ValueError(f"no 'cpu' line at the top of {fh.name}")
    ticks = [int(v) for v in fields[1:]]
    return sum(ticks[i] for i in _BUSY_FIELDS if i < len(ticks)) / _TCK


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of `pid` and its descendants: each live process's user + system time
    and that of the children it has reaped (so a finished worker still counts once)."""
    return _subtree_ticks(pid) / _TCK


def _subtree_ticks(pid: int, tries: int = 5) -> int:
    """`pid`'s own and reaped-children ticks plus each live child's subtree. A child
    reaped while the subtree is read moves its time into `pid`'s reaped ticks after
    they were read, and is gone from the listing: it would count nowhere, and the tree's
    time would drop for one poll (a piece charged nothing, the next charged too much).
    So the subtree is read again until `pid`'s reaped ticks hold still across it."""
    total = 0
    for _ in range(tries):
        before = _stat_ticks(pid)
        if before is None:
            return 0  # it ended since it was listed
        total = sum(before) + sum(_subtree_ticks(c) for c in _children(pid))
        after = _stat_ticks(pid)
        if after is None or after[1] == before[1]:
            break
    return total


def _stat_ticks(pid: int) -> tuple[int, int] | None:
    """(utime + stime, cutime + cstime) of `pid` in clock ticks; None once it has ended."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])
    except (OSError, IndexError, ValueError):
        return None


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from each thread's `children` file where the kernel has
    them (CONFIG_PROC_CHILDREN), else from every process's parent."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out, readable = [], False
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(c) for c in fh.read().split()]
            readable = True
        except OSError:
            continue
    return out if readable else _children_by_scan(pid)


def _children_by_scan(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return out


class CpuShare:
    """The timeline of (time, tree CPU seconds, node busy seconds) for one process tree.

    A failed read is recorded in `reason`; the timeline keeps what it had.
    """

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid, self.interval = pid, interval
        self.reason: str | None = None
        self._t: list[float] = []
        self._tree: list[float] = []
        self._node: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "CpuShare":
        self.poll()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="greenscreen-cpu-share",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        # On the wall clock's whole intervals: every meter on the node polls at the same
        # instants, so their pieces line up and their shares add up to one in each.
        while not self._stop.wait(self.interval - time.time() % self.interval):
            self.poll()

    def poll(self) -> None:
        """One reading of both counters, now."""
        try:
            asked = time.time()
            node = node_busy_seconds()
            tree = tree_cpu_seconds(self.pid)
            t = (asked + time.time()) / 2
        except (OSError, ValueError) as exc:
            self.reason = f"the node's CPU time cannot be read: {exc}"
            return
        with self._lock:
            if self._t and t <= self._t[-1]:
                return
            self._t.append(t)
            self._tree.append(tree)
            self._node.append(node)

    def pieces(self, a: float, b: float) -> list[tuple[float, float, float]]:
        """[a, b] cut at the polls inside it, each piece with the tree's share of the
        node's busy time over it. A piece in which the node was not busy at all takes
        the share over the whole window (0 if the node was idle throughout). Before the
        first and after the last poll, the nearest poll interval's share holds."""
        with self._lock:
            t, tree, node = (np.asarray(x) for x in (self._t, self._tree, self._node))
        if t.size < 2:
            return [(a, b, NAN)]
        lo, hi = bisect_right(self._t, a), bisect_right(self._t, b)
        cuts = [a, *t[lo:hi].tolist(), b]
        grid = np.clip(np.asarray(cuts), t[0], t[-1])
        d_tree, d_node = np.diff(np.interp(grid, t, tree)), np.diff(np.interp(grid, t, node))
        overall = float(d_tree.sum() / d_node.sum()) if d_node.sum() > 0 else NAN
        out = []
        for k, (x, y) in enumerate(zip(cuts, cuts[1:])):
            if y <= x:
                continue
            if d_node[k] > 0:
                fraction = float(d_tree[k] / d_node[k])
            else:  # outside the timeline, or no busy time: the nearest share, or overall
                fraction = self._edge_share(x, t, tree, node, overall)
            out.append((x, y, min(max(fraction, 0.0), 1.0)))
        return out

    @staticmethod
    def _edge_share(x: float, t, tree, node, overall: float) -> float:
        k = 0 if x < t[0] else len(t) - 2 if x >= t[-1] else None
        if k is not None and node[k + 1] > node[k]:
            return float((tree[k + 1] - tree[k]) / (node[k + 1] - node[k]))
        return overall if overall == overall else 0.0
