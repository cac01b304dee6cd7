"""Runs parked at a halving rung (issue 37 item 3): which of them may resume now.

A run that reaches a rung its peers have not decided gives its worker back
(`search.rung_callback.RunParked`, status parked). The executor keeps it here and, each
time a slot frees, resumes the lowest parked run whose rung is now decided before it
starts a new run. The local pool and Ray's dispatch share this; a Slurm array task trains
its share of the runs in order and waits at a rung in its worker instead.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..objective import Objective
from ..search.rung_callback import parked_is_decided
from ..space import SweepConfig


def releases(config: SweepConfig) -> bool:
    """Whether runs give their worker back at an undecided rung: with halving and
    settings.release_at_rungs, in warm workers (under isolate_runs a resume would cost a
    fresh process)."""
    s = config.settings
    return s["early_stop"] == "halving" and s["release_at_rungs"] and not s["isolate_runs"]


class ParkedRuns:
    """The parked runs of one sweep, with their status (`rung`, `peers`). Thread-safe."""

    def __init__(self, config: SweepConfig, sweep_dir: "str | Path") -> None:
        self.sweep_dir = Path(sweep_dir)
        self.eta = config.settings["halving_eta"]
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
        """The lowest parked run whose rung is decided, taken off the list; or None."""
        with self.lock:
            for index in sorted(self.runs):
                if parked_is_decided(self.sweep_dir, index, self.runs[index], self.eta,
                                     self.maximize):
                    del self.runs[index]
                    return index
        return None

    def take_lowest(self) -> int:
        """The lowest parked run, taken off the list: to resume and wait in its worker,
        where nothing else can decide its rung."""
        with self.lock:
            index = min(self.runs)
            del self.runs[index]
            return index
