"""Image data for the cascade command line: a CIFAR-10 pickle folder or a class-per-folder tree."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def load_folder(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if (path / "test_batch").exists():
        xs, ys = [], []
        for f in sorted(path.glob("data_batch_*")) + [path / "test_batch"]:
            with open(f, "rb") as fh:
                batch = pickle.load(fh, encoding="bytes")
            xs.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[b"labels"]))
        return np.concatenate(xs).transpose(0, 2, 3, 1).astype("float32") / 255, np.concatenate(ys)
    if path.is_dir():
        import keras

        ds = keras.utils.image_dataset_from_directory(path, image_size=(32, 32), batch_size=None,
                                                      shuffle=False, verbose=False)
        xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
        return np.stack(xs).astype("float32") / 255, np.asarray(ys)
    raise ValueError(f"--filepath={str(path)!r} is not valid; allowed: a CIFAR-10 python folder "
                     "(data_batch_1..5, test_batch) or a folder with one subfolder per class")
