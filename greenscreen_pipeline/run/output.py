"""What a run prints, kept in its folder: `output.log`.

A run's standard output (your code's prints, Keras's progress bars) went to /dev/null: a
run that finished but behaved wrongly left no trace of what it printed. While a run trains
it now goes to the run folder's output.log, appended over its attempts; standard error
stays with the executor, which keeps its tail for a failed run's reason (endings.py).
The file descriptor itself is redirected (not only `sys.stdout`), so that what native code
and subprocesses print is kept too; the run's lock makes this process its one writer.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

OUTPUT = "output.log"


@contextlib.contextmanager
def kept_in(folder: "str | Path", index: int):
    """Standard output into `folder`/output.log for the block, then back where it was.
    Where it cannot be (no standard output to put back, no room, no folder), the run
    trains as before, its output unkept."""
    opened = _opened(folder)
    if opened is None:
        yield
        return
    saved, log = opened
    try:
        os.write(log, f"--- run {index:03d}, attempt started "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')} (pid {os.getpid()})\n".encode())
        os.dup2(log, 1)
        yield
    finally:
        _flushed()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(log)


def _opened(folder: "str | Path") -> "tuple[int, int] | None":
    """(a copy of standard output's descriptor, output.log's), or None."""
    _flushed()
    try:
        saved = os.dup(1)
    except OSError:  # no descriptor 1 (a process started with it closed)
        return None
    try:
        return saved, os.open(Path(folder) / OUTPUT, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                              0o644)
    except OSError:
        os.close(saved)
        return None


def _flushed() -> None:
    if sys.stdout is not None:  # None where the process has no standard output
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
