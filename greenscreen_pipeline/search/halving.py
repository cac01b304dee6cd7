"""Successive halving on rungs at epochs first, first*eta, first*eta^2, ... below the last epoch.

Issue 25's rule, described here (the `Rule` below varies it; a new sweep's default is
`default_rule`): rungs from epoch 1, and at a rung, a run goes on if it is in the top
ceil(n / eta) (at least 1) of the n runs that reached the rung, by the objective, OR on
the rung's (objective, energy so far) Pareto front, so that a cheap run that is nearly
as good survives. Everything else is stopped there. The last epoch is not a rung: a run
that gets there is done.

When a rung is decided (synchronous, not ASHA): a run's rung table is the rung records
of its peers, and the run waits at the rung until every peer has reached it or ended
without reaching it (stopped at an earlier rung, failed, skipped). Only then is its
table final, so the decision depends on recorded results alone, never on which run
was faster. ASHA promotes as soon as a run is in the top 1/eta of whoever has arrived
so far; that saves the wait, but the same sweep run twice (or resumed after a kill)
could stop different runs, and the run folders would no longer say why. Here a resumed
run re-reads the same records and reaches the same decision.

Peers (`scope`):
    "batch"  the runs proposed together with it (its batch);
    "sweep"  every run of its batch and of the batches before it. A later run is then
             judged against all earlier runs that reached the rung, as ASHA judges it,
             but in run order rather than arrival order. This also halves a sweep of
             one worker (batch size 1), where a batch alone would promote every run.

The rule (`Rule`, issue 37). Today's rule above is `Rule(eta)`; three variations are
compared on learning curves by `benchmarks/search.py --table` (benchmarks/RESULTS.md):
    grace     the first rung as a share of the run (round(grace x epochs), at least 1),
              as ASHA's grace period: a long run is not judged on its first epoch alone;
    brackets  Hyperband-style: run i starts halving at rung level i mod brackets, so some
              runs pass their first rungs unjudged (a hedge for slow starters), and a run
              is judged only against peers of its own bracket;
    ranking   "top+front" (above) or "nds": non-dominated sorting of (objective, energy
              so far), as MO-ASHA: whole fronts are kept, best first, until ceil(n / eta)
              runs are kept (the last front filled by objective), the first front always.
`default_rule(eta)` is the one a sweep with `early_stop: halving` starts with: grace 0.1
and nds (`DEFAULT`, chosen on learning curves; issue 25's rule before). Every part of a
rule is a function of the run index and the recorded figures, never of timing, so a
resumed sweep decides the same.

Waiting needs every peer to be able to train at once: the batch size must not exceed
the runs that train concurrently (workers, Ray slots, array tasks at once), or a run
waits for a peer that waits for its slot. A local random search does not wait in a
worker (`settings.release_at_rungs`): a run at an undecided rung is parked and resumed
once it is decided (`rung_callback.RunParked`); the decision is the same.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Collection, Mapping, Sequence

from .front import pareto_mask

WAIT, GO_ON, STOP = "wait", "go on", "stop"
SCOPES = ("batch", "sweep")
RANKINGS = ("top+front", "nds")
# The default rule's parts beyond eta (`default_rule`): the first rung at 10 % of the run
# and non-dominated sorting at each rung. Chosen by benchmarks/RESULTS.md ("Halving rules
# on long learning curves"): on 12 LCBench tasks (YAHPO Gym's surrogate, 51 epochs) pareto
# + this rule reached random search's final hypervolume in 56 of 60 (task, seed) pairs at
# a median 0.15 of its energy, issue 25's rule in 44 of 60. Over 20 seeds, on LCBench's
# one real dataset reachable here, 17/20 at 0.44 against issue 25's 19/20 at 0.30; on
# digits (9 epochs) 18/20 at 0.38 against 19/20 at 0.41.
# Runs under 15 epochs keep their first rung at epoch 1. A sweep records the rule it
# starts with (`manifest.halving_rule`), so this default never changes a started sweep.
DEFAULT: dict = {"grace": 0.1, "ranking": "nds"}


@dataclass(frozen=True)
class RungRecord:
    """What a run writes when it reaches a rung: the row of that rung's table.

    Attributes:
        run: The run's index in the sweep.
        epoch: The rung: epochs trained so far (Keras's 0-based epoch index + 1).
        objective: The objective after that epoch (e.g. val_accuracy).
        energy_j: The run's energy so far, every attempt included, in joules.
        energy_kind: How that energy was obtained (`provenance.energy_kind`: e.g.
            "measured:nvidia-smi", "estimated:cpu-time"); "" in a record from before it
            was kept, and where it is not known.
    """

    run: int
    epoch: int
    objective: float
    energy_j: float
    energy_kind: str = ""

    def to_json(self) -> dict:
        """The record as a JSON object (NaN is written as null by the atomic writer)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping) -> "RungRecord":
        """Reads `to_json`'s output back; a missing or null figure is NaN."""
        def number(key: str) -> float:
            value = data.get(key)
            return float(value) if isinstance(value, (int, float)) else math.nan

        kind = data.get("energy_kind")
        return cls(int(data["run"]), int(data["epoch"]), number("objective"),
                   number("energy_j"), kind if isinstance(kind, str) else "")


