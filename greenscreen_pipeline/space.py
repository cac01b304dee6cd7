"""config.yaml: read it, validate every key before any training, and sample run i.

The search space uses the W&B-sweeps form of the original pipeline:
`configuration: <dimension>: values: [...]`, or a range, `{min, max, log, step}`
(ranges.py). Run i's configuration is a pure function of (seed, i // repeats, space),
repeats.py; run 0 is the baseline: the first value of every list, the middle of a range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenscreen import choices
from greenscreen.validation import did_you_mean

from . import budget, ranges, repeats, runnable, yamlload
from .datapath import FILE_DATASETS, check_data_path  # noqa: F401 (space's own API)
from .ranges import Range
from .settings_table import (
    EXECUTOR_PATTERNS,
    MAXIMUM,
    MINIMUM,
    OPTION_OF,
    SEED_TOP,
    SETTING_WORDS,
    SETTINGS,
)
from .yamlload import ConfigError, finite, hint

NONE_WORDS = (None, "None", "none")
CHOICES = {
    "dataset": ("digits", "cifar10_dir", "image_folder", "mnist", "fashion_mnist", "cifar10",
                "cifar100"),
    "model": ("small_cnn", "ffnn", "resnet", "resnet18", "resnet50", "vgg19", "alexnet"),
    "method": ("standard", "ranked", "gated", "pruned"),
    "preprocessing": ("None", "standardization", "robust_scaling", "minmax"),
    "augmentation": ("None", "random", "mixup", "cutmix"),
    "precision": ("float32", "float16", "float64", "global_policy_float16", "mixed_bfloat16"),
    "lr_schedule": ("constant", "exponential", "polynomial", "cosine"),
    "optimizer": ("Adam", "RMSProp", "SGD", "AdamW"),
    "internal": ("None", "pre_quantization", "post_quantization", "jit_compilation"),
    "resnet_shortcuts": (True, False),
    # The training methods' own settings, under the original studies' names; their
    # values are the library's (greenscreen.choices).
    "percentage_schedule": choices.PERCENT_SCHEDULES,
    "ranked_granularity": choices.GRANULARITY,
    "ranked_freeze": choices.FREEZE,
    "gating_selector": choices.SELECTORS,
    "gating_scoring": choices.SCORING,
}
NUMBERS = {  # dimension: (kind, low, high, low_open, high_open)
    "batch_size": (int, 1, None, False, False),
    "lr": (float, 0.0, None, True, False),
    "optimizer_momentum": (float, 0.0, 1.0, False, True),
    "resnet_depth": (int, 1, 64, False, False),
    "resnet_width": (int, 1, 512, False, False),
    "high_percentage": (float, 0.0, 100.0, True, False),
    "low_percentage": (float, 0.0, 100.0, True, False),
    "target_activation_rate": (float, 0.0, 1.0, True, False),
    "warmup_epochs": (int, 0, None, False, False),
    "target_sparsity": (float, 0.0, 1.0, False, True),
    "pruning_frequency": (float, 0.0, None, True, False),  # in epochs
}
# Which method each method setting belongs to; other runs show it as "n/a".
METHOD_DIMENSIONS = {
    "high_percentage": "ranked", "low_percentage": "ranked", "percentage_schedule": "ranked",
    "ranked_granularity": "ranked", "ranked_freeze": "ranked", "target_activation_rate": "gated",
    "warmup_epochs": "gated", "gating_selector": "gated", "gating_scoring": "gated",
    "target_sparsity": "pruned", "pruning_frequency": "pruned",
}
DIMENSIONS = tuple(CHOICES) + tuple(NUMBERS) + ("partitioning",)
# Dimensions whose values may also be your own code, "module:function" (user_code.py).
ENTRY_DIMENSIONS = ("model", "dataset")
# Names the run records itself: a dimension of your own cannot take them.
RESERVED = frozenset({"run", "seed", "epochs", "n_parameters", "flops_per_train_step",
                      "steps_per_epoch", "versions", "test_accuracy", "test_loss", "accuracy",
                      "energy_j", "power_w", "duration_s", "source", "status", "reason", "path",
                      "format", "attempts", "energy_kwh", "train"})
BASELINE = {  # used for a dimension the config leaves out
    "dataset": "digits", "model": "small_cnn", "method": "standard", "preprocessing": "None",
    "augmentation": "None", "precision": "float32", "batch_size": 32, "partitioning": "80-10-10",
    "lr": 0.001, "lr_schedule": "constant", "optimizer_momentum": 0.9, "optimizer": "Adam",
    "internal": "None", "resnet_depth": 2, "resnet_width": 16, "resnet_shortcuts": True,
    "high_percentage": 50.0, "low_percentage": 20.0, "percentage_schedule": "linear",
    "ranked_granularity": "layer", "ranked_freeze": "ranked", "target_activation_rate": 0.3,
    "warmup_epochs": 1, "gating_selector": "significance", "gating_scoring": "full",
    "target_sparsity": 0.8, "pruning_frequency": 0.1,
}
# The settings and what each allows: settings_table.py.


@dataclass(frozen=True)
class SweepConfig:
    path: str
    settings: dict
    space: dict  # dimension -> its list of values, or a Range

    @property
    def size(self) -> int | None:
        """How many configurations the space holds; None when a float range is endless."""
        return ranges.size(self.space)

    @property
    def own_dimensions(self) -> list[str]:
        """The dimensions of your own: keys under `configuration:` greenscreen does not know."""
        return [dim for dim in self.space if dim not in DIMENSIONS]

    @property
    def folder(self) -> Path:
        """The config file's folder: where your own code named in it is imported from first."""
        return Path(self.path).resolve().parent

    def run(self, index: int) -> dict:
        """Run `index`'s configuration, a pure function of (seed, index // repeats, space):
        no list configuration recurs before every one has run (ranges.py, repeats.py)."""
        c = repeats.configuration_index(index, repeats.of(self.settings))
        return ranges.configuration(self.space, self.settings["seed"], c)


