"""Your own training loop (`settings.train: "module:function"`), measured like ours.

The function is called as `function(params, callbacks)` and returns a dict of metrics
that holds the objective (`val_loss`, or `test_loss`, ...). `callbacks` are for your own
`fit`: greenscreen's measurement (every epoch's energy into your logs, `logs.csv` and
`summary.json`) and a `keras.callbacks.BackupAndRestore` in the run's checkpoint folder,
so a killed run resumes from its last epoch when your loop passes them on.

The pipeline measures the whole call in any case: the attempt's energy covers your data
loading and model building too. Where your loop does not pass `callbacks` to `fit`
there are no per-epoch rows, and the run says so.

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


def train_own(entry: str, params: user_code.TrackedParams, folder: RunFolder,
              objective: Objective, timing: dict, source: str, config_dir: "str | Path",
              versions: dict, own_dimensions: list[str]) -> dict:
    """Calls your training function, measured; records results.json; returns the metrics.

    `own_dimensions`: your dimensions; those the function did not read are recorded."""
    function = user_code.load(entry, "train", config_dir)
    smi = SMICallback(log_dir=folder.path, source=source, resume=True)
    epochs = EpochsOnly(smi)
    backup = keras.callbacks.BackupAndRestore(str(folder.checkpoint_dir / "own"),
                                              delete_checkpoint=False)
    timing["fit_start"] = time.time()
    smi.on_train_begin()
    try:
        returned = function(params, [epochs, backup])
    finally:
        smi.on_train_end()
    timing["fit_end"] = timing["end"] = time.time()
    metrics = _metrics(returned, entry)
    tested = {k: v for k, v in metrics.items() if k.startswith("test_")}
    ranked_by = objective.run_value(tested, metrics, f"{entry} returned")
    unread = [dim for dim in own_dimensions if dim not in params.read]
    results = RunResults(tested.get("test_accuracy"), tested.get("test_loss"), None,
                         versions, timing, {k: [v] for k, v in metrics.items()}, {}, unread,
                         test_metrics=tested,
                         objective={**ranked_by, "per_epoch": epochs.epochs_seen > 0})
    folder.write_results(results)
    params.update(tested)
    folder.write_parameters(dict(params))
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
