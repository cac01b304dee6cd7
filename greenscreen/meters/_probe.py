"""Asking a command-line tool (nvidia-smi) a question without stalling the caller.

A tool that neither answered nor ran for PROBE_TIMEOUT_S seconds (asleep, or blocked in
the driver: hung) is killed, and the question ends in `subprocess.TimeoutExpired`. One
that is still running then (state R: working, or waiting for a CPU on a busy machine) is
given up to SLOW_LIMIT_S in all, so a loaded machine is not mistaken for a hung driver.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

PROBE_TIMEOUT_S = 2.0
SLOW_LIMIT_S = 20.0


def ask(cmd: list[str]) -> subprocess.CompletedProcess:
    """Runs `cmd` with its output captured as text; raises TimeoutExpired as above."""
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          stdin=subprocess.DEVNULL) as proc:
        try:
            out, err = proc.communicate(timeout=PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            try:
                if not running(proc.pid):
                    raise
                out, err = proc.communicate(timeout=SLOW_LIMIT_S - PROBE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def running(pid: int) -> bool:
    """Whether process `pid` is running or runnable (state R), not asleep or blocked."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "R"
