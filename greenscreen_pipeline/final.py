"""The final run: the recommended configuration, trained for `final_epochs`, measured alike
and trained alike: through `executors.attempt.train_attempt`, in a warm worker."""

from __future__ import annotations

from pathlib import Path

from . import runfolder
from .errors import UsageError
from .executors.attempt import train_attempt
from .executors.stop import never
from .executors.workers import WorkerSlot
from .log import logger
from .run.execute import Request
from .space import SweepConfig

log = logger(__name__)


def final_run(config: SweepConfig, sweep_dir: Path) -> dict:
    analysis = runfolder.read_json(sweep_dir / "analysis.json")
    if not analysis or not analysis.get("recommendation"):
        raise UsageError(f"no recommendation in {sweep_dir}/analysis.json; run greenscreen "
                         "analyze first (it needs a finished run)")
    rec = analysis["recommendation"]
    folder = sweep_dir / "final"
    final = runfolder.RunFolder(folder)
    if final.state() == "done":  # like a sweep's runs, a finished final run is kept
        log.info("the final run in %s/ is done already (delete that folder to train it again)",
                 folder)
        return _outcome(final)
    configuration, what = recommended_configuration(config, sweep_dir, rec)
    epochs = config.settings["final_epochs"]
    log.info("final run of %s for %d epochs into %s/", what, epochs, folder)
    request = Request(config.path, str(folder), int(rec.get("run") or 0), epochs,
                      configuration)
    # Trained the way the sweep's runs are (a warm worker unless settings.isolate_runs);
    # the backend's chatter ends in attempts.jsonl's stderr tail, not on the console.
    slot = WorkerSlot(None, config.settings["worker_memory_growth_mb"])
    try:
        train_attempt(config, final, request, {**config.run(0), **configuration}, None,
                      never(), slot)
    finally:
        slot.close()
    return _outcome(final)


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
