"""The next batch of configurations: seeded random at first, then Optuna's proposals.

Optuna only proposes. Each call rebuilds an in-memory study (no storage, no database)
from the recorded results, tells them in run order, and asks a batch of configurations
with a multi-objective sampler seeded from (seed, batch number): maximise the objective
(or minimise it, e.g. val_loss), minimise energy. The run folders stay the record of
truth; the study is thrown away. So the same seed and the same recorded results give
the same batch, in any process, after any crash.

Runs before `n_startup` take space.py's seeded random configuration of (seed, i), and
run 0 its baseline, so a pareto sweep begins exactly as a random one does.

How results are told:
    done     COMPLETE with (objective, energy);
    stopped  PRUNED, with no values (`stopped_as="pruned"`, the default). Its objective
             is of an earlier epoch and its energy of part of a run: told as COMPLETE,
             it would look like the cheapest configuration of the sweep and draw the
             sampler to the very configurations halving has just discarded. PRUNED says
             what halving found (worse than its peers at a rung): TPE counts it among
             the bad group, NSGA-II and the GP sampler leave it out, and its
             configuration is not proposed again. No intermediate values are told:
             TPE ranks a pruned trial's by `study.direction`, which raises with two
             objectives. `stopped_as="partial"` tells it as COMPLETE with its last
             objective and energy so far instead; in the benchmark (RESULTS.md) pruned
             reached random search's final hypervolume in 5/5 seeds at 0.33 of its
             energy, partial in 4/5 at 0.36;
    failed, skipped, or a done run without a finite objective and energy: FAIL
             (no sampler learns from it; its configuration is not proposed again).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

from .. import ranges
from ..errors import MissingDependency
from . import encoding
from .encoding import Dimension

SAMPLERS = ("tpe", "nsga2", "gp")
STATES = ("done", "stopped", "failed", "skipped")
STOPPED_AS = ("pruned", "partial")
# Asks per slot before a repeat of a recorded configuration gives way to an unseen one.
RETRIES = 8


@dataclass(frozen=True)
class Result:
    """A recorded run, as the proposal reads it.

    Attributes:
        run: The run's index.
        config: Its configuration, as recorded in its folder.
        state: done, stopped, failed or skipped.
        objective: Its objective (last epoch for a stopped run); NaN if unknown.
        energy_j: Its energy over every attempt, in joules; NaN if unknown.
        energy_source: That energy's provenance (summary.json's `source`); None if
            unknown. Repeats of one configuration are averaged over one kind of it.
    """

    run: int
    config: Mapping[str, Any]
    state: str
    objective: float = math.nan
    energy_j: float = math.nan
    energy_source: str | None = None


def default_startup(runs: int, batch_size: int) -> int:
    """Random runs before the sampler proposes: a third of the runs, at most 10 (Optuna's
    own startup), at least one batch."""
    return max(batch_size, min(10, math.ceil(runs / 3)))


def sampler_seed(seed: int, batch: int) -> int:
    """The sampler's seed of batch `batch`: a 32-bit hash of (seed, batch)."""
    digest = hashlib.sha256(f"{seed}:propose:{batch}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def make_sampler(name: str, seed: int, batch_size: int):
    """One of Optuna's multi-objective samplers, seeded.

    The sweep's random start is already in the results it is told, so a sampler does not
    add a random start of its own: it samples at random only while it has no result to
    learn from. (With Optuna's defaults, the GP sampler counts only complete trials, so a
    halved sweep, whose stopped runs are pruned, would have stayed random for most of its
    budget; the benchmark caught it.)

    Args:
        name: "tpe" (multivariate, with the constant liar for a batch), "nsga2" (a
            population of one batch), or "gp" (needs torch).
        seed: The sampler's seed (`sampler_seed`).
        batch_size: Runs per batch.
    """
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(multivariate=True, constant_liar=True, seed=seed,
                                          n_startup_trials=1)
    if name == "nsga2":
        # Optuna's default population (50) would keep a sweep of a few dozen runs in its
        # random first generation; a generation of one batch evolves within the budget.
        return optuna.samplers.NSGAIISampler(population_size=max(2, batch_size), seed=seed)
    if name == "gp":
        try:
            import torch  # noqa: F401  (the GP sampler's dependency)
        except ImportError:
            raise MissingDependency("sampler gp needs torch (pip install torch, the CPU "
                                    "build is enough); or choose tpe or nsga2") from None
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=1)
    raise ValueError(f"sampler={name!r} is not valid; allowed: {', '.join(SAMPLERS)}")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Optuna logs every study created and trial told at INFO; the sweep has its own
    output line per run, so only Optuna's warnings get through."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _told(result: Result, stopped_as: str) -> tuple[str, list[float] | None]:
    """How a result is told: (Optuna's state name, values or None)."""
    if result.state not in STATES:
        raise ValueError(f"run {result.run}: state={result.state!r} is not valid for a told "
                         f"result; allowed: {', '.join(STATES)} (propose a batch only once "
                         "every earlier run has ended)")
    values = [float(result.objective), float(result.energy_j)]
    finite = all(math.isfinite(v) for v in values)
    if result.state == "done" or (result.state == "stopped" and stopped_as == "partial"):
        return ("COMPLETE", values) if finite else ("FAIL", None)
    return ("PRUNED", None) if result.state == "stopped" else ("FAIL", None)


