"""Your own training loop (`settings.train: "module:function"`), measured like ours.

The function is called as `function(params, callbacks)` and returns a dict of metrics
that holds the objective (`val_loss`, or `test_loss`, ...). `callbacks` are for your own
`fit`: greenscreen's measurement (every epoch's energy into your logs, `logs.csv` and
`summary.json`) and a `keras.callbacks.BackupAndRestore` in the run's checkpoint folder,
so a killed run resumes from its last epoch when your loop passes them on; around them,
`stop_callbacks`' hold, so a SIGTERM or SIGINT at an epoch's end waits until the backup
has saved that epoch (its logs.csv row and its backup go together).

The pipeline measures the whole call in any case: the attempt's energy covers your data
loading and model building too. Where your loop does not pass `callbacks` to `fit`
there are no per-epoch rows, and the run says so.

What the run records is what ran: parameters.yaml and results.json name your loop
(`train: "module:function"`), and a built-in dimension your loop did not read from
`params` (model, dataset, optimizer, lr, batch_size, method, ...: the pipeline's own data,
model, compile and fit, which your loop replaces) is recorded as "n/a", never as the
baseline's value it was handed. Only `precision` is kept: the pipeline sets Keras's
global dtype policy before calling your loop, so it applies whether read or not.

Example (`loop.py` next to config.yaml, `settings: {train: "loop:train"}`):

```python
import keras

def train(params, callbacks):
    x, y = make_data(params["seed"])
    model = keras.Sequential([keras.layers.Dense(params["units"]), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    history = model.fit(x, y, validation_split=0.2, epochs=params["epochs"],
                        callbacks=callbacks, verbose=0)
    return {"val_loss": history.history["val_loss"][-1]}
```
"""

from __future__ import annotations

import time
from pathlib import Path

import keras

from greenscreen import SMICallback

from .. import user_code
from ..objective import Objective
from ..records import RunResults
from ..runfolder import RunFolder
from ..space import DIMENSIONS
from . import interrupt, recipe
from .stop_callbacks import HoldSignals, StopOnSignal

# The built-in dimensions the pipeline applies around your loop (`recipe.set_precision`
# before the call); every other one belongs to the pipeline's own fit your loop replaces.
APPLIED = ("precision",)
NOT_APPLICABLE = "n/a"  # as the pipeline records a dimension that does not apply


class LoopParams(user_code.TrackedParams):
    """The params your loop gets: a loop that reads them whole (`**params`, `dict(params)`,
    `.items()`, a loop over the keys) is taken to have read every key, so that nothing it
    may have used is recorded as "n/a". (Overriding `__iter__` also sends `dict(params)`
    and `**params` through `keys` and `__getitem__`, which a plain dict subclass skips.)"""

    def _read_all(self) -> None:
        self.read.update(dict.keys(self))

    def __iter__(self):
        self._read_all()
        return super().__iter__()

    def keys(self):
        self._read_all()
        return super().keys()

    def items(self):
        self._read_all()
        return super().items()

    def values(self):
        self._read_all()
        return super().values()

    def copy(self) -> dict:
        self._read_all()
        return dict(super().items())


