"""Benchmark (not a test): which processes a command's CPU time goes to, and for which test.

Runs COMMAND (for example one pytest pass) and samples /proc every `--interval` seconds:
each descendant process's command line, its CPU time (user + system, from
/proc/PID/stat) and the test that started it (PYTEST_CURRENT_TEST in its environment at
exec, else its nearest ancestor's). A process's figure is its CPU time at the last sample
before it ended, so a process that lives less than one interval can be missed and each is
undercounted by up to one interval: lower bounds. Processes that leave the tree
(daemons: slurmd's jobs, Ray's raylet where it double-forks) are not followed.

pytest's `--durations` (benchmarks/suite_durations.py) says how long each test took; this
says what its processes spent. It found that each sweep process imported Keras (issue 32,
RESULTS.md) and that the fake nvidia-smi ran through pyenv's shell shims.

Usage:
    python benchmarks/suite_processes.py [--interval 0.3] [--top 30] [--out FILE] \\
        -- KERAS_BACKEND=tensorflow .venv/bin/python -m pytest -n 2 --maxschedchunk 1
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from _report import emit  # noqa: E402  (benchmarks/ is on sys.path)

TICK = os.sysconf("SC_CLK_TCK")
# What a process is, from its command line: the first key found names it.
KINDS = (("execnet", "pytest-xdist worker (in-process tests)"),
         ("--requests", "warm worker (trains runs)"), ("run-one", "run process"),
         ("greenscreen_pipeline", "greenscreen command (sweep, check, all, ...)"),
         ("bin/greenscreen", "greenscreen command (sweep, check, all, ...)"),
         ("nvidia-smi", "fake nvidia-smi"), ("pyenv", "pyenv shims"),
         ("slurm", "Slurm"), ("munge", "Slurm"), ("ray", "Ray"), ("raylet", "Ray"),
         ("gcs_server", "Ray"), ("pytest", "pytest"))


def stat(pid: str) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of `pid`, None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def describe(pid: int) -> dict | None:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    prefix = b"PYTEST_CURRENT_TEST="
    test = next((e[len(prefix):].decode(errors="replace") for e in env
                 if e.startswith(prefix)), None)
    return {"cmd": " ".join(c.decode(errors="replace") for c in cmd[:8] if c),
            "test": test.rsplit(" (", 1)[0] if test else None}


def sample(root: int, seen: dict[int, dict]) -> None:
    """One pass over /proc: every descendant of `root`, added to or updated in `seen`."""
    table = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := stat(p))}
    for pid, (ppid, cpu) in table.items():
        node, hops = pid, 0
        while node in table and node != root and hops < 64:
            node, hops = table[node][0], hops + 1
        if node != root or pid == root:
            continue
        if pid not in seen:
            about = describe(pid)
            if about is None:
                continue
            seen[pid] = {"pid": pid, "ppid": ppid, **about}
        seen[pid]["cpu_s"] = cpu


def kind_of(cmd: str) -> str:
    return next((name for key, name in KINDS if key in cmd), "other")


def test_of(proc: dict, procs: dict[int, dict]) -> str:
    hops = 0
    while proc is not None and hops < 64:
        if proc["test"]:
            return proc["test"]
        proc, hops = procs.get(proc["ppid"]), hops + 1
    return "(no test)"


def summarize(procs: dict[int, dict], top: int) -> dict:
    by_kind: dict[str, list] = defaultdict(lambda: [0, 0.0])
    by_test: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for proc in procs.values():
        kind = kind_of(proc["cmd"])
        by_kind[kind][0] += 1
        by_kind[kind][1] += proc.get("cpu_s", 0.0)
        by_test[test_of(proc, procs)][kind] += proc.get("cpu_s", 0.0)
    tests = sorted(by_test.items(), key=lambda kv: -sum(kv[1].values()))[:top]
    return {"cpu_s": round(sum(p.get("cpu_s", 0.0) for p in procs.values()), 1),
            "by_kind": {k: {"processes": n, "cpu_s": round(s, 1)} for k, (n, s) in
                        sorted(by_kind.items(), key=lambda kv: -kv[1][1])},
            "by_test": {t: {k: round(s, 1) for k, s in sorted(c.items(), key=lambda kv: -kv[1])}
                        for t, c in tests}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.3)
    parser.add_argument("--top", type=int, default=30, help="tests listed, most CPU first")
    parser.add_argument("--out", default=None)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    env = dict(os.environ)
    while command and "=" in command[0] and not command[0].startswith("-"):
        name, value = command.pop(0).split("=", 1)
        env[name] = value
    if not command:
        parser.error("give the command to run after --")
    started = time.monotonic()
    proc = subprocess.Popen(command, env=env)
    seen: dict[int, dict] = {}
    while proc.poll() is None:
        sample(proc.pid, seen)
        time.sleep(args.interval)
    result = {"command": command, "rc": proc.returncode,
              "wall_s": round(time.monotonic() - started, 1), "interval_s": args.interval,
              **summarize(seen, args.top)}
    emit(result, args.out)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
