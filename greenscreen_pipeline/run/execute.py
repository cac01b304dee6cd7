"""Training one run in this process and recording how it ended, in status.json.

Both ways of training a run come here: the warm worker (`worker.py`, runs one after
another in one process) and the fresh run process (`__main__.py`, `settings.isolate_runs`
or a run that needs a process of its own). The run folder's lock (`ownership.Held`) is
held for the whole of it, so no two processes ever train one run at once.

How a run ended is status.json's state (running, then done, stopped by halving at a
rung, parked at a rung its peers have not decided, failed, skipped or interrupted by
SIGINT, SIGTERM or a full disk, with the reason) and the exit code this returns.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sys
import traceback
from dataclasses import asdict, dataclass, field

from ..runfolder import BUSY_EXIT
from . import output, ownership, rules

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Keras prints the error of a layer's call in bold
_NOT_WHY = ("[[", "[Op:", "Hint:", "See http")  # lines of a message that say no cause

# Exit codes of a run, the same from a worker's reply and a run process's exit status.
DONE = 0  # also skipped and stopped: final states that are not a fault
FAILED = 1
DIVERGED = 2  # failed with a NaN or infinite loss, found by our own check: the process is sound
PARKED = 3  # waiting at a halving rung, its worker given back: resumes when the rung is decided
BUSY = BUSY_EXIT  # another process holds the run's lock: nothing was trained
NO_SPACE = 75  # a full disk: interrupted, resumes when there is room
INTERRUPTED = 130


@dataclass(frozen=True)
class Request:
    """Which run to train and how long; what an executor sends a worker.

    Attributes:
        config: The config file's path.
        sweep_dir: The sweep folder (the final run: its own folder).
        index: The run's index (the final run: the recommended run's).
        epochs: How many epochs; None for settings.epochs.
        configuration: The final run's configuration, trained into `sweep_dir` itself;
            None for a sweep run (its folder's configuration.json, else space.run(index)).
        environment: Variables set for this run only (the Ray task that asked for it).
        release: At a halving rung its peers have not decided, give the worker back
            (status parked) instead of waiting in it (the local executor).
        runs: The sweep's number of runs as its executor has it (`--runs` overrides
            settings.runs): a run's halving peers and the budget's runs to come depend on
            it; None for settings.runs.
    """

    config: str
    sweep_dir: str
    index: int
    epochs: int | None = None
    configuration: dict | None = field(default=None)
    environment: dict = field(default_factory=dict)
    release: bool = False
    runs: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def needs_own_process(cfg: dict, backend: str | None) -> str | None:
    """Why run `cfg` cannot train in a warm worker (a setting fixed when its process
    starts), or None. JAX's 64-bit mode is read when JAX is imported. A run the
    pipeline's rules skip anyway (`rules.combination_reason`) is skipped in the worker."""
    if rules.combination_reason(cfg):
        return None
    if cfg.get("precision") == "float64" and backend == "jax":
        return "precision float64 on JAX needs JAX's 64-bit mode, set before JAX is imported"
    return None


def train_one(request: Request, process_start: float) -> int:
    """Trains `request`'s run into its folder under the run's lock; returns its exit code.

    Args:
        request: The run.
        process_start: When the work for this run began in this process (the process's
            start for a fresh process; the request's arrival in a warm worker).
    """
    from .. import space
    from ..runfolder import RunFolder

    config = space.load(request.config, {"sweep_dir": request.sweep_dir, "runs": request.runs})
    if request.configuration is not None:  # the final run: its folder is sweep_dir itself
        cfg = {**config.run(0), **request.configuration}
        folder = RunFolder(request.sweep_dir)
    else:
        folder = RunFolder.of(request.sweep_dir, request.index)
        cfg = run_configuration(folder, config, request.index)
    try:
        held = ownership.Held(folder.path)
    except ownership.Busy as exc:
        print(f"run {request.index:03d} not trained: {exc}", file=sys.stderr)
        return BUSY
    with held:
        if _finished(folder):  # by another process while this one waited to start it
            print(f"run {request.index:03d} not trained: another process finished it "
                  "meanwhile", file=sys.stderr)
            return BUSY
        with output.kept_in(folder.path, request.index):
            return _train_held(config, folder, cfg, request, process_start)


def _finished(folder) -> bool:
    """Whether the run is done: two `final` commands at once each trained every final run
    in full, the second after the first had finished it (both counted in comparison.json);
    asked under the run's lock, so no other process finishes it meanwhile."""
    from ..runfolder import Unreadable

    try:
        return folder.status_record().get("status") == "done"
    except Unreadable:
        return False


def _train_held(config, folder, cfg: dict, request: Request, process_start: float) -> int:
    if cfg["precision"] == "float64" and os.environ.get("KERAS_BACKEND") == "jax":
        # JAX computes in float32 unless its 64-bit mode is on before it is imported; the
        # executors give such a run a process of its own (`needs_own_process`).
        os.environ["JAX_ENABLE_X64"] = "1"
    epochs = request.epochs or config.settings["epochs"]
    final = request.configuration is not None
    folder.write_status("running", pid=os.getpid())
    try:
        from .training import train_run  # keras: after JAX_ENABLE_X64 is settled

        rungs = None if final else halving_of(config, request.sweep_dir, request.index, epochs,
                                              request.release)
        results = train_run(cfg, config.settings, folder, epochs, config.settings["seed"],
                            request.index, process_start,
                            save_model=final or config.settings["save_models"],
                            config_dir=config.folder, rungs=rungs)
    except KeyboardInterrupt as exc:
        return _interrupted(folder, request.index, exc.args[0] if exc.args else "SIGINT")
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):  # EFBIG: no room would fix it
            return _failed_or_stopped(folder, exc, request.index)
        # A full disk is not the run's fault: it resumes once there is room again.
        try:
            folder.write_status("interrupted", reason=f"{exc}; free some space and run the "
                                "same command again")
        except OSError:
            pass  # the executor records how this attempt ended
        print(f"run {request.index:03d} interrupted: {exc}", file=sys.stderr)
        return NO_SPACE
    except (Exception, SystemExit) as exc:  # SystemExit: your code's sys.exit, a failure
        return _failed_or_stopped(folder, exc, request.index)
    folder.write_status("done", **results)
    if not config.settings.get("keep_checkpoints"):
        folder.remove_checkpoint()
    return DONE


