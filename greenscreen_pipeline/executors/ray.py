"""Ray executor: one long-lived actor per slot of the cluster (`pip install ".[ray]"`).

Each actor (`Slot`) keeps a warm worker process (`workers.WorkerSlot`) and trains the
runs it is given one after another, each claimed and trained exactly as the local
executor does (`attempt.train_claimed`), so run folders, claims, resume and failure
records are the same. An actor asks for `cpus_per_run` CPUs and, when the cluster has
GPUs, one GPU (Ray then sets `CUDA_VISIBLE_DEVICES`, so the runs' SMICallback measures
only that GPU). Each run goes to the next idle actor (`dispatch`; Ray's `ActorPool` does
the same but cannot say which run a lost actor was training). The sweep folder and this
checkout must be on storage every node sees, at the same path.

Ray does not interrupt a running actor method when it is cancelled, so a stopped sweep
asks each actor to stop its worker (`Slot.stop`, on a second thread of the actor): the
run in flight is interrupted as on Ctrl-C and resumes on the next sweep.

A pareto search or halving goes in batches of the cluster's slots (the runs it trains at
once with those resources), recorded in sweep.json: a batch's tasks are submitted once
the batch before has ended. Submitting every task at once would let Ray start a later
run before an earlier one, and a run waiting at a rung for a peer that has no slot would
wait for ever.

Without an address a private local Ray instance is started that listens on
loopback only and sends no usage statistics. Ray binds its servers (GCS,
raylet, object manager, workers, agents) to the node's IP address, and takes
127.0.0.1 as that address when `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, the
single-machine mode Ray uses by default on macOS and Windows. Ray reads that
variable when it is first imported, so `start` sets it before importing Ray and
checks the node address afterwards. With an address (a real cluster), binding
is the cluster operator's business.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Iterable

from greenscreen.validation import invalid

from .. import budget, manifest, runfolder
from ..errors import Interrupted, MissingDependency, UsageError
from ..log import logger
from ..space import SweepConfig
from . import proposals
from .attempt import RunReport, Todo, to_train, train_claimed
from .progress import Progress
from .workers import WorkerSlot

log = logger(__name__)

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class Slot:
    """A Ray actor: one slot of the cluster, with its warm worker. Threaded (two threads),
    so that `stop` can run while `train` waits for a run."""

    def __init__(self, config: SweepConfig, sweep_dir: str, epochs: int) -> None:
        from .stop import Stop

        self.config, self.sweep_dir, self.epochs = config, Path(sweep_dir), epochs
        self.stopping = Stop()  # set by `stop`; no signal handlers in an actor
        self.worker = WorkerSlot(None, config.settings["worker_memory_growth_mb"])

    def train(self, index: int) -> RunReport:
        """Claims and trains run `index`; the run records this actor task's id in
        summary.json's job (its process cannot see it itself)."""
        return train_claimed(self.config, self.sweep_dir, index, self.epochs, None,
                             self.stopping, self.worker, task_environment())

    def stop(self) -> None:
        """Interrupts the run in flight (it resumes later) and ends the worker."""
        self.stopping.request()

    def close(self) -> None:
        self.worker.close()


RAY_TASK_ENV = "GREENSCREEN_RAY_TASK_ID"  # read by greenscreen.callbacks' job metadata


def task_environment() -> dict[str, str]:
    """{GREENSCREEN_RAY_TASK_ID: this Ray task's id}; empty outside a task or if Ray cannot
    say (the id is for joining with Ray's accounting, never a reason to fail a run)."""
    try:
        import ray

        task = ray.get_runtime_context().get_task_id()
    except Exception:
        return {}
    return {RAY_TASK_ENV: task} if isinstance(task, str) and task else {}


def start(address: str | None, num_cpus: int | None):
    """Connects to the cluster at `address`, or starts a local Ray instance on loopback."""
    if not address:
        # Must precede Ray's first import (see the module docstring); and no
        # telemetry leaves the machine unless the user asks for it.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise MissingDependency('the ray executor needs Ray: pip install ".[ray]" (or pip '
                                "install ray)") from None
    if address:
        ray.init(address=address, log_to_driver=False)
        return ray
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 2**20)  # run results are small JSON
    node_ip = ray.util.get_node_ip_address()
    if node_ip not in LOOPBACK:
        ray.shutdown()
        raise UsageError(f"the private Ray instance took node address {node_ip}, so it would "
                         "listen beyond loopback; Ray was imported before "
                         "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 was set. Start it from a fresh "
                         "process, or give --address of a cluster.")
    return ray


