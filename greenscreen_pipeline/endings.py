"""How a run's attempt ended when it left no status saying so: interrupted (it resumes
when the same command runs again) or failed, read from how its process ended ("signal
SIGINT", "exit 75") and the last lines of its stderr."""

from __future__ import annotations

import os
import re
from pathlib import Path

# How an attempt that ends by one of these signals ended: stopped, not broken.
STOP_SIGNALS = ("SIGINT", "SIGTERM")
# Exit codes of an attempt that was interrupted, not broken, though no status says so: a
# full disk (run.execute.NO_SPACE: status.json could not be written), a process stopped by
# SIGINT or SIGTERM before its run wrote its status (run.execute.INTERRUPTED, a shell's 143).
# SIGKILL (the OOM killer) and any other code fail the run.
NO_SPACE = "the disk is full"  # how an interrupted run's reason starts after a full disk
STOP_EXITS = {"exit 75": NO_SPACE, "exit 130": "stopped", "exit 143": "stopped by SIGTERM"}
# A process that died of a full disk before its run could say so (its last stderr line).
NO_SPACE_ERROR = re.compile(r"OSError: \[Errno (28|122)\] .*")  # ENOSPC, EDQUOT


def interrupted(how: str, stderr_tail: str) -> str | None:
    """Why an attempt that ended `how` was interrupted, or None where it failed."""
    if how.startswith("signal ") and how.split()[1] in STOP_SIGNALS:
        return f"stopped by {how.split()[1]}"
    tail = stderr_tail.strip().splitlines()
    # a process that exited (not one a signal killed) after its last line said disk full
    if how in STOP_EXITS or (how.startswith("exit ") and tail
                             and NO_SPACE_ERROR.fullmatch(tail[-1])):
        return _stopped(how, tail)
    return None


def _stopped(how: str, tail: list[str]) -> str:
    """Why an attempt that left no status was interrupted (STOP_EXITS, a full disk), in
    the run's own words where its stderr has them ("run 000 interrupted: ...")."""
    said = [line.split(" interrupted: ", 1)[1] for line in tail if " interrupted: " in line]
    if how in STOP_EXITS and how != "exit 75":
        return (f"{STOP_EXITS[how]} ({said[-1] if said else how}) before it recorded its "
                "status; it resumes when you run the same command again")
    why = said[-1] if said else tail[-1] if tail else how
    return f"{NO_SPACE} ({why}); free some space and run the same command again"


def died(how: str, stderr_tail: str = "") -> str:
    """Why an attempt that left no status failed; where its process left a fault dump
    (faulthandler's, on SIGSEGV, SIGFPE, SIGABRT, SIGBUS or SIGILL), with the innermost
    frame of your code in it."""
    if how == "signal SIGKILL":
        return "worker killed by SIGKILL (out of memory?)"
    where = your_frame(stderr_tail)
    if how.startswith("signal "):
        return f"worker killed by {how.split()[1]}" + (f" ({where})" if where else "")
    return (f"worker exited with code {how.split()[1]} without writing its status"
            + (f" ({where})" if where else ""))


FAULT = "Fatal Python error: "  # how faulthandler's dump begins
FRAME = re.compile(r'\s*File "(?P<path>[^"]+)", line (?P<line>\d+) in (?P<name>\S+)')
INSTALLED = ("site-packages", "dist-packages", "<frozen ")  # never your own file
CAUSE_LINES = 5  # lines before a fault dump kept: native code says its cause there


def not_yours() -> tuple[str, ...]:
    """The folders of Python's library and of greenscreen's two packages, as this
    interpreter has them (a clone of greenscreen is named so; your examples in it are
    yours)."""
    import sysconfig

    paths = sysconfig.get_paths()
    here = Path(__file__).resolve().parent
    folders = {paths[k] for k in ("stdlib", "platstdlib") if k in paths}
    folders |= {str(here), str(here.parent / "greenscreen")}
    return tuple(str(Path(f).resolve()) + os.sep for f in folders)


def your_frame(stderr: str) -> str | None:
    """"in mlp, model.py:14": the innermost frame of a fault dump in `stderr` that is not
    Python's, an installed package's or greenscreen's; None where there is none."""
    lines = stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(FAULT)), None)
    theirs = not_yours()
    for line in lines[start:] if start is not None else []:
        frame = FRAME.match(line)
        if frame and not any(part in frame["path"] for part in INSTALLED) \
                and not frame["path"].startswith(theirs):
            return f"in {frame['name']}, {frame['path'].rsplit('/', 1)[-1]}:{frame['line']}"
    return None


def tail(stderr: str, lines: int = 15) -> str:
    """What is kept of an attempt's stderr: its last `lines`, or, where it holds a fault
    dump, the few lines before it (where native code says why it aborts: a failed check,
    std::bad_alloc) and the dump (its stack, most recent call first, up to 40 frames),
    whose top the last lines of a deep stack would have cut, without its list of
    extension modules."""
    text = stderr.strip().splitlines()
    start = next((i for i, line in enumerate(text) if line.startswith(FAULT)), None)
    if start is None:
        return "\n".join(text[-lines:])
    cause = [line for line in text[:start] if line.strip()][-CAUSE_LINES:]
    dump = [line for line in text[start:] if not line.startswith("Extension modules:")]
    return "\n".join(cause + dump[:44])
