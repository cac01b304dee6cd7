"""The sweep's energy budget (`settings.budget`, issue 37): how much energy its runs may
spend before no new run starts.

The one rule every executor calls before it starts a run is `allows_next`: the local
pool before each hand-out (and each pareto batch), Ray before each dispatch, a Slurm
array task (`run-one --share k/N`) before each run of its share. Spent energy is the
sweep's total (`sweep_total.of`): every attempt of every run folder, finished or not, so
a resumed sweep counts what it spent before; each GPU counted once where the local
sweep's own meter covered the attempt (sweep_energy.json), the runs' own figures
elsewhere. It is the rule of the console's "total" too, so that the total and the "spent
X of budget Y" line under it are one figure: two figures of the energy spent, side by
side, would leave the reader to guess which the budget stops at. Between two records of
the sweep's meter (after each finished run) the runs in flight count at their own
figures; without it (Ray, Slurm, no GPU) every run does.
Runs already in flight finish, runs parked at a halving rung included (they resume once
their rung is decided, `left_parked`, whichever executor runs the sweep again); the
budget may therefore be overshot by at most those runs.

Once the budget is spent, a run that has not started will not start in this sweep, so a
run waiting at a halving rung does not wait for it (`rungfiles.never_starts`): an array
task that stopped at the budget would otherwise leave its batch-mates waiting until their
--time ran out. `attempt.train_claimed` calls `allows_next` again after it has taken a
run's claim, so that a run that passed the first check just before the budget was spent
either is seen claimed by its waiting peers or does not start: never both counted out
and trained.
"""

from __future__ import annotations

import math
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from greenscreen.validation import nearest

from . import runfolder, sweep_total
from .log import logger
from .wording import counted

log = logger(__name__)

UNITS = {"J": 1.0, "kJ": 1e3, "MJ": 1e6, "GJ": 1e9, "Wh": 3600.0, "kWh": 3.6e6,
         "MWh": 3.6e9}
ALLOWED = ("a number of joules > 0 or '<number> <unit>' with unit " + ", ".join(UNITS)
           + " (e.g. '2 kWh'), or null for no budget")
# With a budget and no `runs` of yours, runs may go this far: the budget stops first.
RUNS_WITH_BUDGET = 10_000
_FORM = re.compile(r"\s*([0-9.eE+-]+)\s*([A-Za-z]+)\s*")


class BudgetError(ValueError):
    """A budget that cannot be read: what is allowed, and the near unit if there is one."""


def parse(value: Any) -> float | None:
    """The budget in joules, or None for no budget.

    Args:
        value: A number (joules), a string "<number> <unit>", or None.

    Raises:
        BudgetError: Anything else, a unit not in UNITS, or a value not finite and > 0.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise BudgetError(ALLOWED)
    if isinstance(value, int) and abs(value) > sys.float_info.max:  # float() would overflow
        raise BudgetError(ALLOWED)
    if isinstance(value, (int, float)):
        joules = float(value)
    elif isinstance(value, str):
        joules = _from_text(value)
    else:
        raise BudgetError(ALLOWED)
    if not (math.isfinite(joules) and joules > 0):
        raise BudgetError(ALLOWED)
    return joules


def _from_text(text: str) -> float:
    match = _FORM.fullmatch(text)
    if not match:
        try:  # a quoted number ("500"): its unit is not guessed, but the fix is said
            quoted = float(text)
        except ValueError:
            raise BudgetError(ALLOWED) from None
        if not (math.isfinite(quoted) and quoted > 0):  # 'nan J' would be no fix
            raise BudgetError(ALLOWED)
        raise BudgetError(ALLOWED + f"; {text.strip()!r} is a number in quotes, without a "
                          f"unit: give one ('{text.strip()} J', '{text.strip()} kWh') or "
                          "drop the quotes for joules")
    number, unit = match.groups()
    if unit not in UNITS:
        near = _meant(unit)
        raise BudgetError(ALLOWED + (f"; did you mean {near!r}?" if near else ""))
    try:
        return float(number) * UNITS[unit]
    except ValueError:
        raise BudgetError(ALLOWED) from None


def _meant(unit: str) -> str | None:
    """The unit of UNITS a mistyped one most likely means, only among those of the same
    magnitude: "kwh" or "KWh" is kWh, but "mJ" (milli) is not MJ (mega) nor "GW" J, a
    budget 10^6 to 10^9 off (the prefix: what precedes J or Wh, 'm' and 'M' apart)."""
    alike = [u for u in UNITS if _prefix(u) == _prefix(unit)
             or (_prefix(u).lower() == _prefix(unit).lower() != "m")]
    return next((u for u in alike if u.lower() == unit.lower()), None) \
        or nearest(unit, alike, cutoff=0.5)


def _prefix(unit: str) -> str:
    """A unit's magnitude prefix: "k" of "kWh" (and of "kW"), "M" of "MJ", "" of "J"."""
    lowered = unit.lower()
    for base in ("wh", "j", "w"):  # "kW": a power where an energy was meant
        if lowered.endswith(base):
            return unit[:-len(base)]
    return unit