@dataclass(frozen=True)
class Rule:
    """A halving rule (module docstring): `Rule(eta)` is the rule of issue 25.

    Attributes:
        eta: The halving rate, an integer >= 2.
        grace: The first rung as a share of the run's epochs (0: epoch 1).
        brackets: Hyperband-style brackets (1: none).
        ranking: "top+front" or "nds".
    """

    eta: int = 3
    grace: float = 0.0
    brackets: int = 1
    ranking: str = "top+front"

    def __post_init__(self) -> None:
        if not 0.0 <= self.grace < 1.0:
            raise ValueError(f"grace={self.grace!r} is not valid; allowed: 0 <= grace < 1")
        if self.brackets < 1:
            raise ValueError(f"brackets={self.brackets!r} is not valid; allowed: an integer >= 1")
        if self.ranking not in RANKINGS:
            raise ValueError(f"ranking={self.ranking!r} is not valid; allowed: "
                             f"{', '.join(RANKINGS)}")
        rungs(2, self.eta)  # checks eta

    def bracket(self, run: int) -> int:
        """The bracket of run `run`: runs take the brackets in turn."""
        return run % self.brackets

    def rungs(self, max_epochs: int, run: int = 0) -> list[int]:
        """The rungs at which run `run` of `max_epochs` is judged."""
        first = max(1, round(self.grace * max_epochs))
        return rungs(max_epochs, self.eta, first)[self.bracket(run):]

    def survivors(self, table: Sequence[RungRecord], maximize: bool = True) -> set[int]:
        """The runs of one rung table that go on under this rule."""
        if self.ranking == "nds":
            return nds_survivors(table, self.eta, maximize)
        return survivors(table, self.eta, maximize)

    def group(self, run: int, group: Sequence[int]) -> list[int]:
        """The peers of `group` that judge `run`: those of its bracket."""
        return [p for p in group if self.bracket(p) == self.bracket(run)]

    def describe(self) -> str:
        """The rule in words, for a stopped run's reason and the benchmark."""
        parts = [f"eta {self.eta}"]
        if self.grace:
            parts.append(f"first rung at {self.grace:g} of the run")
        if self.brackets > 1:
            parts.append(f"{self.brackets} brackets")
        parts.append("non-dominated sorting" if self.ranking == "nds"
                     else "top 1/eta or on the front")
        return ", ".join(parts)


def as_rule(eta: "int | Rule") -> Rule:
    """A rule from a halving rate (the rule of issue 25) or a rule."""
    return eta if isinstance(eta, Rule) else Rule(int(eta))


def default_rule(eta: int = 3) -> Rule:
    """The rule a sweep with `early_stop: halving` applies (chosen in benchmarks/RESULTS.md,
    "Halving rules on long learning curves")."""
    return Rule(eta, **DEFAULT)


