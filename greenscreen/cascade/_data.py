"""Inputs of the cascade command line: a CIFAR-10 pickle folder or a class-per-folder
tree, and Keras model files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..datasets import load_cifar10_dir, load_image_folder
from ..validation import invalid


def load_folder(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if (path / "test_batch").exists():
        return load_cifar10_dir(str(path))
    if path.is_dir():
        return load_image_folder(str(path), 32)
    raise invalid("--filepath", str(path), "a CIFAR-10 python folder (data_batch_1..5, "
                  "test_batch) or a folder with one subfolder per class")


class ModelRefused(ValueError):
    """A model file that safe mode will not load; the message says why and what to do."""


def load_model(path: str):
    """A `.keras` model file, loaded with Keras's `safe_mode=True`.

    Safe mode refuses to deserialise Python code stored in the file (a `Lambda`
    layer's function): loading such a file would run whatever it holds.
    """
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" not in str(exc) and "unsafe" not in str(exc).lower():
            raise
        raise ModelRefused(
            f"{path} was refused: it stores Python code (e.g. a Lambda layer), which runs "
            "when the file is loaded, and files are loaded in Keras's safe mode. Rebuild the "
            "model with registered layers (@keras.saving.register_keras_serializable), or, if "
            "you trust the file, load it in Python with "
            "keras.saving.load_model(path, safe_mode=False) and save its weights.") from None
