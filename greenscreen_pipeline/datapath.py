"""settings.data_path: the folder the datasets cifar10_dir and image_folder are read from,
checked as the runs read it before any training (moved here from space.py): there, and
holding what each of these datasets in the space reads, by the loaders' own rules
(greenscreen.datasets): CIFAR-10's batches read as a run reads them, an image folder's
class folders listed (no image decoded); no backend imported."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from greenscreen import datasets
from greenscreen.validation import did_you_mean

from .yamlload import ConfigError

if TYPE_CHECKING:
    from .space import SweepConfig

FOLDERS = {  # read from settings.data_path: what each reads there, in words, and its check
    "cifar10_dir": ("the CIFAR-10 python folder, its batches whole",  # (the loader's own rules)
                    datasets.check_cifar10_dir),
    "image_folder": ("a folder of one subfolder per class, each holding images",
                     datasets.image_classes),
}
FILE_DATASETS = tuple(FOLDERS)


def check_data_path(config: SweepConfig, class_sizes: bool = True,
                    keras_cache: bool = True) -> None:
    """Where the space holds a dataset read from settings.data_path, that it is a folder,
    read as the runs read it: relative to the folder the sweep starts in (its runs start
    there too, under Slurm as well). For the commands that train (check too); analyze and
    report read a sweep whose data may have moved since. Then that the folder holds what
    each such dataset reads (`FOLDERS`) and, with `class_sizes`, that an image folder's
    classes split as every partitioning value splits them: for the commands that start a
    sweep, not for `final` (it checks the splits it trains, `check_final_splits`: other
    values may have failed in the sweep) or a Slurm array task (its sweep checked them
    once; a task would list every image again). With `keras_cache`, that a keras.datasets
    dataset is cached here (not for a Slurm or Ray submission: its runs train elsewhere,
    each with its own cache). Raises ConfigError."""
    if keras_cache:
        _check_keras_cache(config)
    data_path = config.settings["data_path"]
    found = [(i, d) for i, d in enumerate(config.space.get("dataset", [])) if d in FILE_DATASETS]
    if found:
        _check_data_path(config.path, data_path, found[0][1])
    for i, dataset in found:
        _check_contents(config.path, data_path, i, dataset)
    if class_sizes and "image_folder" in (d for _, d in found):
        _check_class_sizes(config, data_path,
                           {value: "its runs" for value in config.space["partitioning"]})


def _check_keras_cache(config: SweepConfig) -> None:
    """A keras.datasets dataset (mnist, cifar10, ...) is in the local Keras cache: nothing
    is downloaded, and `check` passed such a config whose every run then failed."""
    from .run.data import KERAS_FILES, cached, not_cached

    for i, dataset in enumerate(config.space.get("dataset", [])):
        if dataset in KERAS_FILES and cached(dataset) is None:
            raise ConfigError(config.path, f"configuration.dataset.values[{i}]", dataset,
                              f"a dataset this machine holds: {not_cached(dataset)}")


def check_final_splits(config: SweepConfig, trained: dict[str, dict]) -> None:
    """`final`'s own check of the splits it is about to train (`check_data_path` leaves
    them to it): that an image folder's classes split as each configuration in `trained`
    (what it is, in words -> the configuration) splits them, so a folder changed since the
    sweep stops `final` before it trains, not in its run. A partitioning your own loop did
    not read ("n/a") is not checked. Raises ConfigError."""
    splits: dict[str, str] = {}
    for what, configuration in trained.items():
        value = configuration.get("partitioning")
        if configuration.get("dataset") == "image_folder" and value not in (None, "n/a"):
            splits.setdefault(value, f"the final runs of {what}")
    if splits:
        _check_class_sizes(config, config.settings["data_path"], splits)


def _check_contents(path: str, data_path: str, i: int, dataset: str) -> None:
    """The folder holds what `dataset`, configuration.dataset.values[i], reads there."""
    what, check = FOLDERS[dataset]
    try:
        check(data_path)
    except (datasets.DatasetError, OSError) as exc:  # OSError: a folder it may not list
        why = f"{exc.filename} cannot be read ({exc.strerror})" if isinstance(exc, OSError) \
            else exc
        raise ConfigError(path, "settings.data_path", data_path,
                          f"{what}, which configuration.dataset.values[{i}] {dataset} reads; "
                          f"here: {why}") from None


def _check_class_sizes(config: SweepConfig, data_path: str, splits: dict[str, str]) -> None:
    """The image folder's classes split as each partitioning value in `splits` splits them
    (the runs' own stratified split, on the labels alone; the value -> whose runs make it,
    in words): otherwise every run of that split fails alike, one after another, with the
    same message. The folder is listed once."""
    import numpy as np

    from .run.data import DataError, least_samples, split  # scikit-learn, no backend

    try:
        counts = datasets.image_counts(data_path)
    except (datasets.DatasetError, OSError):
        return  # _check_contents has said what is wrong with the folder
    labels = np.repeat(np.arange(len(counts)), list(counts.values()))
    for partitioning, whose in splits.items():
        try:
            split(np.zeros(len(labels)), labels, partitioning, config.settings["seed"])
        except (DataError, ValueError) as exc:
            need = least_samples(partitioning)
            small = [f"{name}: {n}" for name, n in sorted(counts.items(), key=lambda kv: kv[1])
                     if n < need][:5]
            here = f"the smallest: {', '.join(small)} images" if small else str(exc)
            raise ConfigError(config.path, "settings.data_path", data_path,
                              f"class folders large enough for the stratified {partitioning} "
                              f"split {whose} make (configuration.partitioning; {need} images "
                              f"in each class always are); here: {here} (add images, or "
                              "choose a partitioning with larger parts)") from None


def _check_data_path(path: str, data_path: str, dataset: str) -> None:
    folder = Path(data_path)
    if folder.is_dir():
        return
    where = folder.resolve()
    what = "a file, not a folder" if folder.exists() else "no such folder"
    near = ""
    if where.parent.is_dir():
        near = did_you_mean(folder.name, [d.name for d in where.parent.iterdir()
                                                  if d.is_dir() and d.name[:1] != "."])
    raise ConfigError(path, "settings.data_path", data_path,
                      f"the {dataset} folder; {where} is {what} (a relative data_path is "
                      f"read from the folder the sweep starts in, {Path.cwd()}){near}")
