"""One run, top to bottom: configuration -> data -> model -> compile -> fit -> evaluate ->
record. `run.py` calls `train_run` in the run's own process; the pieces each option needs
are in `recipe`, `data`, `batches` and `models`.
"""

from __future__ import annotations

import importlib
import math
import os
import platform
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import keras

from greenscreen import SMICallback

from .. import user_code
from ..objective import CLASSIFICATION, Objective
from ..records import RunResults
from ..runfolder import RunFolder, Unreadable
from ..search.rung_callback import RungCallback
from ..space import DIMENSIONS
from . import (
    batches,
    checkpoint,
    cpus,
    data,
    datacache,
    interrupt,
    lazy_tensorflow,
    models,
    own_loop,
    recipe,
    rules,
    seeding,
    user_data,
)
from .data import DataError, Splits
from .stop_callbacks import HoldSignals, StopOnSignal


class RunSkipped(Exception):
    """This combination of options cannot work; the message says why."""


@dataclass(frozen=True)
class BuiltModel:
    """The model a run fits (wrapped for its method), the plain network inside, and its size."""

    model: keras.Model
    net: keras.Model
    n_parameters: int | None  # None: a model Keras builds only on its data
    flops_per_train_step: int | None
    steps_per_epoch: int


def meter_arguments(settings: dict) -> dict:
    """SMICallback's power source and CO2 intensity for a run: settings.energy_source, and
    settings.carbon_intensity or settings.country, as the report reads them, so that a
    run's own summary.json states the CO2 the report uses (it used the world average)."""
    return {"source": settings["energy_source"], "carbon_intensity":
            settings.get("carbon_intensity"), "country": settings.get("country") or None}


def train_run(cfg: dict, settings: dict, folder: RunFolder, epochs: int, seed: int, index: int,
              process_start: float, save_model: bool = False,
              config_dir: "str | Path" = ".", rungs: "RungCallback | None" = None) -> dict:
    """Trains run `index` with configuration `cfg` into `folder`; returns its test metrics.

    Resumes from the last finished epoch of an interrupted attempt, if there is one.
    Raises RunSkipped, before any training, for a combination that cannot run. Your own
    model, dataset and training functions (config.yaml "module:function") are imported
    from `config_dir` first and get `params`, the run's whole configuration. `rungs`
    (settings.early_stop halving) waits at each rung for its peers, and raises RunStopped
    after the fit when a rung stopped the run.
    """
    # process_start: the fresh process's start, or when a warm worker got the run.
    timing = {"process_start": process_start, "imports_done": time.time(), "pid": os.getpid(),
              "cpus": cpus.allowed()}  # the worker's share where several train at once
    objective = Objective.from_settings(settings)
    # With your own loop, the loop is part of what ran: parameters.yaml names it from the start.
    loop = {"train": settings["train"]} if settings["train"] else {}
    params = {"run": index, **cfg, "seed": seed, "epochs": epochs, **loop}
    folder.write_parameters(params)
    reason = own_loop.skip_reason(cfg) if loop else (
        recipe.skip_reason(cfg) or rules.epochs_reason(cfg, epochs))
    if reason:
        raise RunSkipped(reason)
    seeding.seed_run(seed + index)  # as keras.utils.set_random_seed, TensorFlow when loaded
    dtype = recipe.set_precision(cfg["precision"])
    if loop:  # your own loop instead of compile + fit; it records what it did not read "n/a"
        return own_loop.train_own(settings["train"], own_loop.LoopParams(params), folder,
                                  objective, timing, meter_arguments(settings), config_dir,
                                  versions(), [dim for dim in cfg if dim not in DIMENSIONS])
    yours = user_code.TrackedParams(params)  # what your functions get; it notes what they read

    # Data: yours or a built-in dataset, split, preprocessed, then batches (augmented).
    run_data = load_data(cfg, settings, yours, objective, (seed, seed + index), dtype,
                         config_dir)
    params.update(run_data.not_applicable)

    # Model: yours or a built-in one, wrapped for the method, compiled with the run's optimizer.
    built = build_model(yours, run_data, epochs, config_dir, objective)
    unread = [dim for dim in cfg if dim not in DIMENSIONS and dim not in yours.read]
    model = built.model
    params.update(n_parameters=built.n_parameters,
                  flops_per_train_step=built.flops_per_train_step,
                  steps_per_epoch=built.steps_per_epoch, versions=versions())
    folder.write_parameters(params)
    timing["data_ready"] = time.time()
    timing["data_cached"] = run_data.data_cached  # loaded and split by an earlier run here

    # Fit, measured: SMICallback continues logs.csv and adds this attempt's energy to the
    # earlier attempts'; the checkpoint of every finished epoch makes a kill resumable.
    start = checkpoint.restore(model, folder.checkpoint_dir)
    timing["resumed_from_epoch"] = start
    if isinstance(run_data.train, batches.ArrayBatches):  # the batches it would have had
        run_data.train.start_at(start)
    if rungs is not None:
        rungs.check_resumed(start)
    smi = SMICallback(log_dir=folder.path, resume=True, **meter_arguments(settings))
    # The rung record after SMICallback (the energy so far) and before the checkpoint; the
    # wait for its decision after it (rung_callback). A stop is held from the epoch's end
    # until its checkpoint is written (HoldSignals ... StopOnSignal), so its row and its
    # checkpoint go together; a run waiting at a rung stops at once.
    try:
        history = model.fit(run_data.train, validation_data=run_data.validation,
                            epochs=epochs, initial_epoch=start, verbose=0, shuffle=False,
                            callbacks=[HoldSignals(), smi, *([rungs] if rungs else []),
                                       checkpoint.EpochCheckpoint(folder.checkpoint_dir),
                                       StopOnSignal(), *([rungs.waiter()] if rungs else []),
                                       keras.callbacks.TerminateOnNaN(), StopOnSignal()])
    except BaseException:  # a stop or a fault: this attempt's joules stay counted, and the
        interrupt.unhold()  # callback lets go of its folder, meter and model (a warm
        smi.close()  # worker goes on)
        raise
    timing["fit_end"] = time.time()
    recipe.finite(history, start)  # a run that diverged failed, whatever its rung decided
    if rungs is not None:
        rungs.raise_if_stopped()
    timing["fit_start"] = smi.summary.get("t_start", timing["data_ready"])

    # Evaluate: test metrics, the confusion matrix, the int8 model if asked. `test` is the
    # validation split where your splits have none (results.json's evaluated_on says so).
    tested = recipe.evaluate(model, run_data.test)
    confusion = (recipe.confusion_matrix(model, run_data.test, run_data.num_classes)
                 if objective.classification else None)
    quantized = (recipe.post_quantize(model, run_data.test, objective)
                 if cfg["internal"] == "post_quantization" else {})

    # Record: parameters.yaml gains the test metrics; results.json has them and the rest.
    if save_model:  # the final run keeps its model; sweep runs with settings.save_models
        save_trained(recipe.plain(model), folder.path)
    timing["end"] = time.time()
    curves = recipe.whole_history(history, _logged(folder) if start else None, start)
    value = objective.run_value(tested, {k: v[-1] for k, v in curves.items() if v},
                                "the run logged")
    if value["split"] == "test":  # the evaluated split's value: validation without a test
        value["split"] = run_data.evaluated_on
    results = RunResults(tested.get("test_accuracy"), tested["test_loss"], confusion,
                         params["versions"], timing, curves, quantized, unread,
                         test_metrics=tested, objective=value,
                         evaluated_on=run_data.evaluated_on)
    params.update(results.metrics)
    folder.write_parameters(params)
    folder.write_results(results)
    return results.metrics


