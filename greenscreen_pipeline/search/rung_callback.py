"""Halving inside a run: at each rung epoch, record the run's figures and wait for its
peers' (`rungfiles.await_decision`); on "stop" the fit ends after that epoch.

With `release` (a local random search, `settings.release_at_rungs`, issue 37 item 3) a run
whose rung is not decided yet does not wait: the fit ends after that epoch (its
checkpoint written, as every epoch's), RunParked says where, and the executor gives the
worker to the next run; it resumes the run from the checkpoint once the rung is decided
(`rungfiles.parked_is_decided`), where `check_resumed` reads the decision.

The callback sits after SMICallback (whose summary.json then holds the energy so far,
every attempt included) and records the rung before the epoch checkpoint; its `waiter`,
after the checkpoint, waits for the decision. So a run killed while it waits (a Slurm
task cancelled or out of time) resumes at the rung with its record there, and
`check_resumed` waits again before any further epoch trains: the rung epoch is not
trained twice. A SIGTERM or SIGINT between its record and the checkpoint waits for the
checkpoint (`run.interrupt.hold`). A run killed there (SIGKILL) resumes from the epoch
before and reaches the rung again, where it reads back the record it wrote (never a
second one with other figures: its peers may have decided by it), and its peers'
decision is the same; that record's energy is the first attempt's at the rung, the
joules of training the epoch again are in summary.json and every total, not in it. A
run stopped at a rung keeps that epoch's checkpoint; should it be killed before its
status says stopped, `check_resumed` finds the decision again.

In a Slurm array task (`job`), a run stops waiting for a peer whose task has ended
without it (cancelled, failed, out of time) and that no live process trains: it is
parked at the rung as a released run is, and resumes there when the sweep is submitted
again, instead of holding its allocation idle until its `--time` runs out.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import keras

from .. import runfolder
from ..executors.slurm_tasks import ArrayJob
from ..provenance import energy_kind
from ..runfolder import RunFolder
from . import halving, rungfiles
from .halving import RungRecord
from .rungfiles import will_not_reach

POLL_S = 1.0


class RunStopped(Exception):
    """Halving stopped the run at a rung; the message says where and why."""


class RunParked(Exception):
    """The run reached a rung its peers have not decided and gave its worker back.

    Attributes:
        rung: The rung's epoch.
        peers: The runs whose records decide it (`halving.peers`), itself included.
    """

    def __init__(self, run: int, rung: int, peers: list[int], waiting: list[int],
                 job: ArrayJob | None = None, gone: list[int] | None = None) -> None:
        self.rung, self.peers = rung, peers
        names = _names(waiting)
        # No one left to wait for: the last peers reached the rung or ended between the
        # decision and now (the fit had already stopped), so it can be decided at once.
        why = (f"waiting for run(s) {names} to reach it or end" if waiting else
               "its last peers reached it or ended as it parked")
        when = "once the rung is decided"
        if job is not None and gone:  # their array tasks ended without them: none comes
            tasks = _names(sorted({job.describe(p) for p in gone}))
            why = (f"waiting for run(s) {_names(gone)}, whose Slurm array task(s) {tasks} "
                   "ended without them (cancelled, failed or out of time)")
            when = "when the sweep is submitted again (sweep slurm)"
        super().__init__(f"parked at rung {rung} (epoch {rung}): {why}; the checkpoint is "
                         f"kept and the run resumes from it {when}")


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
        release: At a rung not decided yet, end the fit and raise RunParked (after the
            fit) instead of waiting (module docstring).
        settings: The sweep's settings (`budget`, `runs`): with an energy budget, a peer
            that will never start once it is spent is not waited for
            (`rungfiles.never_starts`). None: every peer is waited for until it ends.
        job: The Slurm array job whose task trains this run (`ArrayJob.here`): a peer
            whose task has ended without it is not waited for; the run is parked at the
            rung (`rungfiles.untrained_in_array`). None: outside an array.
    """

    def __init__(self, sweep_dir: "str | Path", run: int, group: range, epochs: int,
                 eta: "int | halving.Rule",
                 objective_name: str, maximize: bool, poll_s: float = POLL_S,
                 release: bool = False, settings: dict | None = None,
                 job: ArrayJob | None = None) -> None:
        super().__init__()
        self.release, self.parked_at, self.settings = release, None, settings
        self.job, self.peers_gone = job, []  # peers no task of `job` will bring
        self.sweep_dir, self.run, self.group = Path(sweep_dir), run, list(group)
        self.epochs, self.rule, self.poll_s = epochs, halving.as_rule(eta), poll_s
        self.rungs = self.rule.rungs(epochs, run)
        self.objective_name, self.maximize = objective_name, maximize
        self.folder = RunFolder.of(sweep_dir, run)
        self.stopped_at: int | None = None
        self.pending: RungRecord | None = None  # recorded at this epoch, not yet decided

    def has_ended(self, run: int) -> bool:
        """Whether peer `run` will not reach a rung it has no record at: it has ended (done,
        stopped, failed, skipped), or never starts (the budget is spent)."""
        return will_not_reach(self.sweep_dir, run, self.settings)

    def decide(self, record: RungRecord) -> str:
        """Records `record` (or the one recorded before, on a resumed run) and waits; with
        `release`, returns halving.WAIT at once where the rung is not decided. A decision
        is recorded once made, and a resumed run reads it back (`rungfiles.write_decision`)."""
        made = rungfiles.read_decision(self.folder.path, record.epoch)
        if made is not None:
            return made
        decision = self._decide(record)
        if decision != halving.WAIT:
            rungfiles.write_decision(self.folder.path, record.epoch, decision)
        return decision

    def _decide(self, record: RungRecord) -> str:
        record = rungfiles.read_rung(self.folder.path, record.epoch) or record
        if self.release:
            rungfiles.write_rung(self.folder.path, record)
            return rungfiles.decision_now(self.sweep_dir, record, self.group, self.has_ended,
                                          self.rule, self.maximize)
        gone = (partial(rungfiles.untrained_in_array, self.sweep_dir, self.job)
                if self.job is not None else None)
        try:
            return rungfiles.await_decision(self.sweep_dir, record, self.group,
                                            self.has_ended, self.rule, self.maximize,
                                            poll_s=self.poll_s, gone=gone)
        except rungfiles.PeersGone as exc:  # no one brings them this submission: park
            self.peers_gone = exc.peers
            return halving.WAIT

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """At a rung, records the run's figures (before the epoch's checkpoint); `waiter`,
        after the checkpoint, waits for the decision."""
        trained = epoch + 1
        if trained not in self.rungs:
            return
        logs = logs or {}
        # A run whose loss is NaN or infinite diverged (it fails when fit ends): its
        # metrics are of a broken model, and a cheap one took a place on the rung's front
        # from a healthy peer. Recorded as NaN, which never goes on.
        diverged = not math.isfinite(_number(logs.get("loss", 0.0)))
        value = math.nan if diverged else _number(logs.get(self.objective_name))
        record = RungRecord(self.run, trained, value, *self.energy_so_far())
        self.pending = rungfiles.read_rung(self.folder.path, trained) or record
        rungfiles.write_rung(self.folder.path, self.pending)

    def waiter(self) -> keras.callbacks.Callback:
        """The callback that waits for the rung's decision: placed after the epoch
        checkpoint, so that a run killed while it waits resumes at the rung, not before it."""
        return _AfterCheckpoint(self)

    def settle(self) -> None:
        """The decision of the rung recorded at this epoch's end, if one was."""
        record, self.pending = self.pending, None
        if record is None:
            return
        decision = self.decide(record)
        if decision == halving.WAIT:  # released: the checkpoint of this epoch is written
            self.parked_at = record.epoch
            self.model.stop_training = True
        elif decision == halving.STOP:
            self.stopped_at = record.epoch
            self.model.stop_training = True

    def energy_so_far(self) -> tuple[float, str]:
        """The run's energy over every attempt, as SMICallback's summary.json has it now,
        and how it was obtained (`provenance.energy_kind`; "" where there is none)."""
        try:
            summary = self.folder.summary()
        except runfolder.Unreadable:
            return math.nan, ""
        if not summary:
            return math.nan, ""
        return summary.energy_j, energy_kind(summary.source)

    def check_resumed(self, start: int) -> None:
        """A run resumed at epoch `start`: raises RunStopped if a rung it passed stopped it
        (its status was not written before it was killed)."""
        for rung in (r for r in self.rungs if r <= start):
            record = rungfiles.read_rung(self.folder.path, rung)
            decision = self.decide(record) if record is not None else halving.GO_ON
            if decision == halving.WAIT:
                self.parked_at = rung
            elif decision == halving.STOP:
                self.stopped_at = rung
            self.raise_if_stopped()

    def raise_if_stopped(self) -> None:
        """Raises RunParked where the run gave its worker back at an undecided rung, and
        RunStopped once a rung stopped it."""
        if self.parked_at is not None:
            records = rungfiles.rung_table(self.sweep_dir, self.group, self.parked_at)
            waiting = [p for p in self.rule.group(self.run, self.group)
                       if p not in records and not self.has_ended(p)]
            raise RunParked(self.run, self.parked_at, self.group, waiting, self.job,
                            self.peers_gone)
        if self.stopped_at is not None:
            raise RunStopped(f"halving: stopped at epoch {self.stopped_at} of {self.epochs}: "
                             f"not kept among its peers at that rung by "
                             f"({self.objective_name}, energy so far); rule: "
                             f"{self.rule.describe()}")


