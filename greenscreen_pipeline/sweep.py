"""Run the sweep: each run in its own subprocess and folder, resumable at any point.

Rerunning skips finished runs (done, failed, skipped) and resumes interrupted
ones from their last finished epoch; no folder is ever deleted, and one that
cannot be read is left alone and named. A run that crashes, runs out of memory
(killed by SIGKILL) or hits a NaN loss is failed and the sweep goes on; SIGINT
or SIGTERM stop the sweep with no run failed (`Stop`).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from greenscreen.fileio import atomic_write_json

from . import ledger, runfolder
from .space import BASELINE, SweepConfig

ROOT = Path(__file__).resolve().parents[1]


def check_manifest(config: SweepConfig, sweep_dir: Path) -> None:
    """Refuses to mix two different sweeps in one folder; records the sweep otherwise."""
    manifest = sweep_dir / "sweep.json"
    mine = {"seed": config.settings["seed"], "space": config.space}
    old = runfolder.read_json(manifest)
    if old is not None and not _same_sweep(old, _jsonable(mine)):
        raise SystemExit(f"greenscreen: {sweep_dir} holds a sweep with another seed or search "
                         "space; pass another --sweep-dir (or delete that folder).")
    atomic_write_json(manifest, {**mine, "config": config.path, "settings": config.settings})


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d))


def _same_sweep(old: dict, mine: dict) -> bool:
    """Same seed and space. A dimension added since the old sweep was recorded matches
    when it holds only its baseline value, which is what those runs trained with."""
    added = set(mine["space"]) - set(old.get("space", {}))
    baseline = _jsonable({dim: [BASELINE[dim]] for dim in added if dim in BASELINE})
    return old.get("seed") == mine["seed"] and (
        {**old.get("space", {}), **baseline} == mine["space"])


def claim(sweep_dir: Path, index: int) -> bool:
    """Atomically claims run `index` for this process, so two workers, or two sweeps on one
    folder (on shared storage too), never train the same run: the claim file is created with
    O_CREAT | O_EXCL, which exactly one creator wins. A claim left by a dead process of this
    host is taken over under an flock of its own lock file, re-checked inside the lock, so
    two workers that both see it stale cannot both take it."""
    claims = sweep_dir / ".claims"
    claims.mkdir(parents=True, exist_ok=True)
    path = claims / f"{index:03d}"
    if _create_claim(path):
        return True
    with open(claims / f"{index:03d}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            owner = _claim_owner(path)
            mine = owner is not None and owner.get("host") == socket.gethostname()
            if owner is None or not mine or runfolder.process_alive(owner.get("pid", 0)):
                return owner is None and _create_claim(path)  # released meanwhile: try once
            path.unlink(missing_ok=True)  # stale: its process is gone
            return _create_claim(path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _create_claim(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def _claim_owner(path: Path) -> dict | None:
    """The claim's owner; None if there is no claim; {} while its creator is still writing."""
    try:
        return json.loads(path.read_text() or "{}")
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def release(sweep_dir: Path, index: int) -> None:
    (sweep_dir / ".claims" / f"{index:03d}").unlink(missing_ok=True)


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
        self._children: set = set()
        self._lock = threading.Lock()

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._handle)
            signal.signal(signal.SIGTERM, self._handle)

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def _handle(self, signum, frame) -> None:
        self.signals += 1
        self.event.set()
        with self._lock:
            children = list(self._children)
        if self.signals == 1:
            print(f"\ngreenscreen: {signal.Signals(signum).name}: stopping; runs in flight are "
                  "kept as interrupted and resume when you run the same command again "
                  "(again to stop at once)", file=sys.stderr, flush=True)
            for proc in children:
                _send(proc, signal.SIGTERM)
            return
        for proc in children:
            _send(proc, signal.SIGKILL)
        os._exit(130)

    def add(self, proc) -> None:
        with self._lock:
            self._children.add(proc)
        if self.requested:  # a signal came while it was starting
            _send(proc, signal.SIGTERM)

    def discard(self, proc) -> None:
        with self._lock:
            self._children.discard(proc)


NO_STOP = Stop()  # for callers without signal handling (a Ray task, one Slurm array task)


def _send(proc, sig) -> None:
    try:
        proc.send_signal(sig)
    except (ProcessLookupError, OSError):
        pass


