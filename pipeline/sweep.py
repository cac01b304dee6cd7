"""Run the sweep: each run in its own subprocess and folder, resumable at any point.

Rerunning skips finished runs (done, failed, skipped), redoes runs left running
or half-written, and never touches a finished folder. A run that crashes,
runs out of memory (killed by SIGKILL) or hits a NaN loss is marked failed and
the sweep goes on.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import sys
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


def run_one(config: SweepConfig, sweep_dir: Path, index: int, epochs: int) -> dict:
    """Trains run `index` in a subprocess; returns its final status."""
    folder = runfolder.run_dir(sweep_dir, index)
    if folder.exists():
        shutil.rmtree(folder)  # left running or half-written: start clean
    folder.mkdir(parents=True)
    runfolder.write_status(folder, "pending")
    cmd = [sys.executable, "-m", "pipeline.run", "--config", config.path, "--sweep-dir",
           str(sweep_dir), "--index", str(index), "--epochs", str(epochs)]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
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


def sweep(config: SweepConfig, runs: int, epochs: int, sweep_dir: Path) -> list[dict]:
    sweep_dir.mkdir(parents=True, exist_ok=True)
    check_manifest(config, sweep_dir)
    total_energy, durations, results = 0.0, [], []
    for i in range(runs):
        folder = runfolder.run_dir(sweep_dir, i)
        state = runfolder.status(folder)
        if state in runfolder.FINAL:
            st = runfolder.read_json(folder / "status.json")
            note = "kept" if state == "done" else f"kept ({st.get('reason', '')[:60]})"
        else:
            if state != "pending":
                print(f"greenscreen: run {i:03d} was {state}; training it again", flush=True)
            st = run_one(config, sweep_dir, i, epochs)
            durations.append(st.get("wall_s", 0.0))
            note = st["status"]
        energy, source = energy_of(folder)
        total_energy += 0.0 if math.isnan(energy) else energy
        results.append({"index": i, **st})
        left = sum(1 for j in range(i + 1, runs)
                   if runfolder.status(runfolder.run_dir(sweep_dir, j)) not in runfolder.FINAL)
        eta = (sum(durations) / len(durations) * left) if durations else 0.0
        acc = st.get("test_accuracy")
        print(f"[{i + 1}/{runs}] run {i:03d} {note:<8} "
              f"acc {acc if acc is None else f'{acc:.4f}'}  energy {energy:.1f} J ({source})  "
              f"total {total_energy:.1f} J  ETA {_clock(eta)}", flush=True)
    return results


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s"
