"""Datasets, stratified seeded splits, and preprocessing fitted on the training split only.

Images come back as float32 NHWC arrays in [0, 1] and integer labels. An image
folder comes back as `ImageFiles`, which decodes images only when a batch is
indexed, so folders larger than memory work; its preprocessing statistics are
estimated from a seeded sample of the training split.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from greenscreen.datasets import (
    DatasetError,
    ImageFiles,
    image_folder,
    load_cifar10_dir,
    load_cifar100_dir,
)
from greenscreen.validation import invalid

# dataset: where keras.datasets caches it under ~/.keras/datasets, today's Keras's layout
# first (Keras 3.15 keeps CIFAR's folder inside "<name>-target"), then older versions'.
KERAS_FILES = {
    "mnist": ("mnist.npz",),
    "fashion_mnist": ("fashion-mnist",),
    "cifar10": ("cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py"),
    "cifar100": ("cifar-100-python-target/cifar-100-python", "cifar-100-python"),
}
# CIFAR's folders are read here, with the restricted unpickler: Keras's own load_data
# looks only where its version caches, and downloads where it finds nothing there.
CIFAR_READERS = {"cifar10": load_cifar10_dir, "cifar100": load_cifar100_dir}


DataError = DatasetError  # a dataset cannot be loaded; the message says what to do


@dataclass
class Splits:
    """Train/validation/test arrays; `num_classes` is a regression's number of outputs."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])


def load(name: str, data_path: str = "", image_size: int = 32) -> tuple:
    """All samples of a dataset, as (x in [0, 1] NHWC float32, y int); for image_folder,
    x is an `ImageFiles` that decodes images batch by batch."""
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()  # ships inside scikit-learn: no download
        return (d.images[..., None] / 16.0).astype("float32"), d.target.astype("int64")
    if name == "cifar10_dir":
        return load_cifar10_dir(data_path)
    if name == "image_folder":
        return image_folder(data_path, image_size)
    if name in KERAS_FILES:
        return load_keras_cached(name)
    raise invalid("dataset", name, f"digits, cifar10_dir, image_folder, "
                  f"{', '.join(KERAS_FILES)}", DataError)


def keras_cache() -> Path:
    """The folder keras.datasets caches in (KERAS_HOME, else ~/.keras)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def cached(name: str) -> Path | None:
    """Where dataset `name` (of KERAS_FILES) lies in the Keras cache, or None."""
    return next((keras_cache() / f for f in KERAS_FILES[name]
                 if (keras_cache() / f).exists()), None)


def not_cached(name: str) -> str:
    """Why dataset `name` cannot be loaded here, and what to do."""
    return (f"dataset={name!r} is not cached in {keras_cache()} and nothing is downloaded "
            f"here; run keras.datasets.{name}.load_data() once on a machine with internet "
            "and copy the cache, or use dataset digits")


def load_keras_cached(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A keras.datasets dataset, only if it is already in the local cache (no download)."""
    import keras

    found = cached(name)
    if found is None:
        raise DataError(not_cached(name))
    if name in CIFAR_READERS:
        return CIFAR_READERS[name](str(found))
    (x1, y1), (x2, y2) = getattr(keras.datasets, name).load_data()
    x = np.concatenate([x1, x2]).astype("float32") / 255.0
    x = x[..., None] if x.ndim == 3 else x
    return x, np.concatenate([y1, y2]).reshape(-1).astype(np.int64)


def split(x: np.ndarray, y: np.ndarray, partitioning: str, seed: int,
          stratify: bool = True) -> Splits:
    """Seeded train/validation/test split, e.g. partitioning '80-10-10'; stratified by the
    class labels `y` unless `stratify` is False (a regression's targets)."""
    from sklearn.model_selection import train_test_split

    train, val, test = (int(p) for p in partitioning.split("-"))
    # Indices are split, so arrays and lazy ImageFiles split the same way (`take`).
    try:
        i_tr, i_rest = train_test_split(np.arange(len(y)), train_size=train / 100,
                                        stratify=y if stratify else None, random_state=seed)
        i_va, i_te = train_test_split(i_rest, test_size=test / (val + test),
                                      stratify=y[i_rest] if stratify else None,
                                      random_state=seed)
    except ValueError as exc:  # too few samples: say how many the split needs, not sklearn
        few = too_few(y, partitioning, stratify)
        if few is None:
            raise
        raise few from exc
    return Splits(x.take(i_tr, axis=0), y[i_tr], x.take(i_va, axis=0), y[i_va],
                  x.take(i_te, axis=0), y[i_te], outputs(y, classification=stratify))


