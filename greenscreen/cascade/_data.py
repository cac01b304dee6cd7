"""Image data for the cascade command line: a CIFAR-10 pickle folder or a class-per-folder tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..datasets import load_cifar10_dir, load_image_folder


def load_folder(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if (path / "test_batch").exists():
        return load_cifar10_dir(str(path))
    if path.is_dir():
        return load_image_folder(str(path), 32)
    raise ValueError(f"--filepath={str(path)!r} is not valid; allowed: a CIFAR-10 python folder "
                     "(data_batch_1..5, test_batch) or a folder with one subfolder per class")
