"""The run's checkpoint: the last finished epoch, written so that no kill can break it.

Keras's `BackupAndRestore` writes the weights and then the epoch in place; a
SIGKILL or a SIGTERM between or during those writes leaves a checkpoint that
cannot be resumed. Here each epoch's weights (the optimizer's state included)
go into a new folder, and only then does `latest.json` (replaced atomically)
point at it; older folders are removed after that. Whenever a process dies,
`latest.json` names a complete checkpoint or there is none.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import keras

from greenscreen.fileio import atomic_write_json

from ..runfolder import read_json

WEIGHTS = "model.weights.h5"


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the model after every epoch into `folder` (see the module docstring).

    Args:
        folder: The run's checkpoint folder.

    Example:

    ```python
    start = restore(model, folder)        # 0, or the epoch to resume from
    model.fit(x, y, epochs=50, initial_epoch=start, callbacks=[EpochCheckpoint(folder)])
    ```
    """

    def __init__(self, folder: "str | Path") -> None:
        super().__init__()
        self.folder = Path(folder)

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        target = self.folder / f"epoch-{done:05d}"
        shutil.rmtree(target, ignore_errors=True)  # a half-written one from a killed attempt
        target.mkdir(parents=True)
        self.model.save_weights(target / WEIGHTS)
        atomic_write_json(self.folder / "latest.json", {"epochs_done": done, "dir": target.name})
        for old in self.folder.glob("epoch-*"):
            if old.name != target.name:
                shutil.rmtree(old, ignore_errors=True)


def restore(model: keras.Model, folder: "str | Path") -> int:
    """Loads the last checkpoint into `model`; returns the epochs it had finished (0: none)."""
    folder = Path(folder)
    latest = read_json(folder / "latest.json")
    if latest is None:
        return 0
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)  # its state is in the file too
    model.load_weights(folder / latest["dir"] / WEIGHTS)
    return int(latest["epochs_done"])