def _logged(folder: RunFolder):
    """logs.csv's rows, or None where it cannot be read (results.json then has this
    attempt's epochs alone, as before)."""
    try:
        return folder.logs()
    except Unreadable:
        return None


@dataclass(frozen=True)
class RunData:
    """What `fit` and `evaluate` get: our batches of arrays, or your streamed splits."""

    train: object
    validation: object
    test: object
    input_shape: tuple
    num_classes: int  # a regression's number of outputs
    steps_per_epoch: int
    batch_size: int
    num_samples: int | None = None  # None: a stream's
    not_applicable: dict = field(default_factory=dict)  # dimension -> "n/a"
    evaluated_on: str = "test"  # "validation": your splits have no test split
    data_cached: bool = False  # a built-in dataset's splits from the worker's cache


def load_data(cfg: dict, settings: dict, yours: user_code.TrackedParams, objective: Objective,
              seeds: tuple[int, int], dtype: str, config_dir: "str | Path") -> RunData:
    """The run's data: your dataset function's, or a built-in dataset split by partitioning.
    `seeds`: the sweep's (one split for every run) and the run's (its shuffling)."""
    split_seed, seed = seeds
    prepared = read_data(cfg, settings, yours, objective, split_seed, config_dir)
    return batch_data(prepared, cfg, set(yours.read), objective, dtype, seed)


def read_data(cfg: dict, settings: dict, yours: user_code.TrackedParams, objective: Objective,
              split_seed: int, config_dir: "str | Path") -> user_data.Prepared:
    """The run's data before batching: your dataset function called with `yours` and its
    result checked by the run's rules (`user_data.prepare`), or a built-in dataset split."""
    if not user_code.is_entry(cfg["dataset"]):
        splits, cached = datacache.built_in(cfg["dataset"], settings["data_path"],
                                            settings["image_size"], cfg["partitioning"],
                                            split_seed)
        return user_data.Prepared(splits, cached=cached)
    from ..probe_data import not_finite_mistakes

    function = user_code.load(cfg["dataset"], "dataset", config_dir)
    prepared = user_data.prepare(function(yours), objective, cfg["partitioning"], split_seed,
                                 cfg["dataset"])
    mistakes = not_finite_mistakes(prepared, cfg["dataset"])
    if mistakes:  # the probe saw run 000's configuration only
        where = user_code.defined_at(function)
        raise DataError("; ".join(mistakes) + (f" (def at {where})" if where else ""))
    return prepared


