"""The callbacks that keep a stop (SIGTERM, SIGINT) from falling between an epoch's
logs.csv row and its checkpoint: `HoldSignals` first in a fit's callbacks, `StopOnSignal`
after the checkpoint's. Used by the pipeline's own fit (`training`) and given to your own
loop (`own_loop`, around its `BackupAndRestore`); here, so that both import them."""

from __future__ import annotations

import keras

from . import interrupt


class HoldSignals(keras.callbacks.Callback):
    """First in the fit's callbacks: from the start of an epoch's end, a SIGTERM or SIGINT
    waits (`interrupt.hold`) until `StopOnSignal`, after the epoch's checkpoint, raises it.
    So a stop never falls between the epoch's logs.csv row and its checkpoint, which would
    make the resume train that epoch again and overwrite its row."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        interrupt.hold()


class StopOnSignal(keras.callbacks.Callback):
    """Ends the fit after an epoch, checkpoint included, when a signal asked the run to
    stop: one held during the epoch's end (`HoldSignals`), or one whose KeyboardInterrupt
    was swallowed where it was raised (`interrupt`)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        interrupt.release()
