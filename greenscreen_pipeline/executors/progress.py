"""The sweep's output: one line per run, as each finishes. Thread-safe.

    [3/8] run 002 done     acc 0.9611  energy 412.3 J (measured:nvml)  total 1203.9 J (measured)

and an ETA. The total is the sweep's energy so far, every run folder's, by
`sweep_total.of`'s rule (the rule analysis.json, the report and the budget's "spent"
follow too), through a `sweep_total.Totals` kept for the sweep: each line reads only the
summaries that changed since the last, not every run's.
"""

from __future__ import annotations

import math
import re
import sysconfig
import threading
from pathlib import Path

from .. import ledger, runfolder, sweep_total
from ..log import logger
from ..wording import counted
from .attempt import NOT_STARTED, RunReport

log = logger(__name__)


class Progress:
    """Prints i/N, accuracy, energy, the total energy so far and an ETA per finished run.

    Args:
        runs: How many runs this invocation reports on; None where the energy budget
            ends the sweep (no count, no ETA).
        books: The sweep's own device ledger; when it measures, it records its session
            before each line, and the total counts each GPU once (runs that shared a GPU
            are not added up; `sweep_total`).
    """

    def __init__(self, runs: int | None, books: "ledger.DeviceLedger | None" = None,
                 budget_line=lambda now: None) -> None:
        self.runs, self.done, self.total, self.spent = runs, 0, 0.0, sweep_total.NO_FIGURE
        # the sweep's total -> "spent X of budget Y (measured)" or None (`budget.line`)
        self.budget_line = budget_line
        self.said_spent: str | None = None  # the last budget line printed
        self.durations: list[float] = []
        self.books = books
        self.totals = sweep_total.Totals()  # used under self.lock: it is not thread-safe
        self.lock = threading.Lock()

    def report(self, sweep_dir: Path, run: RunReport) -> None:
        if run.note == NOT_STARTED:  # declined: neither a run of this sweep's count nor energy
            print(f"    run {run.index:03d} {NOT_STARTED}", flush=True)
            return
        energy, source = energy_of(runfolder.RunFolder.of(sweep_dir, run.index))
        with self.lock:
            if self.books is not None and self.books.active:
                self.books.record()
            now = self.totals.of(sweep_dir)
            self.total, self.spent = now.total_j, now.provenance
            if run.note == "interrupted":  # not through: it resumes, and is counted then
                spent = "" if math.isnan(energy) else \
                    f" ({energy:.1f} J spent so far ({source}), kept)"  # an estimate says so
                print(f"    run {run.index:03d} interrupted{spent}: it resumes when you run "
                      "the same command again", flush=True)
                return
            self.done += 1
            if run.wall_s is not None:
                self.durations.append(run.wall_s)
            name, value = score_of(sweep_dir, run.outcome, run.index)
            joules = "n/a" if math.isnan(energy) else f"{energy:.1f} J ({source})"
            print(f"{self._count()} run {run.index:03d} {run.note:<8} "
                  f"{name} {'n/a' if value is None else f'{value:.4f}'}  energy {joules}  "
                  f"total {self.total:.1f} J ({self.spent}){self._eta()}", flush=True)
            spent = self.budget_line(now)
            if spent and spent != self.said_spent:  # kept runs on a resume: said once
                self.said_spent = spent
                print(f"    {spent}", flush=True)
            why = failure(run.outcome) if run.note in ("failed", "skipped") else run.detail
            if why:
                print(f"    run {run.index:03d} {run.note}: {why}", flush=True)
        if run.index == 0 and run.wall_s is not None:  # the baseline, trained just now
            warn_about_baseline(runfolder.RunFolder.of(sweep_dir, 0))


    def _count(self) -> str:
        return f"[{self.done}]" if self.runs is None else f"[{self.done}/{self.runs}]"

    def _eta(self) -> str:
        """"  ETA 2m10s"; nothing where the budget, not a number of runs, ends the sweep,
        or before this invocation has trained a run (kept runs say nothing of the rest)."""
        if self.runs is None or (not self.durations and self.done < self.runs):
            return ""
        left = self.runs - self.done
        eta = sum(self.durations) / len(self.durations) * left if self.durations else 0.0
        return f"  ETA {clock(eta)}"


def through(started: list[dict], runs: int | None) -> str:
    """"3/8 runs done, 1 stopped early by halving": the runs that will not train again;
    "3 runs done, ..." where `runs` is None (the budget, not a count, ends the sweep)."""
    counts = {state: sum(r["status"] == state for r in started) for state in runfolder.FINAL}
    others = [f"{counts[state]} {words}" for state, words in (
        ("stopped", "stopped early by halving"), ("failed", "failed"),
        ("skipped", "skipped")) if counts[state]]
    done = counted(counts["done"], "run") if runs is None else f"{counts['done']}/{runs} runs"
    return f"{done} done" + "".join(f", {o}" for o in others)