def least_samples(partitioning: str) -> int:
    """Samples of each class (all samples, unstratified) that surely split by `partitioning`:
    each part gets at least one of every class, and the validation + test part at least two
    (its own stratified split needs them)."""
    train, val, test = (int(p) for p in partitioning.split("-"))
    return max(2, -(-100 // train), -(-100 // val), -(-100 // test), -(-200 // (val + test)))


def too_few(y: np.ndarray, partitioning: str, stratify: bool) -> DataError | None:
    """The split's failure in words: how many samples there are and how many it needs;
    None where there are that many (then sklearn's own message stands)."""
    need = least_samples(partitioning)
    if not stratify or not len(y):
        return None if len(y) >= need else DataError(
            f"{len(y)} samples are too few for the {partitioning} split (partitioning); "
            f"allowed: at least {need} samples for the {partitioning} split")
    classes, counts = np.unique(y, return_counts=True)
    few = [f"class {c}: {n}" for c, n in zip(classes.tolist(), counts.tolist()) if n < need]
    if not few:
        return None
    listed = ", ".join(few[:10]) + (" ..." if len(few) > 10 else "")
    return DataError(f"{len(y)} samples of {len(classes)} classes are too few for the "
                     f"stratified {partitioning} split (partitioning; {listed}); allowed: at "
                     f"least {need} samples of each class for the {partitioning} split")


def outputs(y: np.ndarray, classification: bool) -> int:
    """What a model's `num_classes` is: the classes of integer labels, or a regression's
    outputs per sample (1 for one target)."""
    if classification:
        return int(y.max()) + 1
    return 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))


def preprocess(splits: Splits, method: str) -> Splits:
    """Per-feature statistics from the training split only, applied to all three splits."""
    if method in ("None", None):
        return splits
    lazy = isinstance(splits.x_train, ImageFiles)
    xt = _real(stats_sample(splits.x_train) if lazy else splits.x_train)
    if method == "standardization":
        center, scale = xt.mean(axis=0), xt.std(axis=0)
    elif method == "robust_scaling":
        q1, center, q3 = np.percentile(xt, [25, 50, 75], axis=0)
        scale = q3 - q1
    elif method == "minmax":
        center, scale = xt.min(axis=0), xt.max(axis=0) - xt.min(axis=0)
    else:
        raise invalid("preprocessing", method, "None, standardization, robust_scaling, "
                      "minmax", DataError)
    scale = np.where(scale > 1e-8, scale, 1.0)  # constant pixels (digit borders) stay finite

    def apply(a):
        return ((_real(a) - center) / scale).astype("float32")

    if lazy:
        def lazy_apply(files):
            return files.with_transform(apply)
        return Splits(lazy_apply(splits.x_train), splits.y_train, lazy_apply(splits.x_val),
                      splits.y_val, lazy_apply(splits.x_test), splits.y_test,
                      splits.num_classes)
    return Splits(apply(xt), splits.y_train, apply(splits.x_val), splits.y_val,
                  apply(splits.x_test), splits.y_test, splits.num_classes)


def _real(a: np.ndarray) -> np.ndarray:
    """Integer or boolean inputs (your dataset function's uint8 images) as float32 before
    any statistic: minmax's min and range stayed integers, so uint8 values below the
    training minimum wrapped around (0 - 10 = 246) and int8's range overflowed."""
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float32)


def stats_sample(files: ImageFiles, size: int = 2048, seed: int = 0) -> np.ndarray:
    """A seeded sample of up to `size` training images, decoded, for preprocessing statistics."""
    rows = np.random.default_rng(seed).permutation(len(files))[:size]
    return files[np.sort(rows)]