def load(path: "str | Path", overrides: dict | None = None) -> SweepConfig:
    """Reads and fully validates a sweep config. Raises ConfigError on the first problem."""
    path = str(path)
    doc = yamlload.read(path)  # safe_load, YAML 1.2 floats; ConfigError with line, column
    if not isinstance(doc, dict):
        raise ConfigError(path, "top level", doc, "a mapping with 'configuration' and 'settings'")
    unknown = set(doc) - {"configuration", "settings"}
    if unknown:
        key = sorted(unknown, key=str)[0]
        raise ConfigError(path, "top level", key, "the keys 'configuration' and 'settings'"
                          + did_you_mean(key, ("configuration", "settings")))
    given = doc.get("settings")  # `settings:` with every line commented out: none
    try:
        settings = _settings(path, {} if given is None else given, overrides or {})
    except ConfigError as exc:
        raise _named_by_option(exc, path, overrides or {}) from None
    space = _space(path, doc.get("configuration"))
    runnable.check(path, settings, space)
    repeats.check(path, settings)  # runs a multiple of repeats; no halving with repeats
    return SweepConfig(path, settings, space)


def _known_country(code: str) -> bool:
    from greenscreen.carbon import carbon_intensity

    try:
        carbon_intensity(country=code)
    except ValueError:
        return False
    return True


def _named_by_option(exc: ConfigError, path: str, overrides: dict) -> ConfigError:
    """A setting's error where a command-line option gave the value: named by the option."""
    key = exc.where.removeprefix("settings.")
    if key not in OPTION_OF or overrides.get(key) is None:
        return exc
    return ConfigError(path, f"{OPTION_OF[key]} (the command line's, for settings.{key})",
                       exc.given, exc.allowed)


def _settings(path: str, given: Any, overrides: dict) -> dict:
    if not isinstance(given, dict):
        raise ConfigError(path, "settings", given, "a mapping of " + ", ".join(SETTINGS))
    out = {}
    for key in given:
        if key not in SETTINGS:
            raise ConfigError(path, "settings", key, "a setting: " + ", ".join(SETTINGS)
                              + did_you_mean(key, SETTINGS))
    merged = {**given, **{k: v for k, v in overrides.items() if v is not None}}
    for key, (kind, default, allowed) in SETTINGS.items():
        value = merged.get(key, default)
        if key == "budget":
            out[key] = _budget(path, value)
            continue
        if value is None and default is None:  # an optional setting left out
            out[key] = None
            continue
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool) \
                or not finite(value) or (key == "sweep_dir" and not value.strip()):
            raise ConfigError(path, f"settings.{key}", value, allowed)
        if key in MINIMUM and value < MINIMUM[key] or key in MAXIMUM and value > MAXIMUM[key]:
            raise ConfigError(path, f"settings.{key}", value, allowed)
        if key in EXECUTOR_PATTERNS and not re.fullmatch(EXECUTOR_PATTERNS[key], value):
            raise ConfigError(path, f"settings.{key}", value, allowed)
        if key == "accuracy_floor" and not 0 <= value <= 1:
            raise ConfigError(path, f"settings.{key}", value, allowed)
        if key == "carbon_intensity" and value < 0:
            raise ConfigError(path, f"settings.{key}", value, allowed)
        if key == "country" and value and not _known_country(value):
            raise ConfigError(path, f"settings.{key}", value, allowed)
        if key in SETTING_WORDS and value not in SETTING_WORDS[key]:
            raise ConfigError(path, f"settings.{key}", value,
                              allowed + hint(value, SETTING_WORDS[key]))
        if key == "worker_memory_growth_mb" and not 0 < value < float("inf"):
            raise ConfigError(path, f"settings.{key}", value, allowed)
        out[key] = value
    if out["budget"] is not None and "runs" not in merged:
        out["runs"] = budget.RUNS_WITH_BUDGET
    _check_seeds(path, out)
    _check_task(path, out)
    return out