# Energy the sweep spent, split by provenance (measured_j, computed_j: the seed format's,
# estimated_j; total_j; provenance in words, `sweep_total.words_of`).
Spent = sweep_total.SweepTotal


# Each sweep folder's kept total (`sweep_total.Totals`): `allows_next` is asked before
# every run (twice: before and after its claim), and reading every summary each time
# would cost O(n^2) reads over a sweep. One lock: Totals is not thread-safe, and the
# local pool's slot threads ask at once.
_TOTALS: dict[str, sweep_total.Totals] = {}
_TOTALS_LOCK = threading.Lock()


def spent(sweep_dir: "str | Path") -> Spent:
    """What every run folder spent over every attempt, finished or not, a folder above
    settings.runs too (`sweep_total.of`'s figures, reading only the summaries that changed
    since this process last asked)."""
    with _TOTALS_LOCK:
        totals = _TOTALS.setdefault(str(Path(sweep_dir).resolve()), sweep_total.Totals())
        return totals.of(sweep_dir)


def allows_next(settings: dict, sweep_dir: "str | Path") -> bool:
    """Whether a new run may start: no budget, or less spent than the budget, every run's
    spending known. The one rule of every executor. A run whose summary.json cannot be
    read spent an amount nobody knows: counting it as 0 J let runs start past the budget,
    so none starts until it is repaired or removed (the warning and `line` name it)."""
    budget = settings.get("budget")
    if budget is None:
        return True
    now = spent(sweep_dir)
    if now.unreadable:
        _warn_unreadable(sweep_dir, now.unreadable)
        return False
    return now.total_j < budget


_WARNED: set[tuple[str, tuple]] = set()


def _warn_unreadable(sweep_dir: "str | Path", runs: tuple) -> None:
    key = (str(sweep_dir), runs)
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning("energy budget: %s, so no new run starts; repair or remove %s and run "
                    "the same command again", unknown_words(runs),
                    " and ".join(str(runfolder.run_dir(sweep_dir, i) / "summary.json")
                                 for i in runs))


def unknown_words(runs: tuple) -> str:
    """"what run(s) 002 spent is not known (summary.json unreadable)"."""
    return (f"what run(s) {', '.join(f'{i:03d}' for i in runs)} spent is not known "
            "(summary.json unreadable)")


def left_parked(settings: dict, sweep_dir: "str | Path", among=None,
                exclude: "set[int] | frozenset[int]" = frozenset()) -> Iterator[int]:
    """The runs an earlier process left parked at a halving rung, in order (of `among`
    where given, not in `exclude`): once the budget is spent these alone still start, on
    every executor, since their energy is spent already and their peers may wait for them
    (module docstring; `attempt.train_claimed` lets a parked run start too). Only the run
    folders that exist are read."""
    for index in runfolder.present(sweep_dir, settings["runs"]):
        if index in exclude or (among is not None and index not in among):
            continue
        try:
            if runfolder.RunFolder.of(sweep_dir, index).state() == "parked":
                yield index
        except runfolder.Unreadable:
            continue


def unbounded(settings: dict) -> bool:
    """Whether the budget, not `runs`, ends the sweep (runs left at RUNS_WITH_BUDGET)."""
    return settings.get("budget") is not None and settings["runs"] == RUNS_WITH_BUDGET


UNTIL_SPENT = "runs until the energy budget is spent"  # a budget-only sweep's run count


def runs_words(settings: dict) -> str:
    """How many runs a sweep trains, in words: "8 runs", or, where the budget alone ends
    it, UNTIL_SPENT (not RUNS_WITH_BUDGET's 10000 runs)."""
    return UNTIL_SPENT if unbounded(settings) else counted(settings["runs"], "run")


def in_budget_units(joules: float, budget: float) -> str:
    """`joules` in the budget's unit and decimals, so that "spent X of Y" compares like
    with like: kWh for a budget of 3.6 kJ or more, with the budget's first four digits
    ("0.329 of 2.000 kWh") and at least two of a small figure's, else J ("412.3 J").
    Each figure in its own unit read "spent 1185.5 J of budget 0.005556 kWh"."""
    if budget < 3600:
        return f"{joules:.1f} J"
    kwh = joules / 3.6e6
    decimals = 3 - math.floor(math.log10(budget / 3.6e6))  # the budget's four digits
    if 0 < kwh < 1:  # and at least two of a small figure's: never "0.000" for 200 J
        decimals = max(decimals, 1 - math.floor(math.log10(kwh)))
    return f"{kwh:.{max(0, decimals)}f} kWh"