class EpochsOnly(keras.callbacks.Callback):
    """Passes your fit's epochs (and its evaluation batches) on to the pipeline's
    `SMICallback`, whose training window the pipeline itself opens around your whole
    function: so the whole call is measured, whether or not your loop calls fit."""

    def __init__(self, smi: SMICallback) -> None:
        super().__init__()
        self.smi = smi
        self.epochs_seen = 0

    def set_model(self, model) -> None:
        super().set_model(model)
        self.smi.set_model(model)

    def on_epoch_begin(self, epoch, logs=None):
        self.smi.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_seen += 1
        self.smi.on_epoch_end(epoch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.smi.on_train_batch_end(batch, logs)


def skip_reason(cfg: dict) -> str | None:
    """Why your loop cannot run with `cfg`, or None. Only the precision rule applies: the
    method, augmentation and quantization rules are about the pipeline's own fit (and a
    final run of your loop gets "n/a" for the dimensions its run did not read)."""
    return recipe.skip_reason({"method": "standard", "augmentation": "None",
                               "internal": "None", "precision": cfg["precision"]})


def not_run(params: user_code.TrackedParams) -> dict[str, str]:
    """The built-in dimensions your loop did not read and the pipeline did not apply, each
    "n/a": recorded so, they name no model, dataset or optimizer that never ran."""
    return {dim: NOT_APPLICABLE for dim in dict.keys(params)  # `in params` would read it
            if dim in DIMENSIONS and dim not in params.read and dim not in APPLIED}


def recorded(params: user_code.TrackedParams, entry: str, **more) -> dict:
    """parameters.yaml's content: the run's params with `not_run`'s "n/a", the loop that
    ran and `more`; copied through dict's own methods, which mark nothing read."""
    return {**dict(dict.items(params)), **not_run(params), "train": entry, **more}


def train_own(entry: str, params: LoopParams, folder: RunFolder,
              objective: Objective, timing: dict, meter: dict, config_dir: "str | Path",
              versions: dict, own_dimensions: list[str]) -> dict:
    """Calls your training function, measured; records results.json; returns the metrics.

    parameters.yaml and results.json name the loop (`train`); parameters.yaml has "n/a" for
    each built-in dimension the function did not read (`not_run`). `own_dimensions`: your
    dimensions; those the function did not read are recorded in results.json."""
    function = user_code.load(entry, "train", config_dir)
    smi = SMICallback(log_dir=folder.path, resume=True, **meter)
    epochs = EpochsOnly(smi)
    backup = keras.callbacks.BackupAndRestore(str(folder.checkpoint_dir / "own"),
                                              delete_checkpoint=False)
    timing["fit_start"] = time.time()
    smi.on_train_begin()
    try:
        # A stop is held from the epoch's end until the backup has saved it (HoldSignals
        # ... StopOnSignal), so an epoch's logs.csv row and its backup go together.
        returned = function(params, [HoldSignals(), epochs, backup, StopOnSignal()])
    finally:  # a stop, a fault, or one your loop caught inside a hold: the hold ends (a warm
        interrupt.unhold()  # worker goes on to its next run, and hears its signals)
        smi.on_train_end()
        # What ran, also when your loop failed part-way: the built-in dimensions read so far.
        folder.write_parameters(recorded(params, entry))
    timing["fit_end"] = timing["end"] = time.time()
    where = user_code.defined_at(function)  # as the probe's messages name your def
    named = entry + (f" (def at {where})" if where else "")
    metrics = _metrics(returned, named)
    tested = {k: v for k, v in metrics.items() if k.startswith("test_")}
    diverged = objective.not_finite(tested, metrics)
    if diverged:  # as the built-in path says of a NaN loss, not "returned val_loss; allowed"
        raise recipe.Diverged(f"{entry} returned {diverged}")
    ranked_by = objective.run_value(tested, metrics, f"{named} returned")
    unread = [dim for dim in own_dimensions if dim not in params.read]
    # What ran is your loop's: the pipeline compiled no loss (settings.loss is not
    # recorded as if it had) and evaluated no split (test figures only where yours are).
    results = RunResults(tested.get("test_accuracy"), tested.get("test_loss"), None,
                         versions, timing, {k: [v] for k, v in metrics.items()}, {}, unread,
                         test_metrics=tested,
                         objective={**ranked_by, "loss": None,
                                    "per_epoch": epochs.epochs_seen > 0},
                         evaluated_on="test" if tested else "none", train=entry)
    folder.write_results(results)
    folder.write_parameters(recorded(params, entry, **tested))
    return results.metrics


def _metrics(returned: object, entry: str) -> dict[str, float]:
    if isinstance(returned, keras.callbacks.History):  # its last epoch's logs
        returned = {k: v[-1] for k, v in returned.history.items() if v}
    if not isinstance(returned, dict):
        raise TypeError(f"{entry} returned a {type(returned).__name__}; allowed: a dict of "
                        "metrics, e.g. {'val_loss': 0.12}, or the History of its fit")
    out = {}
    for key, value in returned.items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            continue  # not a number: not a metric
    return out
