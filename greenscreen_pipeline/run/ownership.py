"""One owner per run, enforced by the operating system, and no process outliving its sweep.

The process that trains a run holds an exclusive `flock` on the run folder's `train.lock`
for as long as it trains it. The kernel releases the lock when that process ends however
it ends (SIGKILL included), so the lock, unlike a claim file, can never be stale: a
process that finds it held knows another process is training the run right now, whoever
started that process. The claim files (`executors/claims.py`) still decide which
executor goes first, across hosts of a shared file system; the lock makes sure that a
claim taken over from a dead sweep never lets a second process train a run that the dead
sweep's orphan is still training.

`die_with_parent` asks Linux to send SIGTERM to a worker or run process when the process
that started it dies (PR_SET_PDEATHSIG), so a `kill -9` of the sweep interrupts its runs
as a Ctrl-C does, instead of leaving them training unseen.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable

LOCK_FILE = "train.lock"
PR_SET_PDEATHSIG = 1


class Busy(RuntimeError):
    """Another process holds the run's lock: it is training that run now."""

    def __init__(self, folder: Path, pid: int | None, doing: str = "being trained") -> None:
        super().__init__(f"{folder} is {doing} by pid {pid or '?'} right now")
        self.pid = pid


class Held:
    """The run's lock, held by this process until `release` (or until it ends).

    `name`: another lock file of the folder, for another one-holder role (the sweep's
    GPU meter holds `<sweep>/sweep_energy.lock`, `ledger.DeviceLedger`)."""

    def __init__(self, folder: Path, name: str = LOCK_FILE) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / name
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self.fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise Busy(folder, holder(folder, name),
                           "being trained" if name == LOCK_FILE else f"locked ({name})") \
                    from None
            raise
        # Who holds it, for the messages of the process that finds it held.
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = -1

    def __enter__(self) -> "Held":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def locked(folder: Path) -> bool:
    """Whether some process holds the run's lock now (it is training the run)."""
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # releases the shared lock taken just to ask
    return False


def holder(folder: Path, name: str = LOCK_FILE) -> int | None:
    """The pid the lock's holder wrote into it (a hint for messages, not the lock)."""
    try:
        return int((Path(folder) / name).read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


def wait_until_free(folder: Path, give_up: Callable[[], bool], poll_s: float = 0.25) -> bool:
    """Waits while another process holds the run's lock; False if `give_up()` said so."""
    while locked(folder):
        if give_up():
            return False
        time.sleep(poll_s)
    return True


def die_with_parent(parent_pid: int | None = None) -> None:
    """SIGTERM this process when its parent dies (Linux; elsewhere nothing happens).

    `parent_pid` is the pid the parent gave us: if it died before the request was in
    place (our parent is already someone else), this process stops now.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            return
    if parent_pid and os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)