class _AfterCheckpoint(keras.callbacks.Callback):
    """`RungCallback.settle` after the epoch's checkpoint (`RungCallback.waiter`)."""

    def __init__(self, rungs: RungCallback) -> None:
        super().__init__()
        self.rungs = rungs

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.rungs.settle()


def _names(items: list) -> str:
    """Up to 8 runs (as 001) or task names, then "..."."""
    shown = [f"{i:03d}" if isinstance(i, int) else str(i) for i in items[:8]]
    return ", ".join(shown) + (" ..." if len(items) > 8 else "")


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def for_run(sweep_dir: "str | Path", run: int, runs: int, batch_size: int, epochs: int,
            rule: halving.Rule, objective_name: str, maximize: bool,
            release: bool = False, settings: dict | None = None) -> RungCallback:
    """The callback of run `run` of a sweep of `runs`, halved in batches of `batch_size`
    with every earlier run as a peer (scope "sweep"), by `rule` (the sweep's:
    `manifest.halving_rule`); `settings`: the sweep's, for its energy budget
    (`RungCallback`)."""
    group = halving.peers(run, batch_size, runs, scope="sweep")
    return RungCallback(sweep_dir, run, group, epochs, rule, objective_name, maximize,
                        release=release, settings=settings, job=ArrayJob.here())