def rungs(max_epochs: int, eta: int = 3, first: int = 1) -> list[int]:
    """The rungs of a run of `max_epochs`: first, first*eta, first*eta^2, ... below it.

    Args:
        max_epochs: The epochs a run trains when it is never stopped.
        eta: The halving rate, an integer >= 2.
        first: The first rung's epoch.

    Returns:
        The rung epochs, ascending (empty for a run of one epoch).
    """
    if eta < 2:
        raise ValueError(f"halving_eta={eta!r} is not valid; allowed: an integer >= 2")
    out, epoch = [], max(1, first)
    while epoch < max_epochs:
        out.append(epoch)
        epoch *= eta
    return out


def keep_count(n: int, eta: int) -> int:
    """How many of `n` runs at a rung go on by the objective: ceil(n / eta), at least 1."""
    return max(1, math.ceil(n / eta))


def survivors(table: Sequence[RungRecord], eta: int, maximize: bool = True) -> set[int]:
    """The runs of one rung table that go on.

    Args:
        table: One record per run that reached the rung.
        eta: The halving rate.
        maximize: Whether a higher objective is better.

    Returns:
        The run indices in the top ceil(n / eta) by the objective (ties: less energy so
        far first, then the lower run index), plus every run on the rung's (objective,
        energy so far) Pareto front. A run whose objective is NaN never goes on.
    """
    finite = [r for r in table if not math.isnan(r.objective)]
    sign = -1.0 if maximize else 1.0

    def rank(r: RungRecord) -> tuple:
        energy = r.energy_j if not math.isnan(r.energy_j) else math.inf
        return (sign * r.objective, energy, r.run)

    top = sorted(finite, key=rank)[:keep_count(len(table), eta)]
    front = pareto_mask([r.objective for r in finite], [r.energy_j for r in finite], maximize)
    return {r.run for r in top} | {r.run for r, on in zip(finite, front) if on}


def nds_survivors(table: Sequence[RungRecord], eta: int, maximize: bool = True) -> set[int]:
    """The runs that go on under non-dominated sorting (MO-ASHA's ranking).

    The (objective, energy so far) fronts are peeled off one after another: the first
    front always goes on, then whole fronts while they fit in ceil(n / eta), and the
    front that does not fit is filled by `survivors`' order (objective, then energy, then
    run index). A run whose objective is NaN never goes on.
    """
    rest = [r for r in table if not math.isnan(r.objective)]
    sign = -1.0 if maximize else 1.0
    budget, kept = keep_count(len(table), eta), set()
    while rest:
        on = pareto_mask([r.objective for r in rest], [r.energy_j for r in rest], maximize)
        layer = [r for r, k in zip(rest, on) if k]
        room = budget - len(kept)
        if kept and len(layer) > room:
            layer = sorted(layer, key=lambda r: (sign * r.objective, _energy(r), r.run))[:room]
        kept |= {r.run for r in layer}
        rest = [r for r, k in zip(rest, on) if not k]
        if len(kept) >= budget:
            break
    return kept


def _energy(r: RungRecord) -> float:
    return r.energy_j if not math.isnan(r.energy_j) else math.inf


def batch_of(run: int, batch_size: int) -> int:
    """The batch of run `run`: runs are proposed and halved in batches of `batch_size`."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is not valid; allowed: an integer >= 1")
    return run // batch_size


def peers(run: int, batch_size: int, runs: int, scope: str = "sweep") -> range:
    """The runs whose rung records decide `run`'s rungs (itself included).

    Args:
        run: The run's index.
        batch_size: Runs per batch.
        runs: The sweep's number of runs (the last batch may be short).
        scope: "batch" or "sweep", as the module docstring says.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope={scope!r} is not valid; allowed: {', '.join(SCOPES)}")
    end = min(runs, (batch_of(run, batch_size) + 1) * batch_size)
    start = batch_of(run, batch_size) * batch_size if scope == "batch" else 0
    return range(start, end)


