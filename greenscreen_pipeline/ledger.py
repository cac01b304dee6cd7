"""The sweep's own energy: one measurement per device, however many runs share it.

Runs that overlap on a GPU each charge their process its share (SMICallback's
attribution="process"), so their figures do not count a joule twice; but a share
is an estimate, and the runs do not see what lies between their windows. The
sweep's GPU energy therefore comes from one meter that the sweep process owns over
the GPUs its runs use (attribution "device": the whole boards), integrated over
the union of the runs' measured windows (their attempts' [t_start, t_end]).

Each sweep invocation is one session in `sweep_energy.json`, rewritten after every
finished run; sessions add up. One invocation at a time meters a sweep folder: its meter
holds `sweep_energy.lock` (a flock the kernel frees when it ends). A second invocation
on the same folder at once (two `sweep local` sharing its runs through their claims)
runs without a meter of its own: two meters of the same boards over the same seconds
would count each joule twice, and each rewrote the file with its own sessions, dropping
the other's. The first meter measures the whole boards, so the second's runs on them are
in its session where they fall inside it; elsewhere their own figures count.

Only GPU sources are metered (energy_source "auto": the GPUs alone, as `pick_gpu`
chooses, never auto's RAPL): the CPU packages and DRAM are the whole node's, other
processes' included, and the runs' own figures charge each run its share of them. The
sweep's total (`sweep_total.py`) adds this meter's GPU energy to the runs' own figures
for whatever it does not cover: the CPU and DRAM, and every attempt outside a recorded
session (a sweep killed before it recorded, runs estimated).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

from greenscreen.fileio import atomic_write_json
from greenscreen.meters import EnergyMeter, SourceUnavailable
from greenscreen.meters.registry import pick_gpu

from . import kept, runfolder, sharing
from .log import logger
from .run import ownership
from .sweep_sessions import gpu_only, union

FILE = "sweep_energy.json"
LOCK = "sweep_energy.lock"  # held by the one invocation that meters the sweep's GPUs
log = logger(__name__)


def run_windows(sweep_dir: Path, runs: int,
                read=runfolder.summaries) -> list[tuple[float, float]]:
    """Every measured attempt window of the sweep's runs (unreadable summaries skipped);
    `read`: how the summaries are read (a `kept.KeptSummaries` reads only changed ones)."""
    return [(a.t_start, a.t_end) for _, summary in read(sweep_dir, runs)
            for a in summary.attempts if a.measured]


class DeviceLedger:
    """One meter over the sweep's GPUs; `record` writes this session's total."""

    def __init__(self, sweep_dir: Path, runs: int, source: str, gpus=None) -> None:
        self.sweep_dir, self.runs, self.source_name, self.gpus = sweep_dir, runs, source, gpus
        self.meter: EnergyMeter | None = None
        self.lock: ownership.Held | None = None
        # The session is worked out after every run: only changed summaries are read again.
        self.summaries = kept.KeptSummaries()
        self.t_start = time.time()
        self.sessions: list[dict] = []

    def start(self) -> "DeviceLedger":
        if self.source_name not in ("auto", "nvidia-smi", "nvml"):
            return self
        try:
            self.lock = ownership.Held(self.sweep_dir, LOCK)
        except ownership.Busy as exc:
            log.info("another invocation meters this sweep's GPUs (pid %s): this one runs "
                     "without a meter of its own, so no joule is counted twice", exc.pid or "?")
            return self
        # Read under the lock: the sessions of every invocation that metered before.
        self.sessions = (runfolder.read_json(self.sweep_dir / FILE) or {}).get("sessions", [])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the runs warn about sharing themselves
                source = (pick_gpu(0.1, self.gpus)[0] if self.source_name == "auto"
                          else self.source_name)  # auto: the GPUs alone, never RAPL
                if source is None:
                    return self
                meter = EnergyMeter(source, 0.1, self.gpus, "device").start()
        except (SourceUnavailable, ValueError):
            return self._unlock()  # the runs' own figures stay the only ones, as before
        if not gpu_only(meter.source):
            meter.stop()
            return self._unlock()
        self.meter = meter
        return self

    def _unlock(self) -> "DeviceLedger":
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        return self

    @property
    def active(self) -> bool:
        return self.meter is not None

    def session(self) -> dict:
        """This invocation's energy: each GPU over the union of the windows of the runs
        that used it, inside the invocation (a GPU of --gpus that no run used in a while
        is not charged for that while: it idled beside the sweep, not for it)."""
        now = time.time()
        windows = run_windows(self.sweep_dir, self.runs, self.summaries)
        pieces = union([(max(a, self.t_start), min(b, now)) for a, b in windows])
        uses = sharing.uses(self.sweep_dir, self.runs, self.summaries)
        uuids = sorted({d["uuid"] for d in self.meter.devices
                        if d["component"] == "gpu" and d["uuid"]})
        by_gpu = self._pieces_by_gpu(uses, windows, uuids, now)
        energy = self._energy(by_gpu) if by_gpu else sum(  # no GPU's uuid: every GPU over
            self.meter.window("union", a).close(b).energy_j for a, b in pieces)  # all
        return {"t_start": self.t_start, "t_end": now, "energy_j": energy,
                "union_s": sum(b - a for a, b in pieces), "source": self.meter.source,
                # what the meter measured: the total counts a run's seconds outside these
                # at its own figure (sweep_total), those after its last summary included
                "pieces": [[a, b] for a, b in pieces],
                "gpu_pieces": {u: [[a, b] for a, b in p] for u, p in by_gpu.items()},
                "devices": [d["name"] for d in self.meter.devices],
                "uuids": uuids,
                # each run's even share of its GPUs (sharing.py), for runs that could not
                # see who else computed on them
                "runs": sharing.even_split(uses, self._gpu_energy, self.t_start, now)}

    def _pieces_by_gpu(self, uses: list, windows: list, uuids: list[str],
                       now: float) -> dict[str, list]:
        """Each metered GPU's pieces: the union of the windows of the runs on it. A window
        whose run recorded no GPU (a summary before per-attempt GPUs, a run whose own
        meter fell back to the estimate) may have used any: every GPU's, as before."""
        on: dict[str, list] = {u: [] for u in uuids}
        placed = set()
        for use in uses:
            placed.update(use.windows)
            for uuid in use.uuids & set(uuids):
                on[uuid] += use.windows
        anywhere = [w for w in windows if w not in placed]
        return {u: union([(max(a, self.t_start), min(b, now)) for a, b in w + anywhere
                          if min(b, now) > max(a, self.t_start)]) for u, w in on.items()}

    def _energy(self, by_gpu: dict[str, list]) -> float:
        """Each GPU's energy over its own pieces, added up; a piece several GPUs share is
        read from the meter once."""
        slices: dict[tuple, dict] = {}
        total = 0.0
        for uuid, pieces in by_gpu.items():
            for piece in pieces:
                if piece not in slices:
                    slices[piece] = self._gpu_energy(*piece)
                total += slices[piece].get(uuid, 0.0)
        return total

    def _gpu_energy(self, a: float, b: float) -> dict:
        """Each GPU's whole energy over [a, b], by its uuid."""
        w = self.meter.window("slice", a).close(b)
        return {d.uuid: d.energy_j for d in w.devices if d.component == "gpu"}

    def record(self) -> None:
        if not self.active:
            return
        atomic_write_json(self.sweep_dir / FILE, {
            "sessions": self.sessions + [self.session()],
            "note": "each GPU measured once (the sweep's own meter, GPU sources only), over "
                    "the union of the runs' measured windows"})

    def stop(self) -> None:
        if self.active:
            try:
                self.record()
            finally:
                self.meter.stop()
        self._unlock()


def gpu_count() -> int:
    """GPUs nvidia-smi lists here (0 without nvidia-smi)."""
    import subprocess

    from greenscreen.meters.nvidia_smi import resolve_executable

    try:
        exe = resolve_executable()
        listed = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20,
                                stdin=subprocess.DEVNULL).stdout if exe else ""
    except (OSError, ValueError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in listed.splitlines())


def shares(sweep_dir: Path) -> dict[str, dict]:
    """Each run's even share of its GPUs over every session (sharing.even_split): run name
    -> {"energy_gpu_j", "covered_s", "shared_s"}; empty without sweep_energy.json."""
    try:
        data = runfolder.read_json(sweep_dir / FILE) or {}
    except runfolder.Unreadable:
        return {}
    return sharing.merge(data.get("sessions") or [])