def build_study(results: Sequence[Result], dims: Sequence[Dimension], sampler,
                maximize: bool = True, stopped_as: str = "pruned"):
    """An in-memory study holding `results`, told in run order.

    NSGA-II is replayed (enqueue, ask, tell) so that it sorts the results into its
    generations as if it had proposed them; the other samplers keep no per-trial state
    and get the results with `add_trial`, which costs nothing per result.

    Args:
        results: The recorded runs; a run whose configuration is outside the space (the
            space was edited since) is left out.
        dims: The varying dimensions (`encoding.dimensions`).
        sampler: An Optuna sampler (`make_sampler`).
        maximize: Whether a higher objective is better.
        stopped_as: "pruned" or "partial", as the module docstring says.
    """
    import optuna
    from optuna.trial import TrialState, create_trial

    if stopped_as not in STOPPED_AS:
        raise ValueError(f"stopped_as={stopped_as!r} is not valid; allowed: "
                         f"{', '.join(STOPPED_AS)}")
    directions = ["maximize" if maximize else "minimize", "minimize"]
    dists = encoding.distributions(dims)
    replay = isinstance(sampler, optuna.samplers.NSGAIISampler)
    with _quiet():
        study = optuna.create_study(directions=directions, sampler=sampler)
        for result in sorted(results, key=lambda r: r.run):
            params = encoding.to_params(result.config, dims)
            if params is None:
                continue
            state, values = _told(result, stopped_as)
            if replay:
                study.enqueue_trial(params)
                trial = study.ask(dists)
                # An enqueued trial's fixed values never reach the sampler, which sets a
                # trial's generation as it samples: set it here, or every recorded run
                # stays outside the generations and NSGA-II samples at random for ever.
                sampler.get_trial_generation(study, study.get_trials(deepcopy=False)[-1])
                study.tell(trial, values, state=TrialState[state])
            else:
                study.add_trial(create_trial(state=TrialState[state], values=values,
                                             params=params, distributions=dists))
    return study


def _unseen(dims: Sequence[Dimension], taken: set, seed: int, batch: int,
            slot: int) -> tuple | None:
    """A seeded random configuration key not in `taken`; None if every one is taken.

    A finite space is walked in a seeded permutation (ranges.permute, never listed): at
    most len(taken) + 1 steps find a free key. An endless one (a float range) is drawn:
    a draw repeats a taken key with probability zero, but a few tries cost nothing."""
    total = encoding.size(dims)
    name = f"{seed}:unseen:{batch}:{slot}"
    if total is not None:
        for k in range(min(total, len(taken) + 1)):
            candidate = encoding.key_at(ranges.permute(k, total, name), dims)
            if candidate not in taken:
                return candidate
        return None
    for attempt in range(1000):
        candidate = tuple(
            int(ranges.unit(seed, attempt, f"{name}:{d.name}") * len(d.values))
            if d.range is None else d.range.draw(ranges.unit(seed, attempt, f"{name}:{d.name}"))
            for d in dims)
        if candidate not in taken:
            return candidate
    return None


def ask_batch(study, dims: Sequence[Dimension], space: Mapping[str, Any], n: int,
              taken: set, *, seed: int = 0, batch: int = 0) -> list[dict]:
    """Asks `n` configurations, none repeating a key in `taken` where avoidable.

    A proposal that repeats one is left RUNNING in the study (the constant liar of TPE
    and the GP sampler's pending points then steer the next ask away from it) and asked
    again, up to RETRIES times; then a seeded random unseen configuration takes the slot.
    Only a space with no unseen configuration left gets a repeat. `taken` is updated.
    """
    dists = encoding.distributions(dims)
    out = []
    with _quiet():
        for slot in range(n):
            config = None
            for _ in range(RETRIES):
                trial = study.ask(dists)
                candidate = encoding.from_params(trial.params, dims, space)
                if encoding.key(candidate, dims) not in taken:
                    config = candidate
                    break
            if config is None:
                k = _unseen(dims, taken, seed, batch, slot)
                config = candidate if k is None else encoding.from_key(k, dims, space)
            taken.add(encoding.key(config, dims))
            out.append(config)
    return out


def propose(space: Mapping[str, Any], results: Sequence[Result], runs: Sequence[int], *,
            seed: int, batch: int, random_run: Callable[[int], dict], n_startup: int,
            sampler: str = "tpe", maximize: bool = True, stopped_as: str = "pruned",
            batch_size: int | None = None) -> dict[int, dict]:
    """The configurations of the runs of one batch.

    Args:
        space: Dimension -> its values or its range (`SweepConfig.space`, your own
            dimensions included).
        results: Every run before this batch, ended (done, stopped, failed or skipped).
        runs: The run indices of this batch.
        seed: The sweep's seed.
        batch: The batch number (`halving.batch_of`).
        random_run: The seeded random configuration of run i (`SweepConfig.run`).
        n_startup: Runs below this index take `random_run(i)`.
        sampler: "tpe", "nsga2" or "gp".
        maximize: Whether a higher objective is better.
        stopped_as: "pruned" or "partial", as the module docstring says.
        batch_size: Runs per batch (default: len(runs)); NSGA-II's population is one
            batch.

    Returns:
        Run index -> configuration, for every index of `runs`.
    """
    out = {i: random_run(i) for i in runs if i < n_startup}
    todo = [i for i in runs if i >= n_startup]
    if not todo:
        return out
    dims = encoding.dimensions(space)
    if not dims:  # nothing varies: every run is the baseline
        return {**out, **{i: random_run(0) for i in todo}}
    chosen = make_sampler(sampler, sampler_seed(seed, batch), batch_size or len(runs))
    study = build_study(results, dims, chosen, maximize, stopped_as)
    taken = {encoding.key(r.config, dims) for r in results}
    taken |= {encoding.key(c, dims) for c in out.values()}
    asked = ask_batch(study, dims, space, len(todo), taken, seed=seed, batch=batch)
    return {**out, **dict(zip(todo, asked))}
