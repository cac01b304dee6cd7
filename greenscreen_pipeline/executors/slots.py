"""The command line's worker slots: which worker a command starts itself (`sweep local`'s
slot 0, `all`'s final worker) and the GPUs and workers the command line names. The
commands keep a worker across stages (the probe, the sweep, the final runs), so the
backend is imported once; `local.py`'s pool starts the other slots."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..space import SweepConfig
    from .workers import WorkerSlot


def first_worker(config: SweepConfig, args: argparse.Namespace) -> WorkerSlot | None:
    """`sweep local`'s slot 0 worker (not started until used): it probes your code, trains
    the first runs and, under `all` with one worker, the final runs, so the backend is
    imported once. On the first of --gpus, where given, and with several workers on its
    share of the CPUs. None for Ray and Slurm, whose workers run elsewhere."""
    if args.executor != "local":
        return None
    return _local_worker(config, args, worker_count(args))


def final_worker(config: SweepConfig, args: argparse.Namespace) -> WorkerSlot:
    """`all`'s worker for the final runs after a sweep of several workers: unpinned, on
    the first of --gpus where given."""
    return _local_worker(config, args, 1)


def _local_worker(config: SweepConfig, args: argparse.Namespace, workers: int) -> WorkerSlot:
    """Slot 0's worker of `workers` (pinned to its share of the CPUs where several), on
    the first of --gpus where given."""
    from .local import slot_environment
    from .workers import WorkerSlot

    return WorkerSlot(slot_environment(0, workers, gpus(args)),
                      config.settings["worker_memory_growth_mb"])


def gpus(args: argparse.Namespace) -> list[str] | None:
    """--gpus 0,1 as ["0", "1"]; None where not given (or empty)."""
    given = getattr(args, "gpus", None)
    return [g.strip() for g in given.split(",") if g.strip()] or None if given else None


def first_gpu(args: argparse.Namespace) -> str | None:
    """The first of --gpus, or None."""
    return (gpus(args) or [None])[0]


def worker_count(args: argparse.Namespace) -> int:
    """--workers, at least 1 (commands without the option: 1)."""
    return max(1, getattr(args, "workers", None) or 1)
