"""Halving inside a run: at each rung epoch, record the run's figures and wait for its
peers' (`rungfiles.await_decision`); on "stop" the fit ends after that epoch.

The callback sits after SMICallback (whose summary.json then holds the energy so far,
every attempt included) and before the epoch checkpoint. So a run killed while it waits
at a rung resumes from the epoch before and reaches the rung again, where it reads back
the record it wrote (never a second one with other figures), and its peers' decision is
the same. A run stopped at a rung keeps that epoch's checkpoint; should it be killed
after the checkpoint and before its status says stopped, `check_resumed` finds the
decision again before any further epoch trains.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras

from .. import runfolder
from ..runfolder import RunFolder
from . import halving, rungfiles
from .halving import RungRecord

POLL_S = 1.0


class RunStopped(Exception):
    """Halving stopped the run at a rung; the message says where and why."""


class RungCallback(keras.callbacks.Callback):
    """Successive halving at the rungs of one run of a sweep.

    Args:
        sweep_dir: The sweep folder.
        run: The run's index.
        group: Its peers (`halving.peers`), itself included.
        epochs: The epochs it trains when never stopped.
        eta: The halving rate (the rule of issue 25) or a `halving.Rule`.
        objective_name: The validation metric in the Keras logs (e.g. val_accuracy).
        maximize: Whether a higher objective is better.
        poll_s: Seconds between reads of the peers' rung files.
    """

    def __init__(self, sweep_dir: "str | Path", run: int, group: range, epochs: int,
                 eta: "int | halving.Rule",
                 objective_name: str, maximize: bool, poll_s: float = POLL_S) -> None:
        super().__init__()
        self.sweep_dir, self.run, self.group = Path(sweep_dir), run, list(group)
        self.epochs, self.rule, self.poll_s = epochs, halving.as_rule(eta), poll_s
        self.rungs = self.rule.rungs(epochs, run)
        self.objective_name, self.maximize = objective_name, maximize
        self.folder = RunFolder.of(sweep_dir, run)
        self.stopped_at: int | None = None

    def has_ended(self, run: int) -> bool:
        """Whether peer `run` has ended (done, stopped, failed, skipped), by its folder."""
        try:
            return RunFolder.of(self.sweep_dir, run).state() in runfolder.FINAL
        except runfolder.Unreadable:
            return False

    def decide(self, record: RungRecord) -> str:
        """Records `record` (or the one recorded before, on a resumed run) and waits."""
        record = rungfiles.read_rung(self.folder.path, record.epoch) or record
        return rungfiles.await_decision(self.sweep_dir, record, self.group, self.has_ended,
                                        self.rule, self.maximize, poll_s=self.poll_s)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        trained = epoch + 1
        if trained not in self.rungs:
            return
        value = (logs or {}).get(self.objective_name)
        record = RungRecord(self.run, trained, _number(value), self.energy_so_far())
        if self.decide(record) == halving.STOP:
            self.stopped_at = trained
            self.model.stop_training = True

    def energy_so_far(self) -> float:
        """The run's energy over every attempt, as SMICallback's summary.json has it now."""
        try:
            summary = self.folder.summary()
        except runfolder.Unreadable:
            return math.nan
        return summary.energy_j if summary else math.nan

    def check_resumed(self, start: int) -> None:
        """A run resumed at epoch `start`: raises RunStopped if a rung it passed stopped it
        (its status was not written before it was killed)."""
        for rung in (r for r in self.rungs if r <= start):
            record = rungfiles.read_rung(self.folder.path, rung)
            if record is not None and self.decide(record) == halving.STOP:
                self.stopped_at = rung
                self.raise_if_stopped()

    def raise_if_stopped(self) -> None:
        """Raises RunStopped once a rung stopped the run."""
        if self.stopped_at is not None:
            raise RunStopped(f"halving: stopped at epoch {self.stopped_at} of {self.epochs}: "
                             f"not kept among its peers at that rung by "
                             f"({self.objective_name}, energy so far); rule: "
                             f"{self.rule.describe()}")


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def for_run(sweep_dir: "str | Path", run: int, runs: int, batch_size: int, epochs: int,
            eta: int, objective_name: str, maximize: bool) -> RungCallback:
    """The callback of run `run` of a sweep of `runs`, halved in batches of `batch_size`
    with every earlier run as a peer (scope "sweep"), by `halving.default_rule(eta)`."""
    group = halving.peers(run, batch_size, runs, scope="sweep")
    return RungCallback(sweep_dir, run, group, epochs, halving.default_rule(eta),
                        objective_name, maximize)
