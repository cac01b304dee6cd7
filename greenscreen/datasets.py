"""Image datasets from files: a CIFAR-10 python pickle folder, or one subfolder per class.

Shared by the sweep pipeline and the cascade command line. Images come back as
float32 NHWC arrays in [0, 1] with integer labels.
"""

from __future__ import annotations

import os
import pickle
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .validation import invalid


class DatasetError(ValueError):
    """A dataset cannot be loaded; the message says what to do."""


# What a CIFAR-10 batch holds beyond plain dicts, lists, bytes, str and ints (which
# pickle builds without looking anything up): NumPy arrays, through NumPy's own
# reconstruct functions (numpy.core before NumPy 2, numpy._core since; _frombuffer
# for protocol 5), and the latin-1 bytes encoding that protocol-2 pickles written
# by Python 3 use.
_CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _CifarUnpickler(pickle.Unpickler):
    """Builds only what a CIFAR-10 batch holds, so a crafted file cannot run code."""

    def __init__(self, fh, path: Path) -> None:
        super().__init__(fh, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in _CIFAR_GLOBALS:
            raise DatasetError(
                f"{self.path} is not a plain CIFAR-10 batch: it asks to load {module}.{name}, "
                "and only NumPy arrays, dicts, lists, bytes, str and ints are allowed (a "
                "pickle that names other objects can run code when it is read)")
        return super().find_class(module, name)


def read_cifar_batch(path: Path, labels: bytes = b"labels") -> dict:
    """One CIFAR-10 python batch file (CIFAR-100's: `labels` b"fine_labels"), read with
    the restricted unpickler."""
    with open(path, "rb") as fh:
        try:
            batch = _CifarUnpickler(fh, path).load()
        except DatasetError:
            raise
        except EOFError:  # the pickle's end never came
            empty = os.fstat(fh.fileno()).st_size == 0
            raise DatasetError(f"{path} is not a readable CIFAR-10 batch: "
                               f"{'the file is empty' if empty else 'truncated'}") from None
        except Exception as exc:  # truncated inside an argument, or not a pickle at all
            raise DatasetError(f"{path} is not a readable CIFAR-10 batch: {exc}") from exc
    if not isinstance(batch, dict) or b"data" not in batch or labels not in batch:
        raise DatasetError(f"{path} is not a CIFAR batch: expected a dict with b'data' and "
                           f"{labels!r}")
    return batch


def check_cifar_batch(path: Path) -> None:
    """A batch file read as `load_cifar10_dir` reads it (the restricted unpickler, so a
    crafted file runs no code; then its arrays' shapes and values), the arrays dropped:
    DatasetError where a run would meet one."""
    try:
        _cifar_arrays(path, read_cifar_batch(path))
    except OSError as exc:
        raise DatasetError(f"{path} cannot be read: {exc.strerror or exc}") from None


# A training batch's name: data_batch_1, data_batch_2, ... (data_batch_01 or a copy such as
# data_batch_1.bak is no batch, so it is neither read twice nor read out of order).
_TRAIN_BATCH = re.compile(r"data_batch_([1-9][0-9]*)")


def cifar10_files(path: str) -> list[Path]:
    """A CIFAR-10 python folder's batches, data_batch_1..N in number order and test_batch;
    DatasetError naming what is missing: no training batch (and any file that looks like
    one but is not named so), a number skipped (data_batch_3 of 1, 2, 4, 5: an unpacking
    cut short would otherwise train on four fifths of the data and say nothing), or
    test_batch."""
    folder = Path(path)
    found = sorted(folder.glob("data_batch_*"))
    numbered = sorted((int(m.group(1)), f) for f in found
                      if (m := _TRAIN_BATCH.fullmatch(f.name)))
    test = folder / "test_batch"
    missing = ([] if numbered else ["data_batch_*"]) + _skipped([n for n, _ in numbered]) + (
        [] if test.exists() else [test.name])
    if missing:
        odd = [f.name for f in found if not _TRAIN_BATCH.fullmatch(f.name)]
        said = (f"; {', '.join(odd[:3])} {'is' if len(odd) == 1 else 'are'} not named as a "
                "batch (data_batch_1, data_batch_2, ...)") if odd and not numbered else ""
        raise DatasetError(f"{folder} is not a CIFAR-10 python folder: expected data_batch_1..5 "
                           f"and test_batch (missing: {', '.join(missing)}){said}")
    return [f for _, f in numbered] + [test]


def _skipped(numbers: list[int], shown: int = 5) -> list[str]:
    """The batch names missing below the highest of `numbers` (sorted, distinct): the
    first `shown`, then how many more and the highest found (a stray data_batch_20240101
    is not a list of twenty million names)."""
    gaps, total, previous = [], 0, 0
    for n in numbers:
        total += n - previous - 1
        gaps += [f"data_batch_{k}" for k in range(previous + 1, min(n, previous + 1 + shown))]
        previous = n
    if total > shown:
        return gaps[:shown] + [f"{total - shown} more below data_batch_{numbers[-1]}"]
    return gaps[:shown]


def check_cifar10_dir(path: str) -> None:
    """A CIFAR-10 python folder checked as `load_cifar10_dir` reads it: its batches there,
    each read in turn and dropped (`check_cifar_batch`). DatasetError."""
    for f in cifar10_files(path):
        check_cifar_batch(f)


def load_cifar10_dir(path: str) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 in its python pickle format: data_batch_1..5 and test_batch."""
    return _images_of([_cifar_arrays(f, read_cifar_batch(f)) for f in cifar10_files(path)])


def load_cifar100_dir(path: str) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-100 in its python pickle format (`train` and `test`, fine labels 0..99), read
    with the restricted unpickler as CIFAR-10's batches are."""
    parts = []
    for name in ("train", "test"):
        f = Path(path) / name
        if not f.is_file():
            raise DatasetError(f"{path} is not a CIFAR-100 python folder: no {name} file")
        batch = read_cifar_batch(f, labels=b"fine_labels")
        parts.append(_cifar_arrays(f, {b"data": batch[b"data"],
                                       b"labels": batch[b"fine_labels"]}, classes=100))
    return _images_of(parts)


def _images_of(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([p[0] for p in parts]).transpose(0, 2, 3, 1).astype("float32") / 255.0
    return x, np.concatenate([p[1] for p in parts])


def _cifar_arrays(path: Path, batch: dict, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """A batch's images (N x 3 x 32 x 32) and labels, after checking b'data' holds one row
    of 3072 pixel values per label and each label is a class (0 .. classes - 1: a -1 was
    taken for the last class, a 10 for an eleventh)."""
    try:
        labels = np.asarray(batch[b"labels"])
        data = np.asarray(batch[b"data"])
    except Exception as exc:  # ragged lists
        raise DatasetError(f"{path}: b'data' and b'labels' are not arrays ({exc})") from None
    if labels.ndim != 1 or not (labels.size == 0 or np.issubdtype(labels.dtype, np.integer)):
        raise DatasetError(f"{path}: b'labels' is {labels.dtype} of shape {labels.shape}, "
                           "expected a list of integer class labels")
    if data.ndim != 2 or data.shape[1] != 3072:
        shape = f"{data.shape[1]} columns" if data.ndim == 2 else f"shape {data.shape}"
        raise DatasetError(f"{path}: b'data' has {shape}, expected 3072 (3 x 32 x 32); "
                           f"{len(labels)} labels")
    if len(data) != len(labels):
        raise DatasetError(f"{path}: b'data' has {len(data)} rows (images) but there are "
                           f"{len(labels)} labels; expected one row of 3072 values per label")
    if not np.issubdtype(data.dtype, np.integer) or (data.size and (
            data.min() < 0 or data.max() > 255)):
        raise DatasetError(f"{path}: b'data' holds {data.dtype} values, expected pixel "
                           "values 0..255 (uint8)")
    outside = labels[(labels < 0) | (labels >= classes)] if labels.size else labels
    if outside.size:
        shown = ", ".join(str(v) for v in np.unique(outside)[:5])
        raise DatasetError(f"{path}: {outside.size} label(s) outside 0..{classes - 1} "
                           f"({shown}); expected class labels 0..{classes - 1}")
    return data.astype(np.uint8).reshape(-1, 3, 32, 32), labels.astype(np.int64)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


class ImageFiles:
    """The images of a one-subfolder-per-class folder, decoded only when indexed.

    Behaves like the float32 NHWC array it stands for, so an ImageNet-sized
    folder never has to fit in memory: `len`, `shape`, `files[rows]` (decodes
    those rows: resized to `image_size`, in [0, 1], then `transform` applied)
    and `take(rows, axis=0)` (a lazy subset).

    Args:
        paths: Image files, one per sample.
        image_size: Height and width every image is resized to.
        transform: Applied to each decoded batch (e.g. standardisation), or None.
    """

    def __init__(self, paths: list, image_size: int, transform=None) -> None:
        self.paths, self.image_size, self.transform = list(paths), image_size, transform

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple:
        return (len(self.paths), self.image_size, self.image_size, 3)

    def take(self, rows, axis: int = 0) -> "ImageFiles":
        if axis != 0:
            raise invalid("axis", axis, "0")
        return ImageFiles([self.paths[i] for i in np.asarray(rows)], self.image_size,
                          self.transform)

    def with_transform(self, transform) -> "ImageFiles":
        return ImageFiles(self.paths, self.image_size, transform)

    def __getitem__(self, rows) -> np.ndarray:
        import keras

        picked = [self.paths[i] for i in np.atleast_1d(np.arange(len(self))[rows])]
        size = (self.image_size, self.image_size)
        # Decoded by DECODERS threads (PIL lets go of the GIL while it decodes), in order:
        # the batch is the same whichever thread finishes first.
        decoded = _decoders().map(lambda path: _decode(keras, path, size), picked)
        batch = np.stack(list(decoded)) / 255.0
        return batch if self.transform is None else self.transform(batch)


# Threads that decode one batch's image files at once: 4, or the CPUs this process may use.
DECODERS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)
_pool: ThreadPoolExecutor | None = None  # the process's decoding threads, from the first batch
_pool_lock = threading.Lock()


def _decoders() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(DECODERS, thread_name_prefix="greenscreen-decode")
        return _pool


def _forget_pool_in_child() -> None:
    """A forked child has the pool's object but none of its threads (and perhaps a lock
    held at the fork): it starts its own at its first batch."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def _decode(keras, path, size: tuple) -> np.ndarray:
    """One image file as a float32 HWC array in 0..255; DatasetError naming the file if it
    is not an image PIL can read, or not one of 8 bits per channel."""
    from PIL import Image

    try:
        with Image.open(path) as header:  # the header only: no pixel is decoded here
            mode = header.mode
        if mode in WIDE_MODES:  # PIL's RGB conversion clips them: 99 % of a 16-bit PNG white
            raise DatasetError(f"{path} has {WIDE_MODES[mode]} pixels (PIL mode {mode}), "
                               "which would be clipped to 8 bits; convert it to 8 bits per "
                               "channel, or remove it")
        return keras.utils.img_to_array(keras.utils.load_img(
            path, color_mode="rgb", target_size=size), dtype="float32")
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise  # their message names the file already
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        if isinstance(exc, DatasetError):
            raise
        why = re.sub(r" <_io\.\w+ object at 0x[0-9a-f]+>| '[^']*'", "", str(exc)) or \
            type(exc).__name__
        raise DatasetError(f"{path} cannot be read as an image (PIL: {why}); remove or "
                           "replace the file") from None


# PIL's modes of more than 8 bits per channel, which its conversion to RGB clips.
WIDE_MODES = {"I;16": "16-bit", "I;16B": "16-bit", "I;16L": "16-bit", "I;16N": "16-bit",
              "I": "32-bit integer", "F": "32-bit floating-point"}


def image_folder(path: str, image_size: int) -> tuple[ImageFiles, np.ndarray]:
    """One subfolder per class (as in ImageNet subsets): lazy images and integer labels.

    Classes are the sorted subfolder names; files are taken in sorted order. Hidden
    folders and files (names starting with '.', e.g. .ipynb_checkpoints) are ignored; a
    class folder with no images is an error, not a class no sample has.
    """
    paths, labels = [], []
    for label, sub in enumerate(image_classes(path)):
        files = sorted(_images(sub))
        paths += files
        labels += [label] * len(files)
    return ImageFiles(paths, image_size), np.asarray(labels, dtype=np.int64)


def image_classes(path: str) -> list[Path]:
    """An image folder's class folders, sorted, each checked to hold an image, as
    `image_folder` reads them; cheap: each class folder is listed, its entries looked at
    until the first image, and no image is opened. DatasetError naming a class folder
    without images, or the folder where it has no class folder with images."""
    folder = Path(path)
    classes = sorted(d for d in folder.iterdir() if d.is_dir() and not _hidden(d)) \
        if folder.is_dir() else []
    empty = [sub for sub in classes if next(_images(sub), None) is None]
    if empty and len(classes) > 1:
        raise DatasetError(f"class folder {empty[0]} holds no images ({', '.join(IMAGE_SUFFIXES)})"
                           f": every subfolder of {path} is a class; add its images, or "
                           "remove it or rename it to start with '.' to leave it out")
    if empty or not classes:
        raise DatasetError(f"{path!r} is not a folder with one subfolder per class holding "
                           f"images ({', '.join(IMAGE_SUFFIXES)})")
    if len(classes) == 1:  # trains to accuracy 1.0 and says nothing
        raise DatasetError(f"{path!r} holds one class folder ({classes[0].name}); a "
                           "classifier needs two or more: every subfolder is a class")
    return classes


def image_counts(path: str) -> dict[str, int]:
    """Each class folder's name and how many images it holds, as `image_folder` reads them
    (every class folder listed whole; no image opened). DatasetError as `image_classes`."""
    return {sub.name: sum(1 for _ in _images(sub)) for sub in image_classes(path)}


def _images(sub: Path):
    """A class folder's images, in listing order, one at a time: the files with an image
    suffix whose names do not start with '.'."""
    return (f for f in sub.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES
            and not _hidden(f) and f.is_file())


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def load_image_folder(path: str, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The whole folder decoded into memory (for small folders, e.g. the cascade's)."""
    files, labels = image_folder(path, image_size)
    return files[:], labels
