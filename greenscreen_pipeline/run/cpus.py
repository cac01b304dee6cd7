"""Each local worker slot's share of this machine's CPUs, and the pinning that gives it.

Every backend sizes its thread pools by the CPUs a process may run on: TensorFlow's and
XLA's intra-op pools, PyTorch's OpenMP threads, NumPy's BLAS. Two workers on two cores
then run two threads per pool each, four busy threads on two cores that spin waiting for
each other: on the 2-core VM, six small PyTorch runs spent 6 to 12x the CPU-time energy
that two pinned workers spend (benchmarks/RESULTS.md, "Workers pinned to their share of
the CPUs"). So `sweep local --workers N` gives slot k the k-th of N near-equal, contiguous
shares of the CPUs the sweep may use, in `GREENSCREEN_CPUS`, and caps the OpenMP and BLAS
thread counts at the share's size (or at a CPU quota's share: a container's `cpu.max`
can allow fewer CPUs than it lets a process see). The worker, or a run's own process,
pins itself first thing, before NumPy or the backend start their threads, which inherit
it. One worker is never pinned; with more workers than CPUs, none is (the system spreads
them) and each gets one thread per pool. Slurm gives its tasks CPUs of their own; Ray's
actors are not pinned (Ray sets one OpenMP thread each).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

ENV = "GREENSCREEN_CPUS"
THREAD_CAPS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"


def shares(workers: int) -> list[list[int]] | None:
    """The CPUs of each of `workers` slots; None for one worker, for more workers than
    CPUs, or where this platform cannot pin a process (no `os.sched_setaffinity`)."""
    if workers <= 1 or not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if workers > len(cpus):
        return None
    size, extra = divmod(len(cpus), workers)
    out, start = [], 0
    for k in range(workers):
        end = start + size + (1 if k < extra else 0)
        out.append(cpus[start:end])
        start = end
    return out


def quota() -> int | None:
    """The CPUs a cgroup v2 quota allows this process (rounded up), or None: no quota."""
    try:
        limit, period = CPU_MAX.read_text().split()[:2]
        return None if limit == "max" else max(1, math.ceil(int(limit) / int(period)))
    except (OSError, ValueError):
        return None


def environment(slot: int, workers: int) -> dict[str, str]:
    """Slot `slot`'s variables: its share (`ENV`) and the thread caps, those of the caps
    this process's environment does not set already; {} for one worker."""
    if workers <= 1:
        return {}
    split = shares(workers)
    seen = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    threads = max(1, min(seen, quota() or seen) // workers)
    out = {name: str(threads) for name in THREAD_CAPS if name not in os.environ}
    if split:
        out[ENV] = ",".join(map(str, split[slot]))
    return out


def allowed() -> list[int] | None:
    """The CPUs this process may run on (results.json's timing.cpus); None where the
    platform does not say."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def pin() -> None:
    """Pins this process to the CPUs `GREENSCREEN_CPUS` names, if any. Called before any
    other import of the worker or run process: a thread started earlier (NumPy's BLAS
    pool) would stay on every CPU. Where the system refuses (CPUs taken away since), it
    says so and runs unpinned."""
    named = os.environ.get(ENV)
    if not named:
        return
    try:
        os.sched_setaffinity(0, {int(c) for c in named.split(",")})
    except (OSError, ValueError) as exc:
        print(f"greenscreen worker: could not pin to CPUs {named} ({exc}); running on "
              "every CPU", file=sys.stderr)
