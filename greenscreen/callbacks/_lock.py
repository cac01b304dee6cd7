"""One writer per `log_dir`: SMICallback's exclusive lock on `log_dir/greenscreen.lock`.

A fit's SMICallback holds an exclusive `flock` on the folder's `greenscreen.lock` from
`on_train_begin` to the end of the fit (`on_train_end`, or `close` after an interrupted
fit), so two fits never interleave rows in one `logs.csv` or overwrite each other's
`summary.json`. The kernel releases it when the process ends however it ends, so it is
never stale across processes. Within one process, a holder whose fit ended without
`on_train_end` (an exception, Ctrl-C) and without `close` is recognised and taken over:
it is not in the running fit's callback list (same thread), or its thread has ended.

The name differs from the pipeline's run lock (`train.lock`, greenscreen_pipeline's
run/ownership.py), which the pipeline holds on the same folders: the two never conflict.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
from pathlib import Path

import keras

try:
    import fcntl
except ImportError:  # Windows: no lock, each fit writes as before
    fcntl = None

LOCK_FILE = "greenscreen.lock"
_HELD: dict[str, "WriterLock"] = {}  # folder (real path) -> this process's lock on it
_GUARD = threading.Lock()


class WriterLock:
    """This process's lock on one folder, for one callback (`owner`)."""

    def __init__(self, key: str, fd: int, owner) -> None:
        self.key, self.fd, self.owner = key, fd, owner
        self.thread = threading.current_thread()

    def release(self) -> None:
        with _GUARD:
            if _HELD.get(self.key) is self:
                del _HELD[self.key]
            if self.fd >= 0:
                os.close(self.fd)  # closing it releases the flock
                self.fd = -1


def take(folder, owner) -> tuple[WriterLock | None, str | None]:
    """Makes `owner` the one writer of `folder`.

    Returns (lock, None) where it writes there now: lock is None where no lock can be
    taken (no fcntl, a file system without locks, a folder that cannot be made: the
    writes go on, and fail, as before); or (None, why) where another fit writes there.
    """
    if fcntl is None:
        return None, None
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(folder)
    except OSError:
        return None, None
    with _GUARD:
        held = _HELD.get(key)
    if held is not None and held.owner is not owner:
        if _running(held):
            return None, "another SMICallback in this process writes there (in this fit " \
                         "or in another thread's)"
        held.owner._close_dead()  # its fit ended without on_train_end or close: kept whole
        held.release()
    path = Path(key) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError:
        return None, None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
            return None, f"another process (pid {_holder(path)}) is training a model that " \
                         "writes there"
        return None, None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    lock = WriterLock(key, fd, owner)
    with _GUARD:
        _HELD[key] = lock
    return lock, None


def _lists_holding(owner):
    """The Keras CallbackLists on this thread's stack that hold `owner`, innermost first
    (each Keras call that `owner` is a callback of and that is still running)."""
    frame = sys._getframe(1)
    while frame is not None:
        caller = frame.f_locals.get("self")
        if isinstance(caller, keras.callbacks.CallbackList) and any(
                c is owner for c in caller.callbacks):
            yield caller
        frame = frame.f_back


def beside(owner) -> list:
    """The callbacks of the Keras call `owner` is a callback of (the innermost); [] where
    none is found (hooks called by hand)."""
    innermost = next(_lists_holding(owner), None)
    return list(innermost.callbacks) if innermost is not None else []


def inside_its_fit(owner) -> bool:
    """Whether a Keras call that `owner` (an SMICallback) is a callback of runs inside
    another call that it is a callback of too: an evaluate or predict that a callback of
    a running fit calls with the same SMICallback (two CallbackLists that hold it, the
    outer one the fit's)."""
    return len({id(c) for c in _lists_holding(owner)}) > 1


def _running(held: WriterLock) -> bool:
    """Whether the fit of this process's holder is still running: in another thread that
    is alive, or in this thread's running fit (its callback list holds the holder). Where
    the callback list cannot be found (hooks called by hand), it is taken to be running."""
    if held.thread is not threading.current_thread():
        return held.thread.is_alive()
    frame = sys._getframe(1)
    while frame is not None:
        caller = frame.f_locals.get("self")
        if isinstance(caller, keras.callbacks.CallbackList):
            return any(c is held.owner for c in caller.callbacks)
        frame = frame.f_back
    return True


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"
