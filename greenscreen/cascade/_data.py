"""Inputs of the cascade command line: a CIFAR-10 pickle folder or a class-per-folder
tree, and Keras model files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..datasets import DatasetError, load_cifar10_dir, load_image_folder
from ..validation import invalid


def load_folder(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if (path / "test_batch").exists():
        return load_cifar10_dir(str(path))
    check_data_path(str(path))
    return load_image_folder(str(path), 32)


class BadModelFile(ValueError):
    """A model path that is not a loadable `.keras` file; the message says what was given
    and what is expected."""


class ModelRefused(BadModelFile):
    """A model file that safe mode will not load; the message says why and what to do."""


def check_model_path(path: str, name: str = "model") -> None:
    """Raises `BadModelFile` unless `path` is an existing `.keras` file (a zip archive)."""
    p = Path(path)
    if p.suffix != ".keras":
        raise invalid(name, path, "a Keras model file ending in .keras, as written by "
                      "model.save('name.keras')", BadModelFile)
    if not p.is_file():
        why = "that is a folder" if p.exists() else "there is no file at that path"
        raise invalid(name, path, f"an existing .keras file; {why}", BadModelFile)
    if not zipfile.is_zipfile(p):
        raise invalid(name, path, "a .keras file as Keras writes it (a zip archive); this "
                      "file is not one", BadModelFile)


def check_data_path(path: str) -> None:
    """Raises ValueError unless `path` is a folder (what `load_folder` reads)."""
    if not Path(path).is_dir():
        raise invalid("--filepath", path, "a CIFAR-10 python folder (data_batch_1..5, "
                      "test_batch) or a folder with one subfolder per class")


def load_model(path: str, name: str = "model"):
    """A `.keras` model file, loaded with Keras's `safe_mode=True`.

    Safe mode refuses to deserialise Python code stored in the file (a `Lambda`
    layer's function): loading such a file would run whatever it holds.
    """
    import keras

    check_model_path(path, name)
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except (KeyError, OSError, zipfile.BadZipFile) as exc:  # a zip, but not a model's
        raise _unreadable(path, name, exc) from None
    except TypeError as exc:  # Keras: a class the file names is not known here, or a
        if "locate class" not in str(exc) and "Unknown layer" not in str(exc):  # config
            raise _unreadable(path, name, exc) from None  # this Keras cannot take
        raise BadModelFile(
            f"{name}={path!r} could not be loaded: it needs a class that is not known "
            f"here ({str(exc).splitlines()[0]}). A layer of your own is loaded by "
            "Python code that imports the module defining it (registered with "
            "@keras.saving.register_keras_serializable); this command cannot") from None
    except ValueError as exc:
        if "safe_mode" not in str(exc) and "unsafe" not in str(exc).lower():
            raise _unreadable(path, name, exc) from None
        raise ModelRefused(
            f"{path} was refused: it stores Python code (e.g. a Lambda layer), which runs "
            "when the file is loaded, and files are loaded in Keras's safe mode. Rebuild the "
            "model with registered layers (@keras.saving.register_keras_serializable), or, if "
            "you trust the file, load it in Python with "
            "keras.saving.load_model(path, safe_mode=False) and save its weights.") from None


def _unreadable(path: str, name: str, exc: Exception) -> BadModelFile:
    return BadModelFile(f"{name}={path!r} could not be loaded as a Keras model "
                        f"({type(exc).__name__}: {exc})")


class DataMismatch(ValueError):
    """A model that does not fit the data (its input shape, its classes); the message says
    which model and what the data are."""


def check_fits(model, name: str, x: np.ndarray, n_classes: int) -> None:
    """Raises `DataMismatch` where a Keras model's declared input shape or number of
    outputs cannot take `x` or tell `n_classes` classes apart, before anything runs."""
    given = getattr(model, "input_shape", None)  # (None, 8, 8, 1); a list: several inputs
    if isinstance(given, list):
        raise DataMismatch(f"{name} takes several inputs; the command gives it one array "
                           f"of samples shaped {x.shape[1:]}")
    if given is not None and (len(given) != x.ndim or any(
            want is not None and want != got for want, got in zip(given[1:], x.shape[1:]))):
        raise DataMismatch(f"{name} takes samples shaped {tuple(given[1:])}, but the data's "
                           f"are shaped {x.shape[1:]} (--filepath chooses the data; without "
                           "it, the 8x8 digits)")
    out = getattr(model, "output_shape", None)
    units = out[-1] if isinstance(out, tuple) and len(out) == 2 else None
    if units is not None and (units < n_classes and not (units == 1 and n_classes == 2)):
        raise DataMismatch(f"{name} has {units} output(s), but the data have {n_classes} "
                           "classes: one output per class, or one sigmoid for two")


def check_split(path: str, y: np.ndarray) -> None:
    """Raises `DatasetError` unless the data can be split, stratified, into train,
    validation and test splits with every class in each: two classes or more, five
    samples of each at least."""
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DatasetError(f"--filepath={path!r} holds one class; a classifier needs two "
                           "or more (one subfolder per class)")
    if counts.min() < 5:
        raise DatasetError(f"--filepath={path!r}: class {classes[counts.argmin()]} has "
                           f"{counts.min()} sample(s); each class needs 5 at least, for the "
                           "train, validation and test splits (60/20/20 %, stratified)")