def _stop(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def resources(cluster: dict, gpus_per_run: int | None, cpus_per_run: int) -> dict:
    """Per-task resources: one GPU per run when the cluster has GPUs, CPUs otherwise."""
    if gpus_per_run is None:
        gpus_per_run = 1 if cluster.get("GPU", 0) >= 1 else 0
    if gpus_per_run > cluster.get("GPU", 0):
        raise UsageError(_beyond_cluster("--gpus-per-run", gpus_per_run, cluster, "GPU", 0))
    if cpus_per_run > cluster.get("CPU", 0):
        raise UsageError(_beyond_cluster("--cpus-per-run", cpus_per_run, cluster, "CPU", 1))
    return {"num_gpus": gpus_per_run, "num_cpus": cpus_per_run}


def _beyond_cluster(flag: str, value: int, cluster: dict, resource: str, low: int) -> str:
    has = cluster.get(resource, 0)
    return str(invalid(flag, value, f"{low} to {has:g}: the Ray cluster has {has:g} {resource}s"))


def slots(cluster: dict, res: dict) -> int:
    """How many runs the cluster trains at once when each takes `res` (`resources`)."""
    at_once = [int(cluster.get(key, 0) // res[f"num_{key.lower()}s"])
               for key in ("CPU", "GPU") if res[f"num_{key.lower()}s"]]
    return max(1, min(at_once, default=1))


def batch_size(config: SweepConfig, sweep_dir: Path, at_once: int) -> int | None:
    """The batch of a pareto search or halving (None for neither): the recorded one on a
    resumed sweep, else the cluster's slots; recorded in sweep.json.

    Raises:
        UsageError: The sweep was started in bigger batches than the cluster's slots.
    """
    s = config.settings
    if s["search"] == "random" and s["early_stop"] == "off":
        return None
    size = manifest.batch_size(sweep_dir) or at_once
    if size > at_once:
        raise UsageError(f"{sweep_dir} was started in batches of {size} runs; this Ray "
                         f"cluster trains {at_once} at once with these resources per run, "
                         "and every run of a batch must train at once. Give Ray more "
                         "resources (--num-cpus) or fewer per run.")
    manifest.record(config, sweep_dir, size)
    return size


def waves(config: SweepConfig, sweep_dir: Path, todo: Todo,
          size: int | None) -> Iterable[Iterable[int]]:
    """The unfinished runs in the groups submitted together: all at once, or batch by
    batch (each proposed, under pareto, when the one before has ended)."""
    if size is None:
        yield todo
        return
    for batch in proposals.batches(config, sweep_dir, size):
        yield [i for i in batch if i in todo]


def run_sweep(config: SweepConfig, sweep_dir: Path, address: str | None = None,
              num_cpus: int | None = None, gpus_per_run: int | None = None,
              cpus_per_run: int = 1) -> list[dict]:
    """Trains every unfinished run on one Ray actor per slot; returns each run's status."""
    s = config.settings
    todo = to_train(config, sweep_dir)
    ray = start(address, num_cpus)
    # After ray.init, which installs its core worker's own SIGTERM handler (a stack dump,
    # then abort: the actors trained on, orphaned). SIGINT too: a sweep started in the
    # background inherits it ignored, and `kill -INT` should stop it as `sweep local`'s does.
    before = {sig: signal.signal(sig, _stop)  # like Ctrl-C: cancel the tasks cleanly
              for sig in (signal.SIGTERM, signal.SIGINT)}
    actors: list = []
    pending: dict = {}  # object ref -> (actor, run)
    try:
        cluster = ray.cluster_resources()
        res = resources(cluster, gpus_per_run, cpus_per_run)
        size = batch_size(config, sweep_dir, slots(cluster, res)) if todo else None
        log.info("Ray cluster %g CPUs, %g GPUs; %s, each with %d GPU(s) and %d CPU(s)%s",
                 cluster.get("CPU", 0), cluster.get("GPU", 0),
                 budget.UNTIL_SPENT if budget.unbounded(s) else
                 f"{len(todo)} runs to train", res["num_gpus"], res["num_cpus"],
                 f", in batches of {size}" if size else "")
        # No Ray-level retries: a lost actor leaves its run unfinished, and rerunning the
        # sweep trains it; a retry on another node would find the dead actor's claim.
        actor = ray.remote(Slot).options(max_restarts=0, max_concurrency=2, **res)
        actors = [actor.remote(config, str(sweep_dir.resolve()), s["epochs"])
                  for _ in range(min(slots(cluster, res), max(1, len(todo))))]
        progress = Progress(None if budget.unbounded(s) else len(todo),
                            budget_line=lambda now: budget.line(s, sweep_dir, now))
        said, started = (lambda report: progress.report(sweep_dir, report)), set()
        for wave in waves(config, sweep_dir, todo, size):
            dispatch(ray, actors, wave, pending, said,
                     lambda: budget.allows_next(s, sweep_dir), started)
            if not budget.allows_next(s, sweep_dir):
                # No new run; those an earlier sweep left parked at a rung still resume.
                dispatch(ray, actors, budget.left_parked(s, sweep_dir, todo, started),
                         pending, said, started=started)
                break
    except KeyboardInterrupt:
        log.warning("stopping the Ray actors; interrupted runs resume when you run the same "
                    "command again")
        stop_actors(ray, actors, pending)
        raise Interrupted("stopped; run the same command again to finish (interrupted runs "
                          "resume)", runfolder.started(sweep_dir, s["runs"])) from None
    finally:
        for a in actors:
            try:
                ray.get(a.close.remote(), timeout=90)
            except Exception:  # an actor already gone: its worker ended with it
                pass
        ray.shutdown()
        for sig, handler in before.items():  # `all` goes on to analyze, final, report
            signal.signal(sig, handler)
    return budget.outcomes(s, sweep_dir)


def stop_actors(ray, actors: list, pending: dict) -> None:
    """Asks each actor to stop its run, then waits for the runs in flight (now
    interrupted), up to 90 s each. An actor that died with the signal, or one that does not
    answer in time, raises Ray's error here: the sweep was stopped all the same, and is said
    to be (not the RayActorError of one actor), so every actor is asked and every wait
    made whatever one of them raises."""
    for stopped in [a.stop.remote() for a in actors]:
        try:
            ray.get(stopped, timeout=90)
        except Exception as exc:  # ray.exceptions.RayError, GetTimeoutError: it is gone
            log.debug("a Ray actor did not answer its stop: %r", exc)
    try:
        ray.wait(list(pending), num_returns=len(pending), timeout=90)  # now interrupted
    except Exception as exc:
        log.debug("waiting for the Ray runs in flight: %r", exc)


def dispatch(ray, actors: list, runs: Iterable[int], pending: dict, report,
             may_start=lambda: True, started: "set[int] | None" = None) -> None:
    """Trains `runs` in order, each on the next idle actor, until all are through;
    `report(RunReport)` as each ends. A lost actor's run is reported lost (a rerun trains
    it) and its slot is not used again. `may_start()` false (the budget is spent): no
    further run starts; those in flight finish. `started` gains each run handed out."""
    started = set() if started is None else started
    idle, upcoming = list(actors), iter(runs)  # never listed: `runs` may be a billion
    following = next(upcoming, None)
    while following is not None or pending:
        if following is not None and not may_start():
            following = None
        while idle and following is not None:
            actor = idle.pop(0)
            pending[actor.train.remote(following)] = (actor, following)
            started.add(following)
            following = next(upcoming, None)
        if not pending:  # every actor is lost: the next run says so; a rerun trains the rest
            if following is not None:
                report(RunReport(following, {"status": "lost"}, "lost",
                                 detail="no Ray actor left"))
                log.error("no Ray actor left: run %d and those after it were not started; "
                          "run the same command again to train them", following)
            return
        ready, _ = ray.wait(list(pending), num_returns=1)
        actor, index = pending.pop(ready[0])
        try:
            outcome = ray.get(ready[0])
        except ray.exceptions.RayError as exc:
            outcome = RunReport(index, {"status": "lost"}, "lost", detail=type(exc).__name__)
            actors.remove(actor)  # a later call (the next wave, parked runs) skips it too
        else:
            idle.append(actor)
        report(outcome)
