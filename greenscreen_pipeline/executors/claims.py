"""Run claims: which process trains a run, so that no run is ever trained twice at once.

A claim is the file `<sweep>/.claims/NNN`, created with O_CREAT | O_EXCL, which exactly
one creator wins, on shared storage too. It holds the owner's pid and host, so a claim
left by a dead process of this host can be taken over. A claim still empty `WRITING_S`
after it was created was never finished (its creator died, or the disk filled, between
creating and writing it): it is taken over as a dead process's is.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from ..processes import process_start, recorded_alive
from ..run import ownership
from ..runfolder import RunFolder

# Writing a claim's one line takes milliseconds, on shared storage too: an empty claim this
# old is not being written.
WRITING_S = 30.0


def claim_path(sweep_dir: Path, index: int) -> Path:
    return Path(sweep_dir) / ".claims" / f"{index:03d}"


def claim(sweep_dir: Path, index: int) -> bool:
    """Atomically claims run `index` for this process; False if another process holds it.

    A claim left by a dead process of this host is taken over under an flock of its own
    lock file, re-checked inside the lock, so two workers that both see it stale cannot
    both take it; never while a process still holds the run's own lock
    (`run.ownership`): the dead sweep's orphan still trains it.
    """
    path = claim_path(sweep_dir, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    if _create(path):
        return True
    with open(path.with_name(f"{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            holder = owner(sweep_dir, index)
            if holder is None:
                return _create(path)  # released meanwhile: try once
            if not _stale(path, holder):
                return False
            if ownership.locked(RunFolder.of(sweep_dir, index).path):
                return False  # its sweep is gone, but a process of it still trains the run
            path.unlink(missing_ok=True)  # stale: its process is gone
            return _create(path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def held_by_live_process(holder: dict) -> bool:
    """Whether a claim's owner (`owner`) is a live process; True where this host cannot
    tell (another host's claim, or one still being written)."""
    if not holder or holder.get("host") != socket.gethostname():
        return True
    return recorded_alive(holder)


def _stale(path: Path, holder: dict) -> bool:
    """A claim no live process holds: a dead process's of this host, or one left empty
    (or unreadable) for longer than anyone takes to write it."""
    return _age(path) > WRITING_S if not holder else not held_by_live_process(holder)


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def trained_now(sweep_dir: Path, index: int) -> bool:
    """Whether a live process trains run `index` now, or may: a live (or unknown) claim,
    or the run's lock held (a gone sweep's orphan still training it)."""
    holder = owner(sweep_dir, index)
    if holder is not None and not _stale(claim_path(sweep_dir, index), holder):
        return True
    return ownership.locked(RunFolder.of(sweep_dir, index).path)


def release(sweep_dir: Path, index: int) -> None:
    claim_path(sweep_dir, index).unlink(missing_ok=True)


def owner(sweep_dir: Path, index: int) -> dict | None:
    """The claim's owner; None if there is no claim; {} while its creator is still writing."""
    try:
        return json.loads(claim_path(sweep_dir, index).read_text() or "{}")
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def _create(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time(),
                       "pid_started": process_start(os.getpid())}, fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:  # a full disk: no empty claim left for ever in the run's way
        path.unlink(missing_ok=True)
        raise
    return True