def _check_seeds(path: str, settings: dict) -> None:
    """Run i trains with seed + i and a final seed k of the run recommended with seed + run
    + k: every one a seed numpy takes, in [0, 2**32 - 1], or every run would fail."""
    seed, runs, finals = settings["seed"], settings["runs"], settings["final_seeds"]
    span = runs - 1 + finals - 1  # the highest seed is seed + span
    if span > SEED_TOP:
        raise ConfigError(path, "settings.runs", runs, f"at most {SEED_TOP - finals + 2} with "
                          f"final_seeds {finals}: run i trains with seed + i, and numpy's "
                          f"seeds end at 2**32 - 1 = {SEED_TOP}")
    if seed + span > SEED_TOP:
        raise ConfigError(path, "settings.seed", seed, f"an integer in [0, {SEED_TOP - span}] "
                          f"with runs {runs} and final_seeds {finals}: run i trains with seed "
                          f"+ i (a final run with seed + run + k), and numpy's seeds end at "
                          f"2**32 - 1 = {SEED_TOP}")


def _budget(path: str, value: Any) -> float | None:
    """settings.budget in joules, or None; ConfigError naming the key otherwise."""
    try:
        return budget.parse(value)
    except budget.BudgetError as exc:
        raise ConfigError(path, "settings.budget", value, str(exc)) from None


def _check_task(path: str, settings: dict) -> None:
    """The loss and objective fit together; your training function names an entry."""
    from .objective import Objective, ObjectiveError
    from .user_code import is_entry

    try:
        Objective.from_settings(settings, compiled=True)
    except ObjectiveError as exc:
        raise ConfigError(path, f"settings.{exc.key}", exc.value, exc.allowed) from None
    train = settings["train"]
    if train and not is_entry(train):
        raise ConfigError(path, "settings.train", train, "'' or 'module:function', e.g. "
                                                         "'loop:train'")
    if train:
        _entry(path, "settings.train", "train", train)


def _space(path: str, given: Any) -> dict:
    if not isinstance(given, dict) or not given:
        raise ConfigError(path, "configuration", given,
                          "a mapping of dimensions, each {values: [...]} or "
                          "{min: ..., max: ...}")
    space = {}
    for dim, spec in given.items():
        where = f"configuration.{dim}"
        if not isinstance(dim, str):  # `~:`, `true:` or `1:` would break sorting the space
            raise ConfigError(path, where, dim, "a dimension's name, text: write the key in "
                                                "quotes to use it as one, e.g. 'true'")
        if dim not in DIMENSIONS:
            _check_own_name(path, where, dim)
        if isinstance(spec, dict) and ranges.looks_like(spec):
            space[dim] = _range(path, where, dim, spec)
            continue
        if not isinstance(spec, dict) or set(spec) != {"values"}:
            odd = [k for k in spec if k != "values"] if isinstance(spec, dict) else []
            raise ConfigError(path, where, spec, "a mapping with exactly one key, 'values' "
                                                 "(or a range: min, max, log, step)"
                              + (hint(odd[0], [k for k in ("values",) + ranges.KEYS
                                               if k not in spec]) if odd else ""))
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise ConfigError(path, f"{where}.values", values, "a non-empty list")
        space[dim] = [_value(path, f"{where}.values[{i}]", dim, v) for i, v in enumerate(values)]
        _once_each(path, f"{where}.values", space[dim])
    for dim, value in BASELINE.items():
        space.setdefault(dim, [value])
    return space


def _range(path: str, where: str, dim: str, spec: dict) -> Range:
    """A range of a numeric dimension, built-in or your own (ranges.py)."""
    if dim in DIMENSIONS and dim not in NUMBERS:
        names = CHOICES.get(dim, ("'train-val-test' percentages",))
        takes = ("true or false" if all(isinstance(n, bool) for n in names) else
                 f"names (one of {', '.join(map(str, names))})")
        raise ConfigError(path, where, spec, f"{{values: [...]}}: {dim} takes {takes}, "
                                             f"not a range")
    try:
        made = ranges.parse(spec, NUMBERS[dim][0] if dim in NUMBERS else None)
    except ranges.RangeError as exc:
        key = f"{where}.{exc.key}" if exc.key else where
        raise ConfigError(path, key, exc.given, exc.allowed) from None
    for key in ("min", "max", "step"):  # finite; within a built-in dimension's own bounds
        if dim in NUMBERS and key != "step":
            _value(path, f"{where}.{key}", dim, made[key])
        elif not finite(made[key]):
            raise ConfigError(path, f"{where}.{key}", made[key], "a finite number")
    return made


