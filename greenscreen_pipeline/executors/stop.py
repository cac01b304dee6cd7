"""Stopping a sweep on SIGINT or SIGTERM within seconds, without failing any run."""

from __future__ import annotations

import os
import signal
import subprocess
import threading

from ..log import logger

log = logger(__name__)


class Stop:
    """SIGINT and SIGTERM stop the sweep within seconds, without failing any run.

    The first signal stops handing out runs and sends SIGTERM to every run process
    (a Ctrl-C in a terminal reaches them directly too); each marks its run
    interrupted, keeps its checkpoint and exits, and its claim is released. A second
    signal kills the run processes and ends at once. Handlers only set flags and
    signal children, and the main thread waits with timeouts, so this behaves the
    same on every Python version.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signals = 0
        self._children: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._before: dict = {}  # the handlers `install` replaced

    def install(self) -> "Stop":
        """Handles SIGINT and SIGTERM from now on (only possible in the main thread)."""
        if threading.current_thread() is threading.main_thread():
            self._before = {s: signal.signal(s, self._handle)
                            for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def uninstall(self) -> None:
        """Puts back the handlers `install` replaced (a caller that goes on: `final` in
        `greenscreen all`, or called in a test's process)."""
        for signum, handler in self._before.items():
            signal.signal(signum, handler)
        self._before = {}

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    @property
    def in_flight(self) -> int:
        """How many run processes (or warm workers on a run) are running now."""
        with self._lock:
            return len(self._children)

    def _handle(self, signum, frame) -> None:
        self.signals += 1
        if self.signals == 1:
            log.warning("%s: stopping; runs in flight are kept as interrupted "
                        "and resume when you run the same command again (again to stop at "
                        "once)", signal.Signals(signum).name)
            self.request()
            return
        self.event.set()
        with self._lock:
            children = list(self._children)
        for proc in children:
            send(proc, signal.SIGKILL)
        os._exit(130)

    def request(self) -> None:
        """Stops handing out runs and interrupts the runs in flight (SIGTERM)."""
        self.event.set()
        with self._lock:
            children = list(self._children)
        for proc in children:
            send(proc, signal.SIGTERM)

    def add(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._children.add(proc)
        if self.requested:  # a signal came while it was starting
            send(proc, signal.SIGTERM)

    def discard(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._children.discard(proc)


def never() -> Stop:
    """A Stop that no signal sets: for callers without signal handling (a Ray task)."""
    return Stop()


def send(proc: subprocess.Popen, sig: int) -> None:
    """Signals a run process that may have exited already."""
    try:
        proc.send_signal(sig)
    except (ProcessLookupError, OSError):
        pass