def run_one(config: SweepConfig, sweep_dir: Path, index: int, epochs: int,
            env: dict | None = None, stop: Stop = NO_STOP) -> dict:
    """Trains (or resumes) run `index` in a subprocess; returns its outcome.

    The folder is never deleted: an interrupted run resumes from its checkpoint,
    and every attempt is logged in the folder's attempts.jsonl."""
    folder = runfolder.RunFolder.of(sweep_dir, index)
    started = folder.log_attempt_start()
    cmd = [sys.executable, "-m", "greenscreen_pipeline.run", "--config", config.path, "--sweep-dir",
           str(sweep_dir), "--index", str(index), "--epochs", str(epochs)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    stop.add(proc)
    err = ""
    try:
        _, err = proc.communicate()
    except BaseException:  # KeyboardInterrupt in a Ray task that was cancelled
        _send(proc, signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        raise
    finally:
        stop.discard(proc)
        tail = "\n".join((err or "").strip().splitlines()[-15:])
        folder.log_attempt_end(started, proc.returncode if proc.returncode is not None else -9,
                               tail)
    return folder.outcome()


def energy_of(folder: runfolder.RunFolder) -> tuple[float, str]:
    try:
        summary = folder.summary() or {}
    except runfolder.Unreadable:
        summary = {}
    energy = summary.get("energy_j")
    return (float(energy) if energy is not None else math.nan), summary.get("source", "none")


def sweep(config: SweepConfig, runs: int, epochs: int, sweep_dir: Path, workers: int = 1,
          gpus: list[str] | None = None) -> list[dict]:
    """Trains every unfinished run, `workers` at a time; worker k sees only GPU gpus[k].

    Stops on SIGINT or SIGTERM (see `Stop`); rerunning finishes what is left."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    check_manifest(config, sweep_dir)
    n_gpus = ledger.gpu_count()
    if workers > 1 and not gpus and n_gpus:
        print(f"greenscreen: warning: {workers} workers and no --gpus: the runs share this "
              f"machine's {n_gpus} GPU(s). Each run is charged its share of a shared GPU, and "
              "the sweep's total measures every GPU once; --gpus 0,1,... gives each worker "
              "its own.", flush=True)
    books = ledger.DeviceLedger(sweep_dir, runs, config.settings["energy_source"],
                                gpus).start()
    progress = _Progress(runs, books)
    pending = queue.Queue()
    for i in range(runs):
        pending.put(i)
    stop = Stop()
    stop.install()

    def worker(k: int) -> None:
        env = None
        if gpus:
            env = {**os.environ, "CUDA_VISIBLE_DEVICES": gpus[k % len(gpus)]}
        while not stop.requested:
            try:
                i = pending.get_nowait()
            except queue.Empty:
                return
            progress.report(sweep_dir, i, *_do(config, sweep_dir, i, epochs, env, stop))

    threads = [threading.Thread(target=worker, args=(k,), daemon=True)
               for k in range(max(1, workers))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(timeout=0.2)  # short waits: the signal handlers run in this thread
    finally:
        books.stop()
    if stop.requested:
        raise Interrupted(runfolder.statuses(sweep_dir, runs))
    return runfolder.statuses(sweep_dir, runs)


class Interrupted(Exception):
    """The sweep was stopped by a signal; `statuses` says where each run stands."""

    def __init__(self, statuses: list[dict]) -> None:
        super().__init__("stopped by a signal")
        self.statuses = statuses


def _do(config, sweep_dir: Path, i: int, epochs: int, env,
        stop: Stop = NO_STOP) -> tuple[dict, str, float | None]:
    folder = runfolder.RunFolder.of(sweep_dir, i)
    try:
        outcome = folder.outcome()
    except runfolder.Unreadable as exc:
        return {"status": "unreadable", "reason": str(exc)}, f"left alone: {exc}", None
    if outcome["status"] in runfolder.FINAL:
        note = "kept" if outcome["status"] == "done" else \
            f"kept ({outcome.get('reason', '')[:60]})"
        return outcome, note, None
    if not claim(sweep_dir, i):
        owner = _claim_owner(sweep_dir / ".claims" / f"{i:03d}") or {}
        path = sweep_dir / ".claims" / f"{i:03d}"
        return outcome, (f"claimed by pid {owner.get('pid', '?')} on "
                         f"{owner.get('host', '?')} (if it is gone: rm {path})"), None
    try:
        outcome = folder.outcome()  # another sweep may have finished it meanwhile
        if outcome["status"] in runfolder.FINAL:
            return outcome, "kept", None
        folder.summary()  # raises Unreadable: a resumed run must not overwrite it
        if outcome["status"] != "pending":
            print(f"greenscreen: run {i:03d} was {outcome['status']}; resuming it", flush=True)
        outcome = run_one(config, sweep_dir, i, epochs, env, stop)
        return outcome, outcome["status"], outcome.get("wall_s", 0.0)
    except runfolder.Unreadable as exc:
        return {"status": "unreadable", "reason": str(exc)}, f"left alone: {exc}", None
    finally:
        release(sweep_dir, i)


class _Progress:
    """One line per run: i/N, accuracy, energy, total energy so far, ETA. Thread-safe."""

    def __init__(self, runs: int, books: "ledger.DeviceLedger | None" = None) -> None:
        self.runs, self.done, self.total, self.durations = runs, 0, 0.0, []
        self.books = books  # when it measures, the total counts each device once
        self.lock = threading.Lock()

    def report(self, sweep_dir: Path, i: int, st: dict, note: str, wall: float | None) -> None:
        energy, source = energy_of(runfolder.RunFolder.of(sweep_dir, i))
        with self.lock:
            self.done += 1
            self.total += 0.0 if math.isnan(energy) else energy
            if self.books is not None and self.books.active:
                self.books.record()
                self.total = self.books.total_j()
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
