"""One run, top to bottom: configuration -> data -> model -> compile -> fit -> evaluate ->
record. `run.py` calls `train_run` in the run's own process; the pieces each option needs
are in `recipe`, `data`, `batches` and `models`.
"""

from __future__ import annotations

import importlib
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import keras

from greenscreen import SMICallback

from . import batches, checkpoint, data, models, recipe, user_code
from .data import Splits
from .records import RunResults
from .runfolder import RunFolder
from .space import DIMENSIONS


class RunSkipped(Exception):
    """This combination of options cannot work; the message says why."""


@dataclass(frozen=True)
class BuiltModel:
    """The model a run fits (wrapped for its method), the plain network inside, and its size."""

    model: keras.Model
    net: keras.Model
    n_parameters: int
    flops_per_train_step: int
    steps_per_epoch: int


def train_run(cfg: dict, settings: dict, folder: RunFolder, epochs: int, seed: int, index: int,
              process_start: float, save_model: bool = False,
              config_dir: "str | Path" = ".") -> dict:
    """Trains run `index` with configuration `cfg` into `folder`; returns its test metrics.

    Resumes from the last finished epoch of an interrupted attempt, if there is one.
    Raises RunSkipped, before any training, for a combination that cannot run. Your own
    model and dataset functions (config.yaml "module:function") are imported from
    `config_dir` first and get `params`, the run's whole configuration.
    """
    timing = {"process_start": process_start, "imports_done": time.time()}
    params = {"run": index, **cfg, "seed": seed, "epochs": epochs}
    folder.write_parameters(params)
    reason = recipe.skip_reason(cfg)
    if reason:
        raise RunSkipped(reason)
    keras.utils.set_random_seed(seed + index)
    dtype = recipe.set_precision(cfg["precision"])

    # Data: yours or a built-in dataset, split, preprocessed, then batches (augmented).
    yours = user_code.TrackedParams(params)  # what your functions get; it notes what they read
    if user_code.is_entry(cfg["dataset"]):
        function = user_code.load(cfg["dataset"], "dataset", config_dir)
        splits, given = data.from_user(function(yours), cfg["partitioning"], seed,
                                       cfg["dataset"])
        if given:  # your own splits: the partitioning dimension does not apply
            params["partitioning"] = "n/a"
    else:
        x, y = data.load(cfg["dataset"], settings["data_path"], settings["image_size"])
        splits = data.split(x, y, cfg["partitioning"], seed)
    splits = data.preprocess(splits, cfg["preprocessing"])
    train_ds, val_ds, test_ds = batches.datasets(splits, cfg, dtype, seed + index)

    # Model: yours or a built-in one, wrapped for the method, compiled with the run's optimizer.
    built = build_model(yours, splits, epochs, config_dir)
    unread = [dim for dim in cfg if dim not in DIMENSIONS and dim not in yours.read]
    model = built.model
    params.update(n_parameters=built.n_parameters,
                  flops_per_train_step=built.flops_per_train_step,
                  steps_per_epoch=built.steps_per_epoch, versions=versions())
    folder.write_parameters(params)
    timing["data_ready"] = time.time()

    # Fit, measured: SMICallback continues logs.csv and adds this attempt's energy to the
    # earlier attempts'; the checkpoint of every finished epoch makes a kill resumable.
    start = checkpoint.restore(model, folder.checkpoint_dir)
    timing["resumed_from_epoch"] = start
    smi = SMICallback(log_dir=folder.path, source=settings["energy_source"], resume=True)
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=start,
                        verbose=0, shuffle=False, callbacks=[
                            smi, checkpoint.EpochCheckpoint(folder.checkpoint_dir),
                            keras.callbacks.TerminateOnNaN()])
    timing["fit_end"] = time.time()
    timing["fit_start"] = smi.summary.get("t_start", timing["data_ready"])
    recipe.finite(history)

    # Evaluate: test metrics, the confusion matrix, the int8 model if asked.
    test_loss, test_acc = model.evaluate(test_ds, verbose=0)
    confusion = recipe.confusion_matrix(model, test_ds)
    quantized = (recipe.post_quantize(model, test_ds)
                 if cfg["internal"] == "post_quantization" else {})

    # Record: parameters.yaml gains the test metrics; results.json has them and the rest.
    if save_model:  # the final run keeps its model; sweep runs with settings.save_models
        recipe.plain(model).save(folder.path / "model.keras")
    timing["end"] = time.time()
    results = RunResults(float(test_acc), float(test_loss), confusion, params["versions"],
                         timing, {k: [float(v) for v in vals]
                                  for k, vals in history.history.items()}, quantized, unread)
    params.update(results.metrics)
    folder.write_parameters(params)
    folder.write_results(results)
    return results.metrics


def build_model(cfg: dict, splits: Splits, epochs: int,
                config_dir: "str | Path | None" = None) -> BuiltModel:
    """Builds the run's network, quantizes it for float8 training if `internal` says so,
    wraps it for the run's method and compiles it."""
    steps = math.ceil(len(splits.x_train) / cfg["batch_size"])
    net = models.build(cfg["model"], splits.input_shape, splits.num_classes, cfg, config_dir)
    if cfg["internal"] == "pre_quantization":
        net.quantize("float8")
    model = recipe.wrap(cfg, net, steps, epochs, len(splits.x_train))
    recipe.compile_model(model, cfg, steps, epochs)
    return BuiltModel(model, net, int(net.count_params()),
                      models.train_step_flops(net, cfg["batch_size"]), steps)


def versions() -> dict:
    """Library versions, the Keras backend's among them (its name under "backend")."""
    import numpy

    import greenscreen

    backend = keras.backend.backend()
    return {"python": platform.python_version(), "backend": backend,
            backend: importlib.import_module(backend).__version__,
            "keras": keras.__version__, "numpy": numpy.__version__,
            "greenscreen": greenscreen.__version__}
