"""Run folders read again only when they changed: for what a sweep asks after every run.

The console's running total (`sweep_total.Totals`) and the sweep's GPU meter
(`ledger.DeviceLedger`, the runs' windows and GPUs) look at every run folder after each
finished run: reading every summary.json each time costs O(n^2) reads over a sweep of n
runs. A folder's `signature` (summary.json's inode, size and times; without one,
status.json's and logs.csv's) says whether it may have changed since it was read: the
callback replaces summary.json whole, so a new write is a new signature.

File times tick coarsely (a jiffy): a rewrite of the same size, in the same tick, on a
reused inode would keep its signature (git's "racily clean" files). So what was read
from a file written less than SETTLED_NS before is not kept (`settled`): it is read again
next time, until it is older than that.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from . import runfolder

SETTLED_NS = 2_000_000_000  # a file written this recently is read again next time


def signature(folder: "str | Path") -> tuple | None:
    """What changes when a run folder's figures may have (module docstring); None where
    it cannot be told: read it again."""
    def stat(name: str) -> tuple | None:
        try:
            st = os.stat(os.path.join(folder, name))
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns

    try:
        summary = stat("summary.json")
        return ("summary", summary) if summary else ("none", stat("status.json"),
                                                     stat("logs.csv"))
    except OSError:
        return None


def settled(sig: tuple | None, now_ns: int) -> bool:
    """Whether what was read under `sig` may be kept: its files were written at least
    SETTLED_NS before `now_ns` (the newest modification time it holds)."""
    if sig is None:
        return False
    written = max((st[2] for st in sig[1:] if st), default=0)
    return written < now_ns - SETTLED_NS


class KeptSummaries:
    """`runfolder.summaries`, asked again and again (the sweep's meter after every run):
    a folder's summary.json is parsed only when its `signature` changed. Not
    thread-safe: one caller (the meter records under the progress line's lock).

    Attributes:
        reads: summary.json files parsed so far (what a test can check it by).
    """

    def __init__(self) -> None:
        self.reads = 0
        self._kept: dict[tuple[str, int], tuple[tuple, object]] = {}

    def __call__(self, sweep_dir: "str | Path", runs: int) -> Iterator[tuple[int, object]]:
        """(index, RunSummary) of every run whose summary.json exists and can be read."""
        now_ns = time.time_ns()
        for i in runfolder.present(sweep_dir, runs):
            key = (str(sweep_dir), i)
            sig = signature(runfolder.run_dir(sweep_dir, i))
            kept = self._kept.get(key)
            if kept is not None and sig is not None and kept[0] == sig:
                summary = kept[1]
            else:
                self._kept.pop(key, None)
                summary = self._read(sweep_dir, i)
                if summary is not None and settled(sig, now_ns):
                    self._kept[key] = (sig, summary)
            if summary is not None:
                yield i, summary

    def _read(self, sweep_dir: "str | Path", index: int):
        self.reads += 1
        try:
            return runfolder.RunFolder.of(sweep_dir, index).summary()
        except runfolder.Unreadable:
            return None
