"""`greenscreen status`: where a sweep stands, read from its folder. It starts, claims,
locks and writes nothing, so it can be asked while the sweep trains (from a Slurm login
node while the array runs, or beside a local sweep), and it imports no backend.

    greenscreen: sweeps/default/: 5/8 runs done, 1 failed (8 runs x 3 epochs)
      running: run 006 (pid 4321)
      interrupted: run 007 (SIGINT): the same sweep command resumes it
      failed: run 004: Diverged: loss became nan in epoch 2 (model.py:12)
      not started: 1 run
      energy so far: 1203.9 J (measured)
      spent 1203.9 J of budget 5000.0 J (measured)
      Slurm: jobs 1234 (the runs), 1235 (the report): 1234 still queued or running

The counts, the energy and the budget are the figures the sweep's own console gives
(`progress.through`, `sweep_total.of` through `budget.spent`, `budget.line`), the epochs
those its sweep.json records (a config.yaml changed since is said); a run is
running where a live process holds its claim or its lock (`claims.trained_now`), as every
executor asks before it trains one. `--json` prints the same as one JSON object.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import budget, manifest, runfolder
from .errors import UsageError
from .executors import claims
from .executors.progress import failure, through
from .sweep_total import EVERY_RUN, NO_FIGURE
from .wording import counted, some

FAILED_SHOWN = 5  # failed runs named one per line; the rest are counted
IN_FLIGHT = ("running", "parked", "interrupted", "pending")


@dataclass
class RunState:
    """One started run as the status reads it: its state, and why where it has a reason."""

    index: int
    status: str
    reason: str | None = None
    holder: str | None = None  # who trains it: "pid 4321" or "host node7, pid 4321"


@dataclass
class SweepStatus:
    """A sweep's state; `runs` and `epochs` are the settings it was read with."""

    sweep_dir: str
    runs: int
    epochs: int
    started: list[RunState] = field(default_factory=list)
    energy_j: float = math.nan
    energy_source: str = "none"
    budget: str | None = None  # "spent X of budget Y (measured)", or None without a budget
    budget_spent: bool = False
    unreadable: list[int] = field(default_factory=list)  # runs whose energy is not known
    slurm: dict | None = None  # the last submission's job ids and those still queued
    beyond: int = 0  # run folders above `runs` (an earlier sweep's with more runs)
    differs: list[str] = field(default_factory=list)  # training settings config changed
    unbounded: bool = False  # the budget alone ends the sweep (`runs` is only a cap)

    def count(self, status: str) -> int:
        return sum(run.status == status for run in self.started)

    @property
    def not_started(self) -> int:
        """Runs without a folder yet: the sweep command starts them unless the budget is
        spent; none are counted where the budget alone ends the sweep."""
        return 0 if self.unbounded else max(0, self.runs - len(self.started))

    def to_json(self) -> dict:
        out = asdict(self)
        out["counts"] = {state: self.count(state) for state in runfolder.STATES}
        out["counts"]["not_started"] = self.not_started
        out["energy_j"] = None if math.isnan(self.energy_j) else self.energy_j
        if self.unbounded:
            out["runs"] = None  # runs until the budget is spent, not the internal cap
        return out


def read(settings: dict) -> SweepStatus:
    """The state of the sweep in `settings["sweep_dir"]` over runs 0..runs-1, as the same
    sweep command would see it (config.yaml's settings with the command line's), and its
    energy over every run folder.

    Raises:
        UsageError: no sweep has started in that folder.
    """
    sweep_dir = Path(settings["sweep_dir"])
    if not sweep_dir.is_dir() or not ((sweep_dir / "sweep.json").exists()
                                      or runfolder.present(sweep_dir, EVERY_RUN)):
        raise UsageError(f"no sweep in {sweep_dir}/ yet: `greenscreen sweep` starts it "
                         "(--sweep-dir names another folder)")
    # The epochs its runs train, as its sweep.json records them: a config.yaml edited
    # since is said (`differs`), never shown as the sweep's.
    recorded, differs = manifest.recorded_training(sweep_dir, settings)
    state = SweepStatus(str(sweep_dir), settings["runs"],
                        recorded.get("settings.epochs", settings["epochs"]), differs=differs,
                        unbounded=budget.unbounded(settings))
    state.started = [_run_state(sweep_dir, row)
                     for row in runfolder.started(sweep_dir, settings["runs"])]
    state.beyond = len(runfolder.present(sweep_dir, EVERY_RUN)) - len(state.started)
    spent = budget.spent(sweep_dir)
    state.energy_j, state.energy_source = spent.total_j, spent.provenance
    state.unreadable = list(spent.unreadable)
    state.budget = budget.line(settings, sweep_dir, spent)
    state.budget_spent = not budget.allows_next(settings, sweep_dir)
    state.slurm = _slurm_jobs(sweep_dir)
    return state


def _run_state(sweep_dir: Path, row: dict) -> RunState:
    run = RunState(row["index"], row["status"], _reason(row))
    if run.status in runfolder.FINAL or run.status == "unreadable":
        return run
    # Another host's run reads as interrupted here (its process cannot be checked from
    # this host); its claim says who trains it, as it does to every executor.
    if claims.trained_now(sweep_dir, run.index):
        holder = claims.owner(sweep_dir, run.index) or {}
        run.status, run.reason = "running", None
        run.holder = _holder(holder)
    elif run.status == "running":
        run.status = "interrupted"  # its process is gone and nobody holds its claim
    return run