def decide(run: int, records: Mapping[int, RungRecord], ended: Collection[int],
           group: Sequence[int], eta: "int | Rule", maximize: bool = True) -> str:
    """What `run` does at a rung it has reached and recorded.

    Args:
        run: The run at the rung; `records` holds its own record.
        records: The records at this rung of the runs of `group` that reached it.
        ended: Runs of `group` that ended (stopped, failed, skipped, done) without a
            record at this rung; they will never reach it.
        group: The run's peers (`peers`), itself included; a rule with brackets judges
            it against those of its bracket only.
        eta: The halving rate (the rule of issue 25) or a `Rule`.
        maximize: Whether a higher objective is better.

    Returns:
        WAIT while a peer may still reach the rung, then GO_ON or STOP.
    """
    rule = as_rule(eta)
    if run not in records:
        raise ValueError(f"run {run} has no record at this rung; write it before deciding")
    group = rule.group(run, group)
    if any(p not in records and p not in ended for p in group):
        return WAIT
    table = comparable([records[p] for p in group if p in records])
    return GO_ON if run in rule.survivors(table, maximize) else STOP


def comparable(table: Sequence[RungRecord]) -> list[RungRecord]:
    """The rung table as its energies can be compared: where they were obtained in more
    than one way (a sweep resumed on a node where RAPL became readable: estimates of
    50-70 J beside measurements of 5-10 J, every measured run "cheaper"), the rung is
    decided by the objective alone, each energy unknown (NaN). Keeping one kind's
    energies would not do: the others' unknown energies count as the highest there is,
    so that kind's runs would all be on the front. An estimate is never compared with a
    measurement. Records without a kind (written before it was kept) are compared as
    before among themselves; beside records with one, theirs is unknown, so the rung is
    decided by the objective alone too (a sweep resumed where RAPL became readable has
    exactly such older estimates)."""
    kinds = {r.energy_kind for r in table if not math.isnan(r.energy_j)}
    if len(kinds) < 2:
        return list(table)
    return [replace(r, energy_j=math.nan) for r in table]


def replay(curves: Mapping[int, Sequence[tuple[float, float]]], batch_size: int,
           eta: "int | Rule", maximize: bool = True, scope: str = "sweep",
           known: Mapping[int, int] | None = None) -> dict[int, int]:
    """Successive halving over known learning curves: the epochs each run trains.

    The rule the runs apply at their rungs, all at once, as a benchmark replays it or a
    test checks it: every run trains until a rung stops it, or to its last epoch.

    Args:
        curves: Run index -> (objective, energy so far) after each epoch trained; a run
            that ended early (failed) has a shorter curve.
        batch_size: Runs per batch.
        eta: The halving rate (the rule of issue 25) or a `Rule`.
        maximize: Whether a higher objective is better.
        scope: "batch" or "sweep".
        known: Epochs already decided for earlier runs (a replay batch by batch): with
            scope "sweep" a later batch never changes them, so they are not decided again.

    Returns:
        Run index -> the epochs it trains.
    """
    rule, known = as_rule(eta), dict(known or {})
    order = sorted(curves)
    runs = (order[-1] + 1) if order else 0
    max_epochs = max((len(c) for c in curves.values()), default=0)
    trained = {run: known.get(run, len(curves[run])) for run in order}
    plan = {run: rule.rungs(max_epochs, run) for run in order}
    cache: dict = {}  # the peers of a batch share one rung table: rank it once
    for rung in sorted({r for rs in plan.values() for r in rs}):
        records = {run: RungRecord(run, rung, *curves[run][rung - 1]) for run in order
                   if trained[run] >= rung and rung in plan[run]}
        ended = {run for run in order if run not in records}
        for run in (r for r in records if r not in known):
            group = tuple(p for p in rule.group(run, peers(run, batch_size, runs, scope))
                          if p in curves)
            if any(p not in records and p not in ended for p in group):
                continue  # cannot happen in a replay: every run's curve is known
            if (rung, group) not in cache:
                cache[rung, group] = rule.survivors([records[p] for p in group
                                                     if p in records], maximize)
            if run not in cache[rung, group]:
                trained[run] = rung
    return trained
