"""Values config.yaml may hold but the pipeline cannot run, or could run only as something
else, with these settings: refused when the config is loaded (`check`), before any
training, each with the key path of the value and what is allowed (space.py's one error).

- low_percentage above high_percentage (ranked updates: k decays from high to low);
- halving with your own training function;
- a built-in dataset under a regression loss; a folder dataset without settings.data_path;
- for the commands that train only (`check_trainable`; `analyze` and `report` read a sweep
  that may have such runs): MixUp or CutMix under a sparse classification loss, which
  mix two samples' labels into fractions of two classes that a class index cannot hold
  (Keras failed on the mixed (batch, batch) labels, run after run).

A gated run whose warm-up lasts the whole run is skipped, with the epochs it trains for
(`run.rules.epochs_reason`: `--epochs 1` of the shipped config, a final run's own).

And said, not refused (`unread_dimensions`): a dimension of your own where no code of
yours runs, which nothing can read.
"""

from __future__ import annotations

from difflib import get_close_matches
from typing import TYPE_CHECKING

from .ranges import Range
from .yamlload import ConfigError

if TYPE_CHECKING:
    from .space import SweepConfig

MIXING = ("mixup", "cutmix")


def check(path: str, settings: dict, space: dict) -> None:
    """Raises ConfigError for the first value the code cannot run with these settings."""
    _check_percentages(path, space)
    if settings["early_stop"] == "halving" and settings["train"]:
        raise ConfigError(path, "settings.early_stop", "halving", "off with settings.train: "
                          "halving stops the pipeline's own fit at its rungs, and your "
                          "training function runs its own")
    from .objective import Objective
    from .user_code import is_entry

    loss = Objective.from_settings(settings)
    for i, dataset in enumerate(space["dataset"]):
        if not (loss.classification or is_entry(dataset) or settings["train"]):
            raise ConfigError(path, f"configuration.dataset.values[{i}]", dataset,
                              f"your own dataset ('module:function') with settings.loss "
                              f"{loss.loss}: the built-in datasets are classification")
        if dataset in ("cifar10_dir", "image_folder") and not settings["data_path"]:
            raise ConfigError(path, f"configuration.dataset.values[{i}]", dataset,
                              "a dataset needing no files, or set settings.data_path to the "
                              f"{dataset} folder")


def check_trainable(config: SweepConfig) -> None:
    """What the commands that train refuse besides (not `analyze` or `report`, which read
    a sweep that may have trained such runs): MixUp or CutMix under a sparse loss."""
    from .objective import Objective

    settings, loss = config.settings, Objective.from_settings(config.settings)
    if loss.classification and not loss.one_hot and not settings["train"]:
        for i, augmentation in enumerate(config.space["augmentation"]):
            if augmentation in MIXING:
                raise ConfigError(
                    config.path, f"configuration.augmentation.values[{i}]", augmentation,
                    f"None or random with settings.loss {loss.loss}: {augmentation} mixes "
                    "two samples' labels into fractions of two classes, which a class index "
                    "cannot hold (or a one-hot loss, categorical_crossentropy)")


def _check_percentages(path: str, space: dict) -> None:
    low, high = space["low_percentage"], space["high_percentage"]
    highest_low = low["max"] if isinstance(low, Range) else max(low)
    lowest_high = high["min"] if isinstance(high, Range) else min(high)
    if highest_low > lowest_high:
        where = "max" if isinstance(low, Range) else f"values[{low.index(highest_low)}]"
        raise ConfigError(path, f"configuration.low_percentage.{where}", highest_low,
                          f"a number <= every high_percentage value (the lowest is "
                          f"{lowest_high}): k decays from high to low")


# Names users give built-in dimensions, for the suggestion: not near enough to be a typo.
ALIASES = {"learning_rate": "lr", "momentum": "optimizer_momentum", "batchsize": "batch_size",
           "epochs": "settings.epochs", "optimiser": "optimizer", "seed": "settings.seed"}


def unread_dimensions(config: SweepConfig) -> list[str]:
    """A dimension of your own where no code of yours runs (no model or dataset
    'module:function', no settings.train): nothing can read it, so every run trains
    without it (`configuration: {learning_rate: ...}` was sampled, recorded and ignored,
    named only after run 000). One line each, with the built-in name it may mean."""
    from .space import DIMENSIONS
    from .user_code import is_entry

    code = config.settings["train"] or any(
        is_entry(v) for dim in ("model", "dataset") for v in config.space.get(dim, []))
    if code:
        return []
    said = []
    for dim in config.own_dimensions:
        near = ALIASES.get(dim) or next(iter(get_close_matches(dim, DIMENSIONS, 1, 0.6)),
                                        None)
        said.append(f"configuration.{dim} is a dimension of your own, but no code of yours "
                    "runs (no model or dataset 'module:function', no settings.train): every "
                    "run trains without it" + (f"; did you mean {near!r}?" if near else ""))
    return said
