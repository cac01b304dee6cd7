"""Runs on GPUs whose compute processes the meters could not see (a container): the
sweep's even split of each device's energy among its runs active on it.

Inside a container, nvidia-smi and NVML list no process from another PID namespace, so a
run's meter cannot tell whether others computed on its GPU; it charges itself the whole
device and says so (";attributed:sharing-unknown"). The local sweep knows better: which
of its runs measured which GPU (their summary.json devices) and when (their attempts'
windows), and its ledger measures each GPU once. Here the sweep's time is cut wherever a
run starts or ends; each piece's device energy, from the ledger's meter, is split evenly
among the runs active on that device then. The ledger writes the result into
sweep_energy.json (its one writer); collect reads it back and the run's GPU figure
becomes its share, with provenance ";attributed:even-split-by-sweep".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import provenance, runfolder

# (a, b) -> {GPU uuid: the whole device's joules over [a, b]}
DeviceEnergy = Callable[[float, float], dict]


@dataclass(frozen=True)
class RunUse:
    """Which GPUs one run measured, and over which windows."""

    name: str
    uuids: frozenset
    windows: tuple  # ((t_start, t_end), ...) of its measured attempts


def uses(sweep_dir: Path, runs: int, read=runfolder.summaries) -> list[RunUse]:
    """Every run that measured a GPU, with its GPUs and measured windows (unreadable
    summaries skipped: their runs are not split, and keep their own figures); `read`: how
    the summaries are read (the sweep's meter: only the changed ones)."""
    out = []
    for i, summary in read(sweep_dir, runs):
        by_gpus: dict[frozenset, list] = {}  # each attempt on the GPUs it measured
        for a in summary.attempts:
            if a.measured:
                by_gpus.setdefault(summary.gpus_of(a), []).append((a.t_start, a.t_end))
        out += [RunUse(f"{i:03d}", uuids, tuple(windows))
                for uuids, windows in by_gpus.items() if uuids]
    return out


def even_split(runs: list[RunUse], energy: DeviceEnergy, t0: float,
               t1: float) -> dict[str, dict]:
    """Each run's share of its GPUs' energy over [t0, t1]: per piece between two runs'
    starts or ends, each device's energy divided by the runs active on it.

    Returns run -> {"energy_gpu_j", "covered_s" (its windows' seconds inside [t0, t1]),
    "shared_s" (seconds it shared a device with another run)}."""
    cuts = sorted({t for r in runs for w in r.windows for t in w if t0 <= t <= t1} | {t0, t1})
    out = {r.name: {"energy_gpu_j": 0.0, "covered_s": 0.0, "shared_s": 0.0} for r in runs}
    for a, b in zip(cuts, cuts[1:]):
        active = [r for r in runs if b > a and any(s <= a and b <= e for s, e in r.windows)]
        if not active:
            continue
        device = energy(a, b)
        for r in active:
            share, shared = 0.0, False
            for uuid in r.uuids:
                on = sum(uuid in other.uuids for other in active)
                share += device.get(uuid, math.nan) / on
                shared = shared or on > 1
            row = out[r.name]
            row["energy_gpu_j"] += share
            row["covered_s"] += b - a
            row["shared_s"] += (b - a) if shared else 0.0
    return {name: row for name, row in out.items() if row["covered_s"] > 0}


def merge(sessions: list[dict]) -> dict[str, dict]:
    """The runs' shares over every session of sweep_energy.json, added up."""
    out: dict[str, dict] = {}
    for session in sessions:
        for name, row in (session.get("runs") or {}).items():
            total = out.setdefault(name, {"energy_gpu_j": 0.0, "covered_s": 0.0,
                                          "shared_s": 0.0})
            for key in total:  # JSON's null: a figure the meter did not get (NaN)
                value = row.get(key)
                total[key] += math.nan if value is None else float(value)
    return out


def reattribute(row: dict, share: dict | None) -> dict:
    """A run's row (collect) with its GPU figure replaced by the sweep's even share, where
    its meter could not see who shared the GPU and the sweep's ledger covered (99 %) its
    measured time; otherwise the row as it is, still saying "sharing unknown". The run's
    own figure stays as `energy_own_j`."""
    source = str(row.get("source") or "")
    if not share or not provenance.sharing_unknown(source):
        return row
    own_gpu, duration = row.get("energy_gpu_j", math.nan), row.get("duration_s", math.nan)
    gpu = share["energy_gpu_j"]
    if not all(math.isfinite(float(v)) for v in (own_gpu, duration, gpu, row["energy_j"])) \
            or share["covered_s"] < 0.99 * duration:
        return row
    energy = row["energy_j"] - own_gpu + gpu
    return {**row, "energy_own_j": row["energy_j"], "energy_j": energy, "energy_gpu_j": gpu,
            "power_w": energy / duration if duration > 0 else math.nan,
            "shared_s": share["shared_s"], "source": provenance.by_sweep(source),
            **_scaled_errors(row, gpu / own_gpu if own_gpu > 0 else math.nan)}


def _scaled_errors(row: dict, fraction: float) -> dict:
    """The intervals of a row whose GPU figure became `fraction` of its own: a share
    scales the GPU's interval and adds no error of its own (README, "Energy intervals");
    the other components' part of the total's interval, root-sum-square, stays. Unknown
    where the GPU's own interval is."""
    total, gpu = float(row.get("energy_err_j", math.nan)), \
        float(row.get("energy_gpu_err_j", math.nan))
    if not (math.isfinite(gpu) and math.isfinite(fraction)):
        return {"energy_err_j": math.nan, "energy_gpu_err_j": math.nan}
    rest = max(total * total - gpu * gpu, 0.0) if math.isfinite(total) else 0.0
    return {"energy_err_j": math.sqrt(rest + (gpu * fraction) ** 2),
            "energy_gpu_err_j": gpu * fraction}
