"""A pareto search's batches: each run's configuration proposed from the recorded results
and written to its folder (configuration.json) before the run is claimed.

The executor is the one writer of configuration.json. A folder that already holds one is
used as it is (never proposed again), so a sweep killed anywhere resumes its orphaned
runs with the configurations they started with. A batch is proposed only once every
earlier run has ended; the study is rebuilt from the run folders each time
(`search.propose`), so the same seed and the same recorded results give the same batch.

What proposing costs is recorded too, in `<sweep>/proposals/<batch>.json` (writer: the
executor): the proposing process's CPU seconds and an energy estimated from them
(`estimated:cpu-time`), never added into the runs' measured energy.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Iterator

from greenscreen.fileio import atomic_write_json
from greenscreen.meters.estimate import CpuTimeEstimate, watts_per_core

from .. import repeats, runfolder
from ..errors import PipelineError
from ..objective import Objective
from ..runfolder import RunFolder, read_json
from ..search import propose
from ..space import SweepConfig


class NotEnded(PipelineError):
    """A run before the batch to propose has not ended."""


def batch_runs(batch: int, batch_size: int, runs: int) -> range:
    """The run indices of batch `batch`."""
    return range(batch * batch_size, min(runs, (batch + 1) * batch_size))


def batches(config: SweepConfig, sweep_dir: Path, batch_size: int) -> Iterator[range]:
    """The sweep's batches in run order; under `search: pareto` each is proposed and
    recorded (`configure_batch`) only when it is asked for, so ask for the next batch once
    every run of the one before has ended.

    Raises:
        NotEnded: From `configure_batch`, when an earlier run has not ended.
    """
    runs = config.settings["runs"]
    for batch in range(math.ceil(runs / batch_size)):
        if config.settings["search"] == "pareto":
            configure_batch(config, sweep_dir, batch, batch_size)
        yield batch_runs(batch, batch_size, runs)


def configuration_of(config: SweepConfig, sweep_dir: Path, index: int) -> dict:
    """Run `index`'s configuration: the recorded one, else the random search's."""
    return RunFolder.of(sweep_dir, index).configuration() or config.run(index)


def result_of(config: SweepConfig, sweep_dir: Path, index: int,
              objective: Objective) -> propose.Result:
    """Run `index` as the proposal reads it: its recorded configuration, how it ended, its
    objective (results.json; a stopped run's last validation value) and its energy."""
    folder = RunFolder.of(sweep_dir, index)
    try:
        state = folder.state()
    except runfolder.Unreadable as exc:
        raise NotEnded(f"run {index:03d} cannot be read, so the runs after it cannot be "
                       f"proposed: {exc}") from None
    if state not in propose.STATES:
        raise NotEnded(f"run {index:03d} is {state}: a pareto search proposes a batch once "
                       "every earlier run has ended; run the same command again (when "
                       "another process holds it, once that one is finished)")
    summary = folder.summary()
    return propose.Result(index, configuration_of(config, sweep_dir, index), state,
                          _objective(folder, objective, state),
                          summary.energy_j if summary else math.nan,
                          summary.source if summary else None)


def _objective(folder: RunFolder, objective: Objective, state: str) -> float:
    if state == "done":
        results = folder.results()
        value = (results.objective or {}).get("value") if results else None
        return float(value) if isinstance(value, (int, float)) else math.nan
    if state == "stopped":
        logs = folder.logs()
        if objective.name in logs and len(logs):
            return float(logs[objective.name].iloc[-1])
    return math.nan


def configure_batch(config: SweepConfig, sweep_dir: Path, batch: int,
                    batch_size: int) -> dict[int, dict]:
    """The configurations of batch `batch`, proposing and recording those not recorded.

    Raises:
        NotEnded: A configuration is missing and an earlier run has not ended.
    """
    s = config.settings
    runs = batch_runs(batch, batch_size, s["runs"])
    recorded = {i: RunFolder.of(sweep_dir, i).configuration() for i in runs}
    if all(cfg is not None for cfg in recorded.values()):
        return recorded
    objective, n = Objective.from_settings(s), repeats.of(s)
    cpu_s = time.process_time()
    results = [result_of(config, sweep_dir, i, objective) for i in range(runs.start)]
    # The sampler proposes configurations (repeats.py): those whose first repeat is in
    # this batch, told the earlier ones' means; one run each where repeats is 1.
    proposed = propose.propose(
        config.space, repeats.told(results, n),
        range(math.ceil(runs.start / n), math.ceil(runs.stop / n)), seed=s["seed"],
        batch=batch, random_run=lambda c: config.run(c * n),
        n_startup=math.ceil(propose.default_startup(s["runs"], batch_size) / n),
        sampler=s["search_sampler"], maximize=objective.maximise,
        batch_size=math.ceil(batch_size / n))
    record_cost(sweep_dir, batch, runs, time.process_time() - cpu_s, s["search_sampler"])
    for c, cfg in proposed.items():  # every repeat, those in the next batch too
        for i in repeats.runs_of(c, n):
            if i < s["runs"] and RunFolder.of(sweep_dir, i).configuration() is None:
                RunFolder.of(sweep_dir, i).write_configuration(cfg)
    return {i: RunFolder.of(sweep_dir, i).configuration() for i in runs}


PROPOSALS = "proposals"
COST_PROVENANCE = CpuTimeEstimate.provenance  # the same label as the meter's estimate


def record_cost(sweep_dir: Path, batch: int, runs: range, cpu_s: float, sampler: str) -> None:
    """Adds what proposing batch `batch` cost to its record: this process's CPU seconds
    (Optuna and reading the run folders; the workers are idle between batches, and the
    sweep's meter thread, counted with them, makes the figure err high) and the energy
    the CPU-time estimate puts on them. A batch proposed again after a kill adds its
    seconds to those already recorded: they were spent twice."""
    path = Path(sweep_dir) / PROPOSALS / f"{batch:04d}.json"
    before = read_json(path) or {}
    cpu_s += float(before.get("cpu_s") or 0.0)
    atomic_write_json(path, {
        "batch": batch, "runs": [runs.start, runs.stop - 1], "sampler": sampler,
        "proposed": int(before.get("proposed") or 0) + 1, "cpu_s": cpu_s,
        "energy_j": cpu_s * watts_per_core(), "provenance": COST_PROVENANCE})
