"""The run process: trains one run into its folder and records how it ended.

    python -m greenscreen_pipeline.run --config config.yaml --sweep-dir sweeps/x --index 3

Every run gets its own process, so the backend's state and GPU memory are released
between runs. The executors start it (`executors.attempt`); the final run passes
`--configuration JSON` and its own folder as `--sweep-dir`. What the run does is
`training.train_run`; this module owns status.json: running, then done, stopped (by
halving at a rung), failed, skipped or interrupted (SIGINT, SIGTERM, a full disk), with
the reason. A run whose folder holds a proposed configuration (configuration.json, a
pareto search) trains that one.
"""

from __future__ import annotations

import time

T_START = time.time()  # before the heavy imports: the pipeline-overhead benchmark needs it

import argparse  # noqa: E402
import errno  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402

from . import interrupt  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m greenscreen_pipeline.run",
                                     description="Train one run into its folder.")
    parser.add_argument("--config", required=True)
    parser.add_argument("--sweep-dir", required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--configuration", default=None,
                        help="train this configuration (JSON) instead of run INDEX's")
    args = parser.parse_args(argv)
    interrupt.install()

    from . import space
    from .runfolder import RunFolder

    config = space.load(args.config, {"sweep_dir": args.sweep_dir})
    seed = config.settings["seed"]
    if args.configuration:  # the final run: its folder is --sweep-dir itself
        cfg = {**config.run(0), **json.loads(args.configuration)}
        folder = RunFolder(args.sweep_dir)
    else:
        folder = RunFolder.of(args.sweep_dir, args.index)
        cfg = folder.configuration() or config.run(args.index)
    folder.path.mkdir(parents=True, exist_ok=True)
    if cfg["precision"] == "float64" and os.environ.get("KERAS_BACKEND") == "jax":
        # JAX computes in float32 unless its 64-bit mode is on before it is imported;
        # this process trains one run, so turning it on here affects nothing else.
        os.environ["JAX_ENABLE_X64"] = "1"
    epochs = args.epochs or config.settings["epochs"]
    folder.write_status("running", pid=os.getpid())
    try:
        from .training import train_run  # keras: after JAX_ENABLE_X64 is settled

        rungs = None if args.configuration else halving_of(config, args.sweep_dir,
                                                           args.index, epochs)
        results = train_run(cfg, config.settings, folder, epochs, seed, args.index, T_START,
                            save_model=bool(args.configuration) or config.settings["save_models"],
                            config_dir=config.folder, rungs=rungs)
    except KeyboardInterrupt as exc:
        why = f"stopped by {exc.args[0] if exc.args else 'SIGINT'}"
        folder.write_status("interrupted", reason=f"{why}; the checkpoint of the last finished "
                            "epoch is kept and the run resumes from it")
        print(f"run {args.index:03d} interrupted: {why}", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            return _failed(folder, exc, args.index)
        # A full disk is not the run's fault: it resumes once there is room again.
        try:
            folder.write_status("interrupted", reason=f"{exc}; free some space and run the "
                                "same command again")
        except OSError:
            pass  # the executor records how this attempt ended
        print(f"run {args.index:03d} interrupted: {exc}", file=sys.stderr)
        return 75
    except Exception as exc:
        return _failed(folder, exc, args.index)
    folder.write_status("done", **results)
    if not config.settings.get("keep_checkpoints"):
        folder.remove_checkpoint()
    return 0


def halving_of(config, sweep_dir: str, index: int, epochs: int):
    """The run's halving callback with settings.early_stop halving; None otherwise."""
    if config.settings["early_stop"] != "halving":
        return None
    from .manifest import batch_size
    from .objective import Objective
    from .search.rung_callback import for_run

    objective = Objective.from_settings(config.settings)
    return for_run(sweep_dir, index, config.settings["runs"], batch_size(sweep_dir) or 1,
                   epochs, config.settings["halving_eta"], objective.name, objective.maximise)


def _failed(folder, exc: Exception, index: int) -> int:
    """Records a failed run (skipped for a combination that cannot work; stopped when
    halving stopped it at a rung: its checkpoint is kept)."""
    from .search.rung_callback import RunStopped
    from .training import RunSkipped

    if isinstance(exc, RunStopped):
        folder.write_status("stopped", reason=str(exc))
        print(f"run {index:03d} stopped: {exc}", file=sys.stderr)
        return 0
    state = "skipped" if isinstance(exc, RunSkipped) else "failed"
    tail = "".join(traceback.format_exception(exc)).splitlines()[-15:]
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    reason = f"{type(exc).__name__}: {lines[-1] if lines else ''}"[:300]
    folder.write_status(state, reason=reason, traceback_tail="\n".join(tail))
    print(f"run {index:03d} {state}: {exc}", file=sys.stderr)
    return 0 if state == "skipped" else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Every file is written and closed, and the meter is stopped: skip the backend's
    # interpreter teardown, which costs about a second per run.
    os._exit(code)