def batch_data(prepared: user_data.Prepared, cfg: dict, read: set[str], objective: Objective,
               dtype: str, seed: int) -> RunData:
    """What `fit` and `evaluate` get from the prepared data. `read`: the params your
    dataset function read, which decide the dimensions that still apply to it."""
    decided = ("partitioning",) if prepared.given else ()
    if isinstance(prepared.data, user_data.Streams):
        streams = prepared.data
        if cfg["method"] == "gated" and cfg["gating_scoring"] == "stale":
            raise RunSkipped("gating_scoring stale remembers each sample's loss by its index, "
                             "which the pipeline's own batches carry and your streamed "
                             "splits do not")
        na = {d: "n/a" for d in decided + user_data.STREAM_DECIDES if d not in read}
        return RunData(streams.train, streams.validation, streams.test, streams.input_shape,
                       streams.num_classes, streams.steps_per_epoch, streams.batch_size,
                       None, na, prepared.evaluated_on)
    run_data = _batched(prepared.data, cfg, objective, dtype, seed,
                        {d: "n/a" for d in decided if d not in read})
    return replace(run_data, evaluated_on=prepared.evaluated_on, data_cached=prepared.cached)


def _batched(splits: Splits, cfg: dict, objective: Objective, dtype: str, seed: int,
             na: dict) -> RunData:
    splits = data.preprocess(splits, cfg["preprocessing"])
    train, val, test = batches.datasets(splits, cfg, dtype, seed, one_hot=objective.one_hot)
    return RunData(train, val, test, splits.input_shape, splits.num_classes,
                   math.ceil(len(splits.x_train) / cfg["batch_size"]), cfg["batch_size"],
                   len(splits.x_train), na)


def build_model(cfg: dict, run_data: "RunData | Splits", epochs: int,
                config_dir: "str | Path | None" = None,
                objective: Objective = CLASSIFICATION) -> BuiltModel:
    """Builds the run's network, quantizes it for float8 training if `internal` says so,
    wraps it for the run's method and compiles it."""
    if isinstance(run_data, Splits):  # arrays: the pipeline's batches of batch_size
        steps, samples, size = (math.ceil(len(run_data.x_train) / cfg["batch_size"]),
                                len(run_data.x_train), cfg["batch_size"])
    else:
        steps, samples, size = run_data.steps_per_epoch, run_data.num_samples, run_data.batch_size
    try:
        net = models.build(cfg["model"], run_data.input_shape, run_data.num_classes, cfg,
                           config_dir)
        shape = models.known_output_shape(net, run_data.input_shape)
        if shape is not None:  # else `fit` builds it on the data
            models.check_outputs(shape, run_data.num_classes, objective.classification,
                                 cfg["model"])
    except (models.ModelError, models.NotAModel) as exc:  # our check of what yours returned:
        # its traceback has no line of yours, so the message names your def
        named = type(exc)(f"{exc}{models.defined_words(cfg['model'], config_dir)}")
        named.plain = str(exc)  # the probe names the key path and the def in one bracket
        raise named from None
    if cfg["internal"] == "pre_quantization":
        net.quantize("float8")
    model = recipe.wrap(cfg, net, steps, epochs, samples)
    recipe.compile_model(model, cfg, steps, epochs, objective)
    if not net.built:  # built at its first step: its size is not known before
        return BuiltModel(model, net, None, None, steps)
    return BuiltModel(model, net, int(net.count_params()), models.train_step_flops(net, size),
                      steps)


def save_trained(net: keras.Model, folder: Path) -> Path:
    """Keeps the trained model as `model.keras`; a model Keras cannot serialize (a
    subclassed model whose `__init__` takes arguments and that has no `get_config`) as
    its weights, `model.weights.h5`, with a warning that says why and how to load them:
    the run's training is not lost to the save."""
    with lazy_tensorflow.left_out():  # Keras would import TensorFlow to ask about it
        try:
            net.save(folder / "model.keras")
            return folder / "model.keras"
        except NotImplementedError as exc:  # Keras's words for "no get_config"
            why = str(exc).strip().splitlines()
            (folder / "model.keras").unlink(missing_ok=True)
            net.save_weights(folder / "model.weights.h5")
            warnings.warn(f"greenscreen: {type(net).__name__} cannot be saved whole "
                          f"({' '.join(why[:4])}); its weights are in model.weights.h5: "
                          "build the model with your function and call load_weights on it",
                          RuntimeWarning, stacklevel=2)
            return folder / "model.weights.h5"


def versions() -> dict:
    """Library versions, the Keras backend's among them (its name under "backend")."""
    import numpy

    import greenscreen

    backend = keras.backend.backend()
    # str(): PyTorch's version is a str subclass that YAML's safe_dump cannot represent.
    return {"python": platform.python_version(), "backend": backend,
            backend: str(importlib.import_module(backend).__version__),
            "keras": keras.__version__, "numpy": numpy.__version__,
            "greenscreen": greenscreen.__version__}