def _reason(row: dict) -> str | None:
    if row["status"] == "failed":
        return failure(row)
    return row.get("reason")  # a parked run's: the peers it still waits for, as it wrote


def _holder(holder: dict) -> str | None:
    pid = holder.get("pid")
    if pid is None:
        return None
    import socket

    host = holder.get("host")
    return f"pid {pid}" if host in (None, socket.gethostname()) else f"host {host}, pid {pid}"


def _slurm_jobs(sweep_dir: Path) -> dict | None:
    """The last Slurm submission's job ids, and which are still queued or running (None
    where squeue cannot say: not a Slurm host)."""
    from .executors import slurm, slurm_tasks

    try:
        recorded = runfolder.read_json(sweep_dir / "slurm" / slurm.JOBS)
    except runfolder.Unreadable:
        recorded = None
    if not recorded:
        return None
    ids = [str(recorded[k]) for k in ("array", "report") if recorded.get(k)]
    return {**recorded, "still_queued": slurm_tasks.still_queued(ids)}


def lines(state: SweepStatus) -> list[str]:
    """The status in words: a headline, then one line per thing to know."""
    runs, planned = (budget.UNTIL_SPENT, None) if state.unbounded \
        else (counted(state.runs, "run"), state.runs)
    out = [f"{state.sweep_dir}/: {through([asdict(r) for r in state.started], planned)} "
           f"({runs} x {counted(state.epochs, 'epoch')})"]
    for status in IN_FLIGHT:
        runs = [r for r in state.started if r.status == status]
        out += [_in_flight(run, _held(state)) for run in runs]
    failed = [r for r in state.started if r.status == "failed"]
    out += [f"  failed: run {r.index:03d}: {r.reason or 'no reason recorded'}"
            for r in failed[:FAILED_SHOWN]]
    if len(failed) > FAILED_SHOWN:
        out.append(f"  ... and {len(failed) - FAILED_SHOWN} more failed (`greenscreen "
                   "analyze` lists each in analysis.json's left_out)")
    out += [f"  unreadable: run {r.index:03d}: {r.reason}" for r in state.started
            if r.status == "unreadable"]
    unknown = some([f"{i:03d}" for i in state.unreadable])
    if state.not_started:
        held = "" if not state.budget_spent else f" (no run starts while what run(s) {unknown} " \
            "spent is unknown)" if state.unreadable else \
            " (the spent budget keeps them from starting)"
        out.append(f"  not started: {counted(state.not_started, 'run')}{held}")
    if state.beyond:
        out.append(f"  {state.beyond} run folder{'s' if state.beyond > 1 else ''} above "
                   f"settings.runs ({state.runs}): not trained by this sweep command, "
                   "their energy counted in the total")
    energy = NO_FIGURE if math.isnan(state.energy_j) or state.energy_source == NO_FIGURE \
        else f"{state.energy_j:.1f} J ({state.energy_source})"
    out.append(f"  energy so far: {energy}" + (f"; what run(s) {unknown} spent is unknown "
                                               "(summary.json unreadable)"
                                               if state.unreadable else ""))
    if state.budget:
        out.append(f"  {state.budget}")
    if state.differs:
        out.append(f"  config.yaml differs from the settings this sweep trains by: "
                   f"{'; '.join(state.differs)}: the sweep command refuses to resume it so")
    if state.slurm:
        out.append(f"  Slurm: {_slurm_words(state.slurm)}")
    return out


def _held(state: SweepStatus) -> str | None:
    """What keeps the sweep command from resuming a run, as the sweep says it; None."""
    if not state.budget_spent:
        return None
    if state.unreadable:  # a larger budget would not help: the total is not known
        return (f"held back: no run starts while what run(s) "
                f"{some([f'{i:03d}' for i in state.unreadable])} spent is unknown")
    return "held back by the spent budget (a larger settings.budget resumes it)"


def _in_flight(run: RunState, held: str | None) -> str:
    if run.status == "running":
        return f"  running: run {run.index:03d}" + (f" ({run.holder})" if run.holder else "")
    what = {"parked": "resumes once its rung is decided",
            "interrupted": "the same sweep command resumes it",
            "pending": "the same sweep command trains it"}[run.status]
    if held and run.status in ("interrupted", "pending"):  # as the sweep says it
        what = held
    why = f" ({run.reason})" if run.reason else ""
    return f"  {run.status}: run {run.index:03d}{why}: {what}"


def _slurm_words(slurm: dict) -> str:
    named = [f"{slurm[k]} ({'the runs' if k == 'array' else 'the report'})"
             for k in ("array", "report") if slurm.get(k)]
    jobs = f"job{'s' if len(named) > 1 else ''} {some(named)}"
    queued = slurm.get("still_queued")
    if queued is None:
        return f"last submission: {jobs}; squeue cannot say whether they still run"
    if not queued:
        return f"last submission: {jobs}, ended"
    return f"{jobs}: {some(queued)} still queued or running"


def show(settings: dict, as_json: bool = False) -> None:
    """Prints the sweep's status (`lines`), or with `as_json` its JSON object."""
    state = read(settings)
    if as_json:
        print(json.dumps(state.to_json(), indent=2, allow_nan=False))
        return
    text = lines(state)
    print(f"greenscreen: {text[0]}")
    for line in text[1:]:
        print(line)
