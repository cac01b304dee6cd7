"""Run the sweep: each run in its own subprocess and folder, resumable at any point.

Rerunning skips finished runs (done, failed, skipped), redoes runs left running
or half-written, and never touches a finished folder. A run that crashes,
runs out of memory (killed by SIGKILL) or hits a NaN loss is marked failed and
the sweep goes on.
"""

from __future__ import annotations

import json
import math
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from greenscreen._io import atomic_write_json

from . import runfolder
from .space import SweepConfig

ROOT = Path(__file__).resolve().parents[1]


def check_manifest(config: SweepConfig, sweep_dir: Path) -> None:
    """Refuses to mix two different sweeps in one folder; records the sweep otherwise."""
    manifest = sweep_dir / "sweep.json"
    mine = {"seed": config.settings["seed"], "space": config.space}
    old = runfolder.read_json(manifest)
    if old is not None and {k: old.get(k) for k in mine} != _jsonable(mine):
        raise SystemExit(f"greenscreen: {sweep_dir} holds a sweep with another seed or search "
                         "space; pass another --sweep-dir (or delete that folder).")
    atomic_write_json(manifest, {**mine, "config": config.path, "settings": config.settings})


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d))


def claim(sweep_dir: Path, index: int) -> bool:
    """Atomically claims run `index` for this process (O_CREAT | O_EXCL on a claim file), so
    two workers, or two sweeps started on one folder, never train the same run. A claim
    left by a dead process on this host is taken over."""
    claims = sweep_dir / ".claims"
    claims.mkdir(parents=True, exist_ok=True)
    path = claims / f"{index:03d}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            owner = runfolder.read_json(path) or {}
            if owner.get("host") == socket.gethostname() and not _alive(owner.get("pid", 0)):
                path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            return False
        with os.fdopen(fd, "w") as fh:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}, fh)
        return True
    return False


def release(sweep_dir: Path, index: int) -> None:
    (sweep_dir / ".claims" / f"{index:03d}").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def run_one(config: SweepConfig, sweep_dir: Path, index: int, epochs: int,
            env: dict | None = None) -> dict:
    """Trains run `index` in a subprocess; returns its final status."""
    folder = runfolder.run_dir(sweep_dir, index)
    with open(sweep_dir / "attempts.log", "a") as log:  # audit: one line per training attempt
        log.write(f"{index:03d} {socket.gethostname()} {os.getpid()} {time.time():.3f}\n")
    if folder.exists():
        shutil.rmtree(folder)  # left running or half-written: start clean
    folder.mkdir(parents=True)
    runfolder.write_status(folder, "pending")
    cmd = [sys.executable, "-m", "pipeline.run", "--config", config.path, "--sweep-dir",
           str(sweep_dir), "--index", str(index), "--epochs", str(epochs)]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env=env)
    wall = time.time() - t0
    state = runfolder.status(folder)
    if state not in runfolder.FINAL:  # the worker died without saying why
        why = f"worker exited with code {proc.returncode}"
        if proc.returncode < 0:
            name = signal.Signals(-proc.returncode).name
            why = f"worker killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        runfolder.write_status(folder, "failed", reason=why, traceback_tail=tail)
    st = runfolder.read_json(folder / "status.json") or {}
    st["wall_s"] = wall
    runfolder.write_status(folder, st.pop("status"), **{k: v for k, v in st.items()
                                                        if k != "time"})
    return runfolder.read_json(folder / "status.json")


def energy_of(folder: Path) -> tuple[float, str]:
    summary = runfolder.read_json(folder / "summary.json") or {}
    energy = summary.get("energy_j")
    return (float(energy) if energy is not None else math.nan), summary.get("source", "none")


def sweep(config: SweepConfig, runs: int, epochs: int, sweep_dir: Path, workers: int = 1,
          gpus: list[str] | None = None) -> list[dict]:
    """Trains every unfinished run, `workers` at a time; worker k sees only GPU gpus[k]."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    check_manifest(config, sweep_dir)
    progress = _Progress(runs)
    pending = queue.Queue()
    for i in range(runs):
        pending.put(i)

    def worker(k: int) -> None:
        env = None
        if gpus:
            env = {**os.environ, "CUDA_VISIBLE_DEVICES": gpus[k % len(gpus)]}
        while True:
            try:
                i = pending.get_nowait()
            except queue.Empty:
                return
            progress.report(sweep_dir, i, *_do(config, sweep_dir, i, epochs, env))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return runfolder.statuses(sweep_dir, runs)


def _do(config, sweep_dir: Path, i: int, epochs: int, env) -> tuple[dict, str, float | None]:
    folder = runfolder.run_dir(sweep_dir, i)
    state = runfolder.status(folder)
    if state in runfolder.FINAL:
        st = runfolder.read_json(folder / "status.json")
        return st, ("kept" if state == "done" else f"kept ({st.get('reason', '')[:60]})"), None
    if not claim(sweep_dir, i):
        path = sweep_dir / ".claims" / f"{i:03d}"
        owner = runfolder.read_json(path) or {}
        return {"status": state}, (f"claimed by pid {owner.get('pid', '?')} on "
                                   f"{owner.get('host', '?')} (if it is gone: rm {path})"), None
    try:
        state = runfolder.status(folder)  # another sweep may have finished it meanwhile
        if state in runfolder.FINAL:
            return runfolder.read_json(folder / "status.json"), "kept", None
        if state != "pending":
            print(f"greenscreen: run {i:03d} was {state}; training it again", flush=True)
        st = run_one(config, sweep_dir, i, epochs, env)
        return st, st["status"], st.get("wall_s", 0.0)
    finally:
        release(sweep_dir, i)


class _Progress:
    """One line per run: i/N, accuracy, energy, total energy so far, ETA. Thread-safe."""

    def __init__(self, runs: int) -> None:
        self.runs, self.done, self.total, self.durations = runs, 0, 0.0, []
        self.lock = threading.Lock()

    def report(self, sweep_dir: Path, i: int, st: dict, note: str, wall: float | None) -> None:
        energy, source = energy_of(runfolder.run_dir(sweep_dir, i))
        with self.lock:
            self.done += 1
            self.total += 0.0 if math.isnan(energy) else energy
            if wall is not None:
                self.durations.append(wall)
            left = self.runs - self.done
            eta = sum(self.durations) / len(self.durations) * left if self.durations else 0.0
            acc = st.get("test_accuracy")
            print(f"[{self.done}/{self.runs}] run {i:03d} {note:<8} "
                  f"acc {acc if acc is None else f'{acc:.4f}'}  energy {energy:.1f} J "
                  f"({source})  total {self.total:.1f} J  ETA {_clock(eta)}", flush=True)


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s"
