"""Image datasets from files: a CIFAR-10 python pickle folder, or one subfolder per class.

Shared by the sweep pipeline and the cascade command line. Images come back as
float32 NHWC arrays in [0, 1] with integer labels.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


class DatasetError(ValueError):
    """A dataset cannot be loaded; the message says what to do."""


def load_cifar10_dir(path: str) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 in its python pickle format: data_batch_1..5 and test_batch."""
    folder = Path(path)
    files = sorted(folder.glob("data_batch_*")) + [folder / "test_batch"]
    missing = [f.name for f in files if not f.exists()]
    if not files[:-1] or missing:
        raise DatasetError(f"{folder} is not a CIFAR-10 python folder: expected data_batch_1..5 "
                           f"and test_batch (missing: {', '.join(missing) or 'data_batch_*'})")
    xs, ys = [], []
    for f in files:
        with open(f, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(batch[b"labels"], dtype=np.int64))
    x = np.concatenate(xs).transpose(0, 2, 3, 1).astype("float32") / 255.0
    return x, np.concatenate(ys)


def load_image_folder(path: str, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """One subfolder per class (as in ImageNet subsets), through Keras's directory loader."""
    import keras

    if not Path(path).is_dir():
        raise DatasetError(f"{path!r} is not a folder with one subfolder per class")
    ds = keras.utils.image_dataset_from_directory(
        path, image_size=(image_size, image_size), batch_size=None, shuffle=False,
        label_mode="int", verbose=False)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.stack(xs).astype("float32") / 255.0, np.asarray(ys, dtype=np.int64)
