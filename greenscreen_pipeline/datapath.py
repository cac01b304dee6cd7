"""settings.data_path: the folder the datasets cifar10_dir and image_folder are read from,
checked as the runs read it before any training (moved here from space.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from greenscreen.validation import did_you_mean

from .yamlload import ConfigError

if TYPE_CHECKING:
    from .space import SweepConfig

FILE_DATASETS = ("cifar10_dir", "image_folder")  # read from settings.data_path


def check_data_path(config: SweepConfig) -> None:
    """Where the space holds a dataset read from settings.data_path, that it is a folder,
    read as the runs read it: relative to the folder the sweep starts in (its runs start
    there too, under Slurm as well). For the commands that train (check too); analyze and
    report read a sweep whose data may have moved since. Raises ConfigError."""
    for dataset in [d for d in config.space.get("dataset", []) if d in FILE_DATASETS][:1]:
        _check_data_path(config.path, config.settings["data_path"], dataset)


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
