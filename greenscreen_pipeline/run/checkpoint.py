"""The run's checkpoint: the last finished epoch, written so that no kill can break it.

Keras's `BackupAndRestore` writes the weights and then the epoch in place; a
SIGKILL or a SIGTERM between or during those writes leaves a checkpoint that
cannot be resumed. Here each epoch's weights (the optimizer's state included)
go into a new folder, and only then does `latest.json` (replaced atomically)
point at it; older folders are removed after that. Whenever a process dies,
`latest.json` names a complete checkpoint or there is none.

The weights file holds no random state: Keras's `save_weights` leaves out its layers'
seed generators (Dropout's, a method's noise). They go beside it (`SEEDS`), so that a
resumed run draws what an uninterrupted one draws from its next epoch on; with the
batches of that epoch (`batches.ArrayBatches.start_at`) it trains as if never stopped.
"""

from __future__ import annotations

import math
import shutil
import time
import warnings
from pathlib import Path

import keras
import numpy as np

from greenscreen.fileio import atomic_write_json

from ..runfolder import read_json

WEIGHTS = "model.weights.h5"
SEEDS = "seed_states.npz"  # the model's random states, in `seed_states` order


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
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            # A diverged epoch's weights are NaN: kept, a retry (--retry-failed) resumed
            # from them past the epoch that diverged and recorded a NaN model as done.
            return
        done = epoch + 1
        target = self.folder / f"epoch-{done:05d}"
        shutil.rmtree(target, ignore_errors=True)  # a half-written one from a killed attempt
        target.mkdir(parents=True)
        self.model.save_weights(target / WEIGHTS)
        np.savez(target / SEEDS, *[keras.ops.convert_to_numpy(v) for v in
                                   seed_states(self.model)])
        atomic_write_json(self.folder / "latest.json", {"epochs_done": done, "dir": target.name})
        for old in self.folder.glob("epoch-*"):
            if old.name != target.name:
                shutil.rmtree(old, ignore_errors=True)


def restore(model: keras.Model, folder: "str | Path") -> int:
    """Loads the last checkpoint into `model`; returns the epochs it had finished (0: none).

    A checkpoint that cannot be loaded (a corrupt file, or weights of another model: your
    code changed before `--retry-failed`) is set aside, named in a warning, and the run
    starts from its first epoch; the energy its earlier attempts spent stays counted.
    """
    folder = Path(folder)
    try:
        latest = read_json(folder / "latest.json")
    except Exception as exc:  # Unreadable: a corrupt latest.json
        return _set_aside(folder, folder / "latest.json", exc)
    if latest is None:
        return 0
    weights = folder / str(latest.get("dir")) / WEIGHTS
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)  # its state is in the file too
    try:
        model.load_weights(weights)
    except Exception as exc:  # h5py's OSError, a shape mismatch's ValueError, ...
        return _set_aside(folder, weights, exc)
    done = int(latest["epochs_done"])
    _restore_seeds(model, weights.with_name(SEEDS), done)
    return done


def seed_states(model: keras.Model) -> list:
    """The model's random states (its layers' `SeedGenerator` states): the variables that
    are not its weights, in the model's own order."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _restore_seeds(model: keras.Model, path: Path, done: int) -> None:
    """Assigns the saved random states. The weights are loaded by then, so random states
    that cannot be restored never cost the run its epochs: a checkpoint written before
    they were saved resumes with fresh ones, as it did; one whose file is unreadable, or
    whose count no longer matches the model (your code lost or gained a Dropout), does
    too, with a warning that the run will not match an uninterrupted one exactly."""
    if not path.exists():
        return
    states = seed_states(model)
    try:
        with np.load(path) as saved:
            values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        if len(values) != len(states):
            raise ValueError(f"it holds {len(values)} random states; the model has "
                             f"{len(states)}")
    except Exception as exc:  # a truncated file's EOFError, a bad zip's BadZipFile, ...
        warnings.warn(f"greenscreen: the checkpoint's random states ({path}) cannot be "
                      f"restored ({type(exc).__name__}: {str(exc)[:200]}); the run resumes "
                      f"after epoch {done} with its weights and fresh random states "
                      "(dropout, a method's noise), so it will not match an uninterrupted "
                      "run exactly", RuntimeWarning, stacklevel=3)
        return
    for state, value in zip(states, values):
        state.assign(value)


def _set_aside(folder: Path, culprit: Path, exc: Exception) -> int:
    aside = folder.with_name(f"{folder.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
    folder.rename(aside)
    warnings.warn(f"greenscreen: the checkpoint {culprit} cannot be loaded "
                  f"({type(exc).__name__}: {str(exc)[:200]}); it is kept as {aside} and the "
                  "run starts again from its first epoch (the energy spent so far stays "
                  "counted)", RuntimeWarning, stacklevel=2)
    return 0
