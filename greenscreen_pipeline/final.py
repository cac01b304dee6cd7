"""The final runs: the recommended configuration and the baseline (run 000's), each
trained `settings.final_seeds` times for `final_epochs`, interleaved (rec s0, base s0,
rec s1, ...), measured alike and trained alike: through `executors.attempt.train_attempt`,
one after another in a warm worker. Then `final/comparison.json` (comparison.py)."""

from __future__ import annotations

import os
from pathlib import Path

from greenscreen.fileio import atomic_write_json

from . import comparison, runfolder
from .analysis import objective_of
from .errors import UsageError
from .executors.attempt import train_attempt
from .executors.stop import never
from .executors.workers import WorkerSlot
from .log import logger
from .run import caches
from .run.execute import Request
from .space import SweepConfig

log = logger(__name__)
BASELINE = "000"


def final_run(config: SweepConfig, sweep_dir: Path, slot: WorkerSlot | None = None) -> dict:
    """Trains what is not done yet of the final runs and writes final/comparison.json.

    Args:
        slot: A warm worker to train them in, which the caller keeps and closes (`greenscreen
            all`: the sweep's first worker, so the backend is not imported again); None:
            one of its own.

    Returns:
        How the recommendation's first final run (`final/`) ended, with its test metrics
        and objective value, and `comparison`: the comparison.json document.

    Raises:
        UsageError: analysis.json has no recommendation.
    """
    analysis = runfolder.read_json(sweep_dir / "analysis.json")
    if not analysis:
        raise UsageError(f"no {sweep_dir}/analysis.json: run greenscreen analyze first")
    if not analysis.get("recommendation"):
        raise UsageError(no_recommendation(sweep_dir, analysis))
    rec = analysis["recommendation"]
    folder = sweep_dir / "final"
    configuration, what = recommended_configuration(config, sweep_dir, rec)
    baseline = config.run(0)  # the baseline: run 000's configuration
    same = rec.get("run") == BASELINE or configuration == baseline
    planned = comparison.plan(folder, config.settings["final_seeds"], baseline=not same)
    start = int(rec.get("run") or 0)  # seed k trains with settings.seed + start + k
    todo = [(side, k, path) for side, k, path in planned
            if runfolder.RunFolder(path).state() != "done"]  # a finished one is kept
    if not todo:
        log.info("the final runs in %s/ are done already (delete a folder to train it "
                 "again)", folder)
    else:
        log.info("final runs of %s%s for %d epochs, %d seed(s), into %s/", what,
                 "" if same else " and of the baseline (run 000's)",
                 config.settings["final_epochs"], config.settings["final_seeds"], folder)
        cfgs = {"recommended": configuration, "baseline": baseline}
        _train(config, folder, [(path, start + k, cfgs[side], f"{side} seed {k}")
                                for side, k, path in todo], slot)
    objective, seed = objective_of(analysis), config.settings["seed"]
    doc = comparison.compare(
        comparison.read_runs(sweep_dir, planned, objective),
        [seed + start + k for k in range(config.settings["final_seeds"])], objective, seed,
        f"the recommendation is the baseline's configuration (run {BASELINE}): nothing to "
        "compare" if same else None)
    atomic_write_json(folder / comparison.FILE, doc)
    return {**_outcome(runfolder.RunFolder(folder)), "comparison": doc}


def no_recommendation(sweep_dir: Path, analysis: dict) -> str:
    """Why analysis.json recommends nothing: no run finished, and the first failure's
    reason (the same words the sweep's console gave), with what to do."""
    failed = analysis.get("failed_or_skipped") or []
    first = next((f for f in failed if isinstance(f.get("reason"), str)), None)
    why = f"; run {int(first['run']):03d} {first['status']}: {first['reason']}" if first else ""
    return (f"no recommendation in {sweep_dir}/analysis.json: {analysis.get('done', 0)} of "
            f"{analysis.get('runs', '?')} runs finished{why}. Fix the cause, then train the "
            "failed runs again (greenscreen sweep --retry-failed) and analyze")


def _train(config: SweepConfig, final_dir: Path, runs: list[tuple[Path, int, dict, str]],
           given: WorkerSlot | None = None) -> None:
    """Trains each (folder, index, configuration, label) in turn, in one warm worker (a
    process of its own with settings.isolate_runs). Every final run, the seed folders
    inside final/ too, uses the sweep's compilation caches."""
    env = {**os.environ, **caches.environment(caches.folder_of(str(final_dir), True))}
    slot = given or WorkerSlot(env, config.settings["worker_memory_growth_mb"])
    epochs = config.settings["final_epochs"]
    try:
        for i, (path, index, configuration, label) in enumerate(runs, 1):
            log.info("final run %d/%d: %s into %s/", i, len(runs), label, path)
            request = Request(config.path, str(path), index, epochs, configuration)
            # The backend's chatter ends in attempts.jsonl's stderr tail, not on the console.
            train_attempt(config, runfolder.RunFolder(path), request,
                          {**config.run(0), **configuration}, env, never(), slot)
    finally:
        if given is None:
            slot.close()


def _outcome(final: runfolder.RunFolder) -> dict:
    """How the final run ended, its test metrics and its value of the sweep's objective
    (results.json's {"name", "mode", "value", "split"}; absent in older folders)."""
    results = final.results()
    if not results:
        return final.outcome()
    return {**final.outcome(), **results.metrics,
            **({"objective": results.objective} if results.objective else {})}


def recommended_configuration(config: SweepConfig, sweep_dir: Path, rec: dict) -> tuple:
    """The configuration the recommendation names, and how to say which it is.

    Rule "run": that run's configuration. Rule "values": the best value of each varying
    parameter over the configuration of the run with the best objective value (the values
    no run varied are the same in every run).
    """
    rule = rec.get("rule", "run")  # analyses written before settings.recommend existed
    run = rec["run"] if rule == "run" else rec["based_on"]
    given = runfolder.RunFolder(sweep_dir / run).parameters()
    configuration = {k: given[k] for k in config.space}
    if rule == "run":
        return configuration, f"run {run}'s configuration"
    return {**configuration, **rec["parameters"]}, "each parameter's best value"
