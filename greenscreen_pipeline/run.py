"""Train one run into its folder. Meant to run in its own process:

    python -m greenscreen_pipeline.run --config config.yaml --sweep-dir sweeps/x --index 3

so that the backend's state and GPU memory are released between runs. The final
run (`--final PARAMS.yaml --out DIR`) trains a given configuration instead.
"""

from __future__ import annotations

import time

T_START = time.time()  # before the heavy imports: the pipeline-overhead benchmark needs it

import argparse  # noqa: E402
import errno  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402


def versions() -> dict:
    """Library versions, the Keras backend's among them (its name under "backend")."""
    import importlib

    import keras
    import numpy

    import greenscreen

    backend = keras.backend.backend()
    return {"python": platform.python_version(), "backend": backend,
            backend: importlib.import_module(backend).__version__,
            "keras": keras.__version__, "numpy": numpy.__version__,
            "greenscreen": greenscreen.__version__}


def train(cfg: dict, settings: dict, folder, epochs: int, seed: int, index: int,
          save_model: bool = False) -> dict:
    from greenscreen import SMICallback

    from . import batches, checkpoint, data
    from . import train as t

    timing = {"process_start": T_START, "imports_done": time.time()}
    params = {"run": index, **cfg, "seed": seed, "epochs": epochs}
    folder.write_parameters(params)
    reason = t.unsupported(cfg)
    if reason:
        raise t.RunSkipped(reason)
    import keras

    keras.utils.set_random_seed(seed + index)
    dtype = t.set_precision(cfg["precision"])
    x, y = data.load(cfg["dataset"], settings["data_path"], settings["image_size"])
    splits = data.preprocess(data.split(x, y, cfg["partitioning"], seed), cfg["preprocessing"])
    train_ds, val_ds, test_ds = batches.datasets(splits, cfg, dtype, seed + index)
    model, net, n_params, flops, steps = t.build_and_compile(cfg, splits, epochs)
    params.update(n_parameters=n_params, flops_per_train_step=flops, steps_per_epoch=steps,
                  versions=versions())
    folder.write_parameters(params)
    timing["data_ready"] = time.time()
    # Resumes from the last finished epoch of an interrupted attempt, if there is one;
    # SMICallback continues logs.csv and adds this attempt's energy to the earlier ones'.
    start = checkpoint.restore(model, folder.checkpoint_dir)
    timing["resumed_from_epoch"] = start
    smi = SMICallback(log_dir=folder.path, source=settings["energy_source"], resume=True)
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=start,
                        verbose=0, shuffle=False, callbacks=[
                            smi, checkpoint.EpochCheckpoint(folder.checkpoint_dir),
                            keras.callbacks.TerminateOnNaN()])
    timing["fit_end"] = time.time()
    timing["fit_start"] = smi.summary.get("t_start", timing["data_ready"])
    t.finite(history)
    test_loss, test_acc = model.evaluate(test_ds, verbose=0)
    results = {"test_accuracy": float(test_acc), "test_loss": float(test_loss)}
    confusion = t.confusion_matrix(model, test_ds)  # the report's heatmap, per-class accuracy
    if cfg["internal"] == "post_quantization":
        results.update(t.post_quantize(model, test_ds))
    params.update(results)
    folder.write_parameters(params)
    if save_model:  # the final run keeps its model; sweep runs with settings.save_models
        t.plain(model).save(folder.path / "model.keras")
    timing["end"] = time.time()
    folder.write_results({**results, "confusion_matrix": confusion,
                          "versions": params["versions"], "timing": timing,
                          "history": {k: [float(v) for v in vals]
                                      for k, vals in history.history.items()}})
    return results


def _interrupt(signum, frame):
    """SIGTERM (Slurm's time limit, the sweep stopping) ends the run like Ctrl-C does;
    a second signal while it is being handled is ignored."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Train one run into its folder.")
    parser.add_argument("--config", required=True)
    parser.add_argument("--sweep-dir", required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--configuration", default=None,
                        help="train this configuration (JSON) instead of run INDEX's")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)

    from . import space
    from .runfolder import RunFolder

    config = space.load(args.config, {"sweep_dir": args.sweep_dir})
    seed = config.settings["seed"]
    if args.configuration:  # the final run: its folder is --sweep-dir itself
        cfg = {**config.run(0), **json.loads(args.configuration)}
        folder = RunFolder(args.sweep_dir)
    else:
        cfg = config.run(args.index)
        folder = RunFolder.of(args.sweep_dir, args.index)
    folder.path.mkdir(parents=True, exist_ok=True)
    if cfg["precision"] == "float64" and os.environ.get("KERAS_BACKEND") == "jax":
        # JAX computes in float32 unless its 64-bit mode is on before it is imported;
        # this process trains one run, so turning it on here affects nothing else.
        os.environ["JAX_ENABLE_X64"] = "1"
    epochs = args.epochs or config.settings["epochs"]
    folder.write_status("running", pid=os.getpid())
    try:
        results = train(cfg, config.settings, folder, epochs, seed, args.index,
                        save_model=bool(args.configuration) or config.settings["save_models"])
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


def _failed(folder, exc: Exception, index: int) -> int:
    """Records a failed (or, for a combination that cannot work, skipped) run."""
    from .train import RunSkipped

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
