"""Runs parked at a halving rung (issue 37 item 3): which of them may resume now.

A run that reaches a rung its peers have not decided gives its worker back
(`search.rung_callback.RunParked`, status parked). The local pool keeps it here and, each
time a slot frees, resumes the lowest parked run whose rung is now decided before it
starts a new run.

Only a local random search releases: Ray and a pareto search hand out one batch at a time
(as many runs as slots), so a worker given back would have no run to take, and the
resume (the model built again, the checkpoint read, the step compiled again) would be
pure cost; a Slurm array task trains its share of the runs in order. There, and under
`isolate_runs` (a resume would cost a fresh process), a run waits in its worker.
"""

from __future__ import annotations

import threading
from pathlib import Path

from .. import manifest, runfolder
from ..objective import Objective
from ..search import rungfiles
from ..search.rungfiles import parked_is_decided, will_not_reach
from ..space import SweepConfig
from . import claims


def releases(config: SweepConfig) -> bool:
    """Whether runs give their worker back at an undecided rung (module docstring)."""
    s = config.settings
    return (s["early_stop"] == "halving" and s["release_at_rungs"] and s["search"] == "random"
            and not s["isolate_runs"])


class ParkedRuns:
    """The parked runs of one sweep, with their status (`rung`, `peers`). Thread-safe."""

    def __init__(self, config: SweepConfig, sweep_dir: "str | Path") -> None:
        self.sweep_dir, self.settings = Path(sweep_dir), config.settings
        self.rule = manifest.halving_rule(sweep_dir, config.settings["halving_eta"])
        self.maximize = Objective.from_settings(config.settings).maximise
        self.runs: dict[int, dict] = {}
        self.lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.runs)

    def add(self, index: int, outcome: dict) -> None:
        """Notes run `index`, parked (its outcome: status.json), and says so."""
        with self.lock:
            self.runs[index] = outcome
        print(f"    run {index:03d} {outcome.get('reason', 'parked')}; its worker takes the "
              "next run", flush=True)

    def take_decided(self) -> int | None:
        """The lowest parked run whose rung is decided, taken off the list; or None. A rung
        file that cannot be read counts as decided: the run resumes, and its own process
        records what is wrong, as it would have waiting."""
        with self.lock:
            for index in sorted(self.runs):
                try:
                    decided = parked_is_decided(self.sweep_dir, index, self.runs[index],
                                                self.rule, self.maximize, self.settings)
                except runfolder.Unreadable:
                    decided = True
                if decided:
                    del self.runs[index]
                    return index
        return None

    def stuck(self) -> dict[int, list[int]]:
        """Parked runs no process can free: run -> the peers missing at its rung, none of
        them trained by a live process (failed to start; interrupted by a stop; a peer the
        budget stopped is not missing: `rungfiles.never_starts`). Empty while some missing
        peer still trains somewhere."""
        out = {}
        with self.lock:
            for index, status in sorted(self.runs.items()):
                missing = self._missing(index, status)
                if any(self._training(p) for p in missing):
                    return {}
                out[index] = missing
        return out

    def _missing(self, index: int, status: dict) -> list[int]:
        try:
            records = rungfiles.rung_table(self.sweep_dir, status["peers"], int(status["rung"]))
        except runfolder.Unreadable:
            return []
        return [p for p in status["peers"] if p != index and p not in records
                and not will_not_reach(self.sweep_dir, p, self.settings)]

    def _state(self, run: int) -> str:
        try:
            return runfolder.RunFolder.of(self.sweep_dir, run).state()
        except runfolder.Unreadable:
            return "unreadable"

    def _training(self, run: int) -> bool:
        """Whether a live process trains run `run` now (its status, its claim or lock)."""
        return self._state(run) == "running" or claims.trained_now(self.sweep_dir, run)
