"""A warm worker's dataset cache: a built-in dataset loaded and split once per worker.

Every run of a sweep splits a built-in dataset with the sweep's seed (`settings.seed`),
so runs with the same dataset, `data_path`, `image_size` and `partitioning` train on the
same splits. A warm worker (run/worker.py) keeps the last such splits in this module and
hands them to the next run with the same key instead of loading and splitting again:
for cifar10 that is most of a run's set-up. Preprocessing and batching stay per run (they
depend on the run's configuration and are cheap next to loading).

Only one entry is kept, so a worker's memory holds at most one dataset beside the run's
own copies. The cached arrays are made read-only: a run that tried to change them in place
would fail loudly instead of changing what the next run trains on (preprocessing and the
batches make new arrays). Your own dataset functions are not cached: they are called with
each run's parameters and may return anything. A fresh run process (`isolate_runs`) starts
with an empty cache.
"""

from __future__ import annotations

import numpy as np

from . import data

Key = tuple[str, str, int, str, int]
_last: "tuple[Key, data.Splits] | None" = None


def built_in(name: str, data_path: str, image_size: int, partitioning: str,
             seed: int) -> tuple[data.Splits, bool]:
    """The splits of a built-in dataset, and whether they came from this worker's cache.

    Args:
        name: The dataset (`digits`, `cifar10_dir`, `image_folder`, a keras.datasets name).
        data_path: settings.data_path (cifar10_dir, image_folder).
        image_size: settings.image_size (image_folder).
        partitioning: The run's 'train-val-test' percentages.
        seed: The split's seed: the sweep's, the same for every run.

    Returns:
        (splits, cached): read-only splits, and True when an earlier run in this process
        loaded them.
    """
    global _last
    key = (name, data_path, image_size, partitioning, seed)
    if _last is not None and _last[0] == key:
        return _last[1], True
    _last = None  # the old entry goes before the new one is loaded: one dataset at a time
    x, y = data.load(name, data_path, image_size)
    splits = data.split(x, y, partitioning, seed)
    for name_ in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        array = getattr(splits, name_)
        if isinstance(array, np.ndarray):  # an image folder's ImageFiles decode on demand
            array.setflags(write=False)
    _last = (key, splits)
    return splits, False


def clear() -> None:
    """Forgets the cached splits (tests; a worker never needs to)."""
    global _last
    _last = None