def none_finished(outcomes: list[dict]) -> str | None:
    """"no run finished: 3 failed (see the reasons above)" where every run ended and none
    finished: each failed or was skipped by your rules, one at least failed. None where a
    run is done or stopped early by halving, where one is not through (interrupted, parked,
    lost: the same command trains it) or where none failed (all skipped, or no run at all:
    a budget spent before the first). With a budget `outcomes` holds the runs that started
    only: the runs the budget kept from starting are not failures."""
    states = [r.get("status") for r in outcomes]
    failed = states.count("failed")
    if not failed or any(state not in ("failed", "skipped") for state in states):
        return None
    skipped = states.count("skipped")
    return (f"no run finished: {failed} failed" + (f", {skipped} skipped" if skipped else "")
            + " (see the reasons above)")


class FailureStreak:
    """Runs that failed in a row with the same error (digits aside: a batch size or a
    shape in the message does not make it another error). After `limit` of them the sweep
    should stop: every further run would fail the same way. Thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.streak: list[tuple[int, str]] = []
        self.lock = threading.Lock()

    def record(self, run: RunReport) -> str | None:
        """Notes how `run` ended; returns why the sweep should stop, or None."""
        reason = run.outcome.get("reason") if run.note == "failed" else None
        with self.lock:
            if reason is None or self.limit <= 0:
                self.streak = [] if run.wall_s is not None else self.streak
                return None
            key = re.sub(r"\d+", "N", reason)
            if self.streak and self.streak[-1][1] != key:
                self.streak = []
            self.streak.append((run.index, key))
            if len(self.streak) < self.limit:
                return None
            runs = ", ".join(f"{i:03d}" for i, _ in self.streak)
            return (f"runs {runs} failed one after another with the same error: "
                    f"{failure(run.outcome)}. Every further run would likely fail too; fix "
                    "it, then `greenscreen sweep --retry-failed` trains the failed runs again "
                    f"(settings.stop_after_failures: {self.limit}; 0 never stops)")


def failure(outcome: dict) -> str | None:
    """Why a run failed, and where: its reason and the last file and line of its traceback
    that is not the pipeline's, an installed package's or Python's own (your code, where
    it is); no place where none of it is yours: the pipeline's own line, said as where a
    run failed, read as the place to fix."""
    reason = outcome.get("reason")
    if not reason:
        return None
    frames = re.findall(r'File "([^"]+)", line (\d+)', outcome.get("traceback_tail") or "")
    yours = [(f, n) for f, n in frames if not any(part in f for part in NOT_YOURS)]
    where = yours[-1] if yours else None
    return f"{reason}" + (f" ({where[0]}:{where[1]})" if where else "")


NOT_YOURS = ("site-packages", "greenscreen_pipeline", "/greenscreen/", "<frozen",
             sysconfig.get_path("stdlib") + "/")  # argparse's exit, called by your code


def score_of(sweep_dir: Path, outcome: dict, index: int) -> tuple[str, float | None]:
    """The short name and test value of the sweep's objective ("acc" for accuracy); for a
    run without a test value (your training loop returned its validation value), the
    value it is ranked by, under its own name ("val_loss")."""
    from ..objective import Objective

    try:
        objective = Objective.of_sweep(sweep_dir)
    except ValueError:  # sweep.json from a config this version refuses: accuracy, as before
        objective = Objective()
    value = outcome.get(objective.test_name)
    if value is None and outcome.get("status") == "done":
        try:
            results = runfolder.RunFolder.of(sweep_dir, index).results()
        except runfolder.Unreadable:
            results = None
        ranked = (results.objective if results else None) or {}
        if ranked.get("split") == "validation" and ranked.get("value") is not None:
            return objective.name, float(ranked["value"])
    return ("acc" if objective.metric == "accuracy" else objective.metric), value


def warn_about_baseline(folder: runfolder.RunFolder) -> None:
    """What run 000 showed about your code: dimensions of your own that your functions did
    not read, and a training function of your own that did not pass on `callbacks`."""
    try:
        results = folder.results()
    except runfolder.Unreadable:
        return
    if results and results.unread_dimensions:
        log.warning("run %s: your own dimension(s) %s were read by none of your functions "
                    "(model, dataset or training loop, as params[...]): a typo, or a "
                    "dimension that changes nothing?", folder.name,
                    ", ".join(results.unread_dimensions))
    if results and results.objective.get("per_epoch") is False:
        log.warning("run %s: your training function did not pass `callbacks` to a fit, so "
                    "per-epoch figures are missing; each run's whole call is measured as one "
                    "window", folder.name)


def energy_of(folder: runfolder.RunFolder) -> tuple[float, str]:
    """A run's energy over all its attempts and its provenance; NaN and "none" without one."""
    try:
        summary = folder.summary()
    except runfolder.Unreadable:
        summary = None
    return (summary.energy_j, summary.source) if summary else (math.nan, "none")


def clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s"