def line(settings: dict, sweep_dir: "str | Path", now: Spent | None = None) -> str | None:
    """"spent X of budget Y (measured)", or None without a budget; its provenance is the
    total's in words (`sweep_total.words_of`: "measured + estimated", the seed format's
    "computed from one power sample per epoch"). `now`: the sweep's total where the caller
    has just read it (the progress line), else read here."""
    budget = settings.get("budget")
    if budget is None:
        return None
    now = now or spent(sweep_dir)
    # In J, as the console's "total" above it: one figure, read alike; a budget given in
    # kWh is said in kWh too.
    kwh = f" = {in_budget_units(budget, budget)}" if budget >= 3600 else ""
    split = sweep_total.split_of(now)
    return (f"spent {now.total_j:.1f} J of budget {budget:.1f} J{kwh} ({now.provenance}"
            + (f": {split}" if split else "") + ")"
            + (f"; {unknown_words(now.unreadable)}" if now.unreadable else ""))


def held_back(settings: dict, started: list[dict]) -> bool:
    """Whether a spent budget keeps runs from training: a planned run not started, or one
    started and not through that would resume (pending, interrupted, parked at a rung).
    Not where `runs` ended the sweep: every planned run trained, the last ones past the
    budget (it is asked before a run starts)."""
    unstarted = settings["runs"] - len(started)
    return unstarted > 0 or any(r["status"] in ("pending", "interrupted", "parked")
                                for r in started)


def stopped_line(settings: dict, sweep_dir: "str | Path") -> str | None:
    """The one line saying the budget stopped the sweep, or None if it did not."""
    if settings.get("budget") is None or allows_next(settings, sweep_dir):
        return None
    started = runfolder.started(sweep_dir, settings["runs"])
    if not held_back(settings, started):
        return None
    done = sum(r["status"] == "done" for r in started)
    left = {state: [f"{r['index']:03d}" for r in started if r["status"] == state]
            for state in ("interrupted", "parked")}
    now = spent(sweep_dir)
    reached = "cannot be judged" if now.unreadable else "reached"
    return (f"energy budget {reached} after {counted(done, 'run')} done: "
            f"{line(settings, sweep_dir, now)}; "
            "no new run starts" + (
                f"; run(s) {', '.join(left['interrupted'])} stay interrupted ("
                + ("until what is unknown is known" if now.unreadable else
                   "a larger settings.budget resumes them") + ")"
                if left["interrupted"] else "") + (
                f"; run(s) {', '.join(left['parked'])} stay parked at a rung (the same "
                "command again finishes them)" if left["parked"] else "")
            + (f"; one run spent more than the whole budget ({now.total_j:.1f} J of "
               f"{settings['budget']:.1f} J): raise settings.budget to compare "
               "configurations" if len(started) == 1 and not now.unreadable
               and now.total_j > settings["budget"] else ""))


def outcomes(settings: dict, sweep_dir: "str | Path") -> list[dict]:
    """Each run's outcome at a sweep's end; with a budget, the runs with a folder only
    (`runs` may be RUNS_WITH_BUDGET), after one line if the budget stopped the sweep."""
    if settings.get("budget") is None:
        return runfolder.statuses(sweep_dir, settings["runs"])
    said = stopped_line(settings, sweep_dir)
    if said:
        log.info("%s", said)
    return runfolder.started(sweep_dir, settings["runs"])


def report_sentence(sweep_dir: "str | Path") -> str | None:
    """Page 1's sentence on the budget, from the settings sweep.json recorded; None
    without a budget."""
    settings = (runfolder.read_json(Path(sweep_dir) / "sweep.json") or {}).get("settings") or {}
    if settings.get("budget") is None or "runs" not in settings:
        return None
    now = spent(sweep_dir)
    started = runfolder.started(sweep_dir, settings["runs"])
    done = sum(r["status"] == "done" for r in started)
    split = sweep_total.split_of(now)
    head = (f"Budget: {in_budget_units(now.total_j, settings['budget'])} of "
            f"{in_budget_units(settings['budget'], settings['budget'])} spent "
            f"({now.provenance}" + (f": {split}" if split else "") + ")")
    if now.total_j < settings["budget"]:
        return f"{head}; {counted(done, 'run')} done within the budget."
    if held_back(settings, started):
        return f"{head}; the sweep stopped at the budget after {counted(done, 'run')} done."
    return (f"{head}; every one of the {settings['runs']} planned runs trained ({done} "
            "done), the last past the budget: it is asked before a run starts.")
