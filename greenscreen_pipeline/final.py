"""The final runs: the recommended configuration and the baseline (run 000's), each
trained `settings.final_seeds` times for `final_epochs`, interleaved (rec s0, base s0,
rec s1, ...), measured alike and trained alike: through `executors.attempt.train_attempt`,
one after another in a warm worker. Then `final/comparison.json` (comparison.py).

A recommendation judged on the sweep's `epochs` may not survive `final_epochs`. When its
first final run diverges (a NaN or infinite loss: `recipe.Diverged`), it is passed over
before anything else trains, and the run the same rule picks once it is set aside
(analysis.json's `next`; rule "run" only) takes its place, up to `FALLBACKS` of them: its
runs go to `final/fallback-<run>-s<k>/`, and comparison.json names the passed-over
configuration, its folder and why (`passed_over`), and the run compared (`final_run`).
The diverged run's folder and energy stay, and a rerun does not train it again. Every
candidate trains with the recommendation's seeds, so the baseline's runs pair with
whichever is compared."""

from __future__ import annotations

import os
from pathlib import Path

from greenscreen.fileio import atomic_write_json

from . import analysis_file, comparison, datapath, runfolder
from .analysis import objective_of
from .errors import Interrupted, UsageError
from .executors.attempt import train_attempt
from .executors.stop import Stop
from .executors.workers import WorkerSlot
from .log import logger
from .recommend import FALLBACKS
from .run import caches
from .run.execute import DIVERGED, Request
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
        How the compared configuration's first final run ended (`final/`, or a fallback's
        folder: `folder`), with its test metrics and objective value, and `comparison`:
        the comparison.json document.

    Raises:
        UsageError: analysis.json has no recommendation.
    """
    analysis = runfolder.read_json(sweep_dir / "analysis.json")
    if not analysis:
        raise UsageError(f"no {sweep_dir}/analysis.json: run greenscreen analyze first")
    analysis_file.check(analysis, sweep_dir, sweep_dir)
    if not analysis.get("recommendation"):
        raise UsageError(no_recommendation(sweep_dir, analysis))
    rec = analysis["recommendation"]
    folder = sweep_dir / "final"
    start = int(rec.get("run") or 0)  # seed k trains with settings.seed + start + k
    tried = candidates(config, sweep_dir, rec)
    own = slot is None
    if own:
        slot = WorkerSlot(_environment(folder), config.settings["worker_memory_growth_mb"])
    try:
        planned, same, passed_over, run = _train_candidates(
            config, sweep_dir, folder, tried, start, slot)
    finally:
        if own:
            slot.close()
    objective, seed = objective_of(analysis), config.settings["seed"]
    doc = comparison.compare(
        comparison.read_runs(sweep_dir, planned, objective),
        [seed + start + k for k in range(config.settings["final_seeds"])], objective,
        _nothing_to_compare(passed_over) if same else None)
    first = planned[0][2]
    doc.update(final_run=run, final_folder=first.relative_to(sweep_dir).as_posix(),
               final_is_baseline=same, recommendation=comparison.recommendation_key(rec))
    if passed_over:
        doc["passed_over"] = passed_over
        why = _diverged(first)  # the last candidate is compared whatever happened to it
        if why:
            doc["final_diverged"] = why
    atomic_write_json(folder / comparison.FILE, doc)
    return {**_outcome(runfolder.RunFolder(first)), "comparison": doc, "folder": str(first)}


def _train_candidates(config: SweepConfig, sweep_dir: Path, folder: Path,
                      tried: list[tuple], start: int, slot: WorkerSlot) -> tuple:
    """Trains the final runs of the first candidate whose first final run does not
    diverge (the last candidate's whatever happens); returns its plan, whether it is the
    baseline's configuration, the candidates passed over and its run."""
    baseline, seeds = config.run(0), config.settings["final_seeds"]
    passed_over: list[dict] = []
    for n, (run, configuration, what) in enumerate(tried):
        same = run == BASELINE or configuration == baseline
        planned = comparison.plan(folder, seeds, baseline=not same,
                                  fallback=run if n else None)
        cfgs = {"recommended": configuration, "baseline": baseline}
        # A fallback that is the baseline's configuration trains the baseline's own runs.
        label = "the baseline (the fallback)" if same and n else None
        todo = [(path, start + k, cfgs[side], f"{label or side} seed {k}")
                for side, k, path in planned
                if _to_train(path, config.settings["retry_failed"], planned[0][2])]
        head = planned[0][2]  # the candidate's first final run: trained before the rest
        for side, k, path in planned:
            _check_trained_as(path, {**cfgs[side], **_training(config, start + k)},
                              what if side == "recommended" else "the baseline's (run 000's)",
                              folder)
        if not _passed_over(head, n, len(tried), same):  # the splits still to train: first
            datapath.check_final_splits(config, {_whose(cfg is baseline, n, run, what): cfg
                                                 for _, _, cfg, _ in todo})
        first = todo[:1] if todo and todo[0][0] == head and not _diverged(head) else []
        rest = [item for item in todo if item[0] != head]
        if first:
            _log_start(config, folder, what, same, n)
            _train(config, folder, first, slot, of=len(first) + len(rest))
        why = _passed_over(head, n, len(tried), same)
        if why:
            passed_over.append({"run": run, "configuration": what, "reason": why,
                                "folder": head.relative_to(sweep_dir).as_posix()})
            log.warning("%s diverged in its first final run (%s): passed over; the run the "
                        "same rule picks without it takes its place", what, why)
            continue
        if not todo:
            log.info("the final runs in %s/ are done already, or kept as failed (delete a "
                     "folder to train it again)", folder)
        elif rest and not first:
            _log_start(config, folder, what, same, n)
        _train(config, folder, rest, slot, of=len(first) + len(rest), number=len(first) + 1)
        return planned, same, passed_over, run
    raise AssertionError("no candidate: recommended_configuration gives one at least")


def _to_train(path: Path, retry_failed: bool, head: Path) -> bool:
    """Whether final run `path` trains now: not done, and not failed unless
    `--retry-failed` asks (as in the sweep: a failed run is kept, and said so, not
    trained again by every `final`); a diverged one never trains again. `head`: the
    candidate's first final run, whose divergence is said where it is passed over."""
    outcome = runfolder.RunFolder(path).outcome()
    if outcome["status"] == "done":
        return False
    diverged = _diverged(path)
    if outcome["status"] != "failed" or (retry_failed and not diverged):
        return True
    why = outcome.get("reason") or "no reason recorded"
    if diverged and path != head:  # it would diverge again: its seed is left out
        log.warning("final run %s/ diverged before (%s): kept, not trained again", path.name,
                    why)
    elif not diverged:
        log.warning("final run %s/ failed before (%s): kept, not trained again; `greenscreen "
                    "final --retry-failed` trains it again", path.name, why)
    return False


def _passed_over(head: Path, n: int, candidates: int, same: bool) -> str | None:
    """Why candidate `n` of `candidates` is passed over: its first final run, `head`,
    diverged and a later candidate can stand in (never for the baseline's configuration,
    which is compared whatever happened); None: it is trained and compared."""
    return _diverged(head) if n + 1 < candidates and not same else None


def _whose(is_baseline: bool, n: int, run: str | None, what: str) -> str:
    """Whose final runs a configuration's are, in words (the split check's error)."""
    if is_baseline:
        return "the baseline (run 000's configuration)"
    return f"the recommendation ({what})" if n == 0 else f"run {run} (a fallback)"


def _nothing_to_compare(passed_over: list[dict]) -> str:
    """Why a comparison has no baseline side: the compared configuration is run 000's."""
    if not passed_over:
        return (f"the recommendation is the baseline's configuration (run {BASELINE}): "
                "nothing to compare")
    gone = ", ".join(f"run {g['run']}" for g in passed_over)
    return (f"with {gone} passed over (diverged), the rule's pick is the baseline's "
            f"configuration (run {BASELINE}): keep it; nothing to compare")


def _log_start(config: SweepConfig, folder: Path, what: str, same: bool, n: int) -> None:
    log.info("final runs of %s%s%s for %d epochs, %d seed(s), into %s/", what,
             " (a fallback)" if n else "",
             "" if same else " and of the baseline (run 000's)",
             config.settings["final_epochs"], config.settings["final_seeds"], folder)


def _diverged(path: Path) -> str | None:
    """Why run `path` diverged, or None if it did not: its last attempt ended with the
    run's own exit code for a NaN or infinite loss (`execute.DIVERGED`)."""
    folder = runfolder.RunFolder(path)
    try:
        outcome, attempts = folder.outcome(), folder.attempts()
    except runfolder.Unreadable:
        return None
    if outcome.get("status") != "failed" or not attempts \
            or attempts[-1].get("how") != f"exit {DIVERGED}":
        return None
    return str(outcome.get("reason") or "").removeprefix("Diverged:").strip() or "diverged"


def candidates(config: SweepConfig, sweep_dir: Path, rec: dict) -> list[tuple]:
    """(run, configuration, words) for the recommendation, then, with rule "run", up to
    `FALLBACKS` runs the same rule picks once the ones before are set aside (analysis.json's
    `next`, `recommend.runners_up`), each tried only if the one before it diverged. A
    runner-up whose parameters.yaml cannot be read is left out with a warning, and one
    with a configuration already among the candidates is left out: it would diverge
    again."""
    configuration, what = recommended_configuration(config, sweep_dir, rec)
    out = [(rec.get("run"), configuration, what)]
    if rec.get("rule", "run") != "run":
        return out
    for run in (rec.get("next") or [])[:FALLBACKS]:
        try:
            candidate = recommended_configuration(config, sweep_dir, {"run": run})
        except (KeyError, runfolder.Unreadable) as exc:
            log.warning("run %s cannot stand in for the recommendation: its parameters.yaml "
                        "lacks or cannot give its configuration (%s)", run, exc)
            continue
        if all(candidate[0] != c[1] for c in out):
            out.append((run, *candidate))
    return out


def _training(config: SweepConfig, index: int) -> dict:
    """How a final run is trained besides its configuration, as its parameters.yaml
    records it: its run index (its training seed is settings.seed + index), the seed and
    `final_epochs`. A final run kept from a `final` with other values was compared with
    new ones (1-epoch seeds beside a 5-epoch one, "saves 50 %")."""
    return {"run": index, "seed": config.settings["seed"],
            "epochs": config.settings["final_epochs"]}


def _check_trained_as(path: Path, configuration: dict, what: str, final_dir: Path) -> None:
    """Raises UsageError where final run folder `path` holds a run of another configuration
    than the one it is planned for (or trained otherwise: `_training`): an earlier
    recommendation's (the sweep grew, or the analysis changed), or the baseline's before
    config.yaml changed. Such a run is neither this configuration's nor to be trained
    over: its energy is spent."""
    try:
        given = runfolder.RunFolder(path).parameters()
    except runfolder.Unreadable:
        return  # trained again from its records, as any unreadable run
    differ = [k for k, v in configuration.items() if k in given and not _same(given[k], v)]
    if given and differ:
        shown = ", ".join(f"{k} {given[k]!r} (now {configuration[k]!r})" for k in differ[:4])
        raise UsageError(
            f"{path}/ holds a final run of another configuration than {what}: {shown}. "
            f"Move the final runs aside (mv {final_dir} {final_dir}-earlier) to train them "
            "for the configurations of now; their energy stays recorded there")


def _same(recorded, planned) -> bool:
    """Whether a value in parameters.yaml is the one planned: "n/a" (a dimension your
    own data decided, execute.run_configuration) matches any; numbers by value."""
    if recorded == "n/a":
        return True
    numbers = (int, float)
    if isinstance(recorded, numbers) and isinstance(planned, numbers) \
            and not isinstance(recorded, bool) and not isinstance(planned, bool):
        return float(recorded) == float(planned)
    return str(recorded) == str(planned)


def no_recommendation(sweep_dir: Path, analysis: dict) -> str:
    """Why analysis.json recommends nothing: no run finished, and the first failure's
    reason (the same words the sweep's console gave), with what to do."""
    failed = analysis.get("failed_or_skipped") or []
    first = next((f for f in failed if isinstance(f.get("reason"), str)), None)
    why = f"; run {int(first['run']):03d} {first['status']}: {first['reason']}" if first else ""
    states = {f.get("status") for f in failed}
    todo = []  # per state: interrupted runs resume, failed ones train again on request
    if states & {"interrupted", "running", "pending", "parked"}:
        todo.append("run the same sweep command again to resume the interrupted runs")
    if "failed" in states or not todo:
        todo.append("fix the cause, then train the failed runs again (greenscreen sweep "
                    "--retry-failed)")
    return (f"no recommendation in {sweep_dir}/analysis.json: {analysis.get('done', 0)} of "
            f"{analysis.get('runs', '?')} runs finished{why}. "
            f"{'; '.join(todo)[0].upper()}{'; '.join(todo)[1:]}, and analyze")


def _train(config: SweepConfig, final_dir: Path, runs: list[tuple[Path, int, dict, str]],
           slot: WorkerSlot, of: int, number: int = 1) -> None:
    """Trains each (folder, index, configuration, label) in turn in `slot`'s warm worker
    (a process of its own with settings.isolate_runs), numbered from `number` of `of` on
    the console. Every final run, the seed folders inside final/ too, uses the sweep's
    compilation caches (`_environment`)."""
    env = _environment(final_dir)
    epochs = config.settings["final_epochs"]
    stop = Stop().install()  # SIGTERM (Slurm's time limit) ended final with no word before
    try:
        for i, (path, index, configuration, label) in enumerate(runs, number):
            if stop.requested:
                break
            log.info("final run %d/%d: %s into %s/", i, of, label, path)
            request = Request(config.path, str(path), index, epochs, configuration)
            # The backend's chatter ends in attempts.jsonl's stderr tail, not the console.
            train_attempt(config, runfolder.RunFolder(path), request,
                          {**config.run(0), **configuration}, env, stop, slot)
    finally:
        stop.uninstall()
    if stop.requested:
        raise Interrupted("stopped; run the same command again to finish the final runs "
                          "(an interrupted one resumes from its last finished epoch)")


def _environment(final_dir: Path) -> dict:
    """The final runs' environment: this process's, with the sweep's compilation caches."""
    return {**os.environ, **caches.environment(caches.folder_of(str(final_dir), True))}


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
