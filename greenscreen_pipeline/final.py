"""The final run: the recommended configuration, trained for `final_epochs`, measured alike."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from . import runfolder
from .errors import UsageError
from .log import logger
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
    cmd = [sys.executable, "-m", "greenscreen_pipeline.run", "--config", config.path, "--sweep-dir",
           str(folder), "--index", str(int(rec.get("run") or 0)), "--epochs",
           str(config.settings["final_epochs"]), "--configuration", json.dumps(configuration)]
    log.info("final run of %s for %d epochs into %s/", what, config.settings["final_epochs"],
             folder)
    folder.mkdir(parents=True, exist_ok=True)
    started = final.log_attempt_start()
    # The backend's chatter stays out of the way, in worker.log.
    with open(folder / "worker.log", "a") as worker_log:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=worker_log,
                              stderr=worker_log, check=False)
    final.log_attempt_end(started, proc.returncode)
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