def _interrupted(folder, index: int, signal_name: str, exc: BaseException | None = None) -> int:
    why = f"stopped by {signal_name}" + (
        f" (then {type(exc).__name__}: {str(exc)[:200]})" if exc is not None else "")
    folder.write_status("interrupted", reason=f"{why}; the checkpoint of the last finished "
                        "epoch is kept and the run resumes from it")
    print(f"run {index:03d} interrupted: {why}", file=sys.stderr)
    return INTERRUPTED


def _failed_or_stopped(folder, exc: BaseException, index: int) -> int:
    """A run's exception: a failure, unless a stop was requested first. A library's bare
    `except:` can swallow the KeyboardInterrupt a SIGTERM raises (Keras's TensorFlow
    `ops.shape` does) and fail on what it left undone (a `None` in a shape): the run was
    stopped, not broken, and resumes as an interrupted one."""
    from ..search.rung_callback import RunParked, RunStopped
    from . import interrupt
    from .training import RunSkipped

    decided = isinstance(exc, (RunParked, RunStopped, RunSkipped))  # outcomes, not faults
    if interrupt.requested and not decided:
        return _interrupted(folder, index, interrupt.requested[0], exc)
    return _failed(folder, exc, index)


def run_configuration(folder, config, index: int) -> dict:
    """What run `index` trains: its proposed configuration (a pareto search), else what a
    started attempt recorded in parameters.yaml (a resumed run trains what it started, even
    if another version of greenscreen would draw run `index` otherwise), else
    `config.run(index)`."""
    from ..runfolder import Unreadable

    proposed = folder.configuration()
    if proposed:
        return proposed
    try:
        started = folder.parameters()
    except Unreadable:
        started = {}
    drawn = config.run(index)
    if not started or not all(dim in started for dim in config.space):
        return drawn
    # "n/a": a dimension your own data decided (user_data), recorded but never trained with.
    return {dim: drawn[dim] if started[dim] == "n/a" else started[dim] for dim in config.space}


def halving_of(config, sweep_dir: str, index: int, epochs: int, release: bool = False):
    """The run's halving callback with settings.early_stop halving; None otherwise."""
    if config.settings["early_stop"] != "halving":
        return None
    from ..manifest import batch_size, halving_rule
    from ..objective import Objective
    from ..search.rung_callback import for_run

    objective = Objective.from_settings(config.settings)
    rule = halving_rule(sweep_dir, config.settings["halving_eta"])  # the sweep's, recorded
    return for_run(sweep_dir, index, config.settings["runs"], batch_size(sweep_dir) or 1,
                   epochs, rule, objective.name, objective.maximise, release, config.settings)


def _failed(folder, exc: Exception, index: int) -> int:
    """Records a failed run (skipped for a combination that cannot work; stopped when
    halving stopped it at a rung: its checkpoint is kept)."""
    from ..search.rung_callback import RunParked, RunStopped
    from .training import RunSkipped

    if isinstance(exc, RunParked):
        folder.write_status("parked", reason=str(exc), rung=exc.rung, peers=exc.peers)
        print(f"run {index:03d} {exc}", file=sys.stderr)
        return PARKED
    if isinstance(exc, RunStopped):
        folder.write_status("stopped", reason=str(exc))
        print(f"run {index:03d} stopped: {exc}", file=sys.stderr)
        return DONE
    from .recipe import Diverged

    state = "skipped" if isinstance(exc, RunSkipped) else "failed"
    # A NaN loss is found by our own check: its traceback is Keras's fit and our callback,
    # no line of yours, so the console names no place for it.
    tail = [] if isinstance(exc, Diverged) else (
        "".join(traceback.format_exception(exc)).splitlines()[-15:])
    folder.write_status(state, reason=reason_line(exc), traceback_tail="\n".join(tail))
    print(f"run {index:03d} {state}: {exc}", file=sys.stderr)
    return DONE if state == "skipped" else DIVERGED if isinstance(exc, Diverged) else FAILED


def reason_line(exc: BaseException) -> str:
    """The exception's type and the last line of its message, the line that says why (up
    to 300 characters). Not the lines that only say where or what to read: where Keras
    wraps an error raised in a layer's call ("Exception encountered when calling ...", the
    error, then "Arguments received by ...:" and one line per argument), the wrapped
    error's line; in a TensorFlow runtime error, the line above its graph nodes, its hint
    and its op ("[[{{node ...}}]]", "[[IteratorGetNext]]", "Hint: ...", "[Op:...]"); nor
    JAX's link ("See https://...")."""
    text = _ANSI.sub("", str(exc)).split("\nArguments received by ", 1)[0]
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.strip().startswith(_NOT_WHY)]
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}"[:300]