def _check_own_name(path: str, where: str, dim: str) -> None:
    """A key greenscreen does not know is a dimension of your own, unless it looks like a
    typo of a built-in one (`optimiser`) or names a figure the pipeline records itself."""
    hint = did_you_mean(dim, DIMENSIONS, cutoff=0.8)
    if hint:
        raise ConfigError(path, where, dim, "a built-in dimension or a dimension of your own"
                                            + hint)
    if dim in RESERVED or not re.fullmatch(r"[A-Za-z_]\w*", str(dim)):
        raise ConfigError(path, where, dim, "a name of letters, digits and _ that the "
                                            "pipeline does not record itself (not "
                                            f"{', '.join(sorted(RESERVED))})")


def _own_value(path: str, where: str, value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) and finite(value):
        return value
    raise ConfigError(path, where, value, "a scalar (a number, a string or a boolean): a "
                                          "dimension of your own; numbers finite (no .inf, "
                                          ".nan)")


def _entry(path: str, where: str, kind: str, value: str) -> str:
    """Your function named at `where` exists and takes `kind`'s arguments (nothing runs)."""
    from . import user_code

    try:
        user_code.check(value, kind, Path(path).parent)
    except user_code.EntryError as exc:
        signature = ", ".join(user_code.ARGUMENTS[kind])
        built_in = f"one of {', '.join(CHOICES[kind])}, or " if kind in CHOICES else ""
        raise ConfigError(path, where, value, f"{built_in}'module:function' with "
                                              f"function({signature}); here: {exc}") from None
    return value


def _value(path: str, where: str, dim: str, value: Any) -> Any:
    if dim not in DIMENSIONS:
        return _own_value(path, where, value)
    if dim in ENTRY_DIMENSIONS and isinstance(value, str) and ":" in value:
        from .user_code import is_entry

        if not is_entry(value):  # the runs would take it for a built-in name
            built_in = f"one of {', '.join(CHOICES[dim])}, or " if dim in CHOICES else ""
            raise ConfigError(path, where, value, f"{built_in}'module:function': a dotted "
                                                  "module path and a Python name")
        return _entry(path, where, dim, value)
    if dim in CHOICES:
        value = "None" if value in NONE_WORDS and "None" in CHOICES[dim] else value
        if not _one_of(value, CHOICES[dim]):
            raise ConfigError(path, where, value, _choices_words(dim, value))
        return value
    if dim == "partitioning":
        parts = str(value).split("-")
        if len(parts) != 3 or not all(p.isascii() and p.isdigit() and int(p) > 0
                                      for p in parts) or sum(
                int(p) for p in parts) != 100:
            raise ConfigError(path, where, value, "'train-val-test' percentages summing to 100, "
                                                  "e.g. '80-10-10'")
        return str(value)
    kind, low, high, low_open, high_open = NUMBERS[dim]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and finite(value)
    ok = ok and (kind is float or float(value).is_integer())
    ok = ok and (value > low if low_open else value >= low)
    ok = ok and (high is None or (value < high if high_open else value <= high))
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}" \
                   f"{')' if high_open or high is None else ']'}"
        kind_text = "an integer" if kind is int else "a number" if finite(value) else \
            "a finite number"
        raise ConfigError(path, where, value, f"{kind_text} in {interval}")
    return kind(value)


def _once_each(path: str, where: str, values: list) -> None:
    """Raises ConfigError for a value listed twice: the space counted it as two, so a sweep
    trained one configuration twice while others went untried, unsaid ("0.01" and "1e-2"
    are one value; 1 and true are not)."""
    for i, value in enumerate(values):
        first = next((j for j in range(i) if _same_value(values[j], value)), None)
        if first is not None:
            raise ConfigError(path, f"{where}[{i}]", value,
                              f"each value once ({where}[{first}] is {values[first]!r} already)")


def _same_value(a: Any, b: Any) -> bool:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    return a == b and (numbers or type(a) is type(b))


def _one_of(value: Any, choices: tuple) -> bool:
    """Whether `value` is one of `choices` and of its type: Python has 1 == 1.0 == True, but
    config.yaml's 1 is no true, nor true the name True."""
    return any(value == choice and type(value) is type(choice) for choice in choices)


def _choices_words(dim: str, value: Any) -> str:
    """What a choice dimension allows, as config.yaml writes it, and the name nearest a
    misspelt one."""
    if all(isinstance(choice, bool) for choice in CHOICES[dim]):
        return "true or false (unquoted)" if isinstance(value, str) else "true or false"
    yours = ", or your own 'module:function'" if dim in ENTRY_DIMENSIONS else ""
    return "one of " + ", ".join(map(str, CHOICES[dim])) + yours + hint(value, CHOICES[dim])
