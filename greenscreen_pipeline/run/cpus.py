"""Each local worker slot's share of this machine's CPUs, and the pinning that gives it.

Every backend sizes its thread pools by the CPUs a process may run on: TensorFlow's and
XLA's intra-op pools, PyTorch's OpenMP threads. Two workers on two cores then run two
threads per pool each, four busy threads on two cores that spin waiting for each other:
on the 2-core VM, six small runs spent 4.3x the CPU-time energy of one worker under
PyTorch and 1.3x under JAX (benchmarks/RESULTS.md, "Workers pinned to their share of the
CPUs"). So `sweep local --workers N` gives slot k the k-th of N near-equal, contiguous
shares of the CPUs the sweep may use (one CPU each, taken in turn, where N exceeds them),
in `GREENSCREEN_CPUS`; the worker, or a run's own process, pins itself to it before it
imports the backend, which then sizes its pools to the share. One worker is never pinned.
Slurm and Ray give their tasks CPUs of their own.
"""

from __future__ import annotations

import os
import sys

ENV = "GREENSCREEN_CPUS"


def shares(workers: int) -> list[list[int]] | None:
    """The CPUs of each of `workers` slots; None for one worker, or where this platform
    cannot pin a process (no `os.sched_setaffinity`)."""
    if workers <= 1 or not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if workers >= len(cpus):
        return [[cpus[k % len(cpus)]] for k in range(workers)]
    size, extra = divmod(len(cpus), workers)
    out, start = [], 0
    for k in range(workers):
        end = start + size + (1 if k < extra else 0)
        out.append(cpus[start:end])
        start = end
    return out


def environment(slot: int, workers: int) -> dict[str, str]:
    """The variable that pins slot `slot` of `workers` to its share ({} where none is)."""
    split = shares(workers)
    return {ENV: ",".join(map(str, split[slot]))} if split else {}


def allowed() -> list[int] | None:
    """The CPUs this process may run on (results.json's timing.cpus); None where the
    platform does not say."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def pin() -> None:
    """Pins this process to the CPUs `GREENSCREEN_CPUS` names, if any; called first thing,
    before the backend is imported and starts its threads (which inherit the pinning).
    Where the system refuses (CPUs taken away since), it says so and runs unpinned."""
    named = os.environ.get(ENV)
    if not named:
        return
    try:
        os.sched_setaffinity(0, {int(c) for c in named.split(",")})
    except (OSError, ValueError) as exc:
        print(f"greenscreen worker: could not pin to CPUs {named} ({exc}); running on "
              "every CPU", file=sys.stderr)
