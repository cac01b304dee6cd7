"""Your own code named in config.yaml: "module:function" entries for a model, a dataset or
a training loop.

An entry is imported with the config file's own folder first on `sys.path`, so a
`model.py` next to `config.yaml` just works, then from the environment. A user's code
named in config.yaml is trusted as their own script is; `check` imports it and checks
that the function takes the arguments the pipeline passes, calling nothing.

    model    function(input_shape, num_classes, params) -> an uncompiled keras.Model
    dataset  function(params) -> (x, y) arrays, or {"train": (x, y), "validation": (x, y),
             "test": (x, y)} (plus "num_classes" where it cannot be inferred), where a
             split may also be a keras.utils.PyDataset or a tf.data.Dataset
    train    function(params, callbacks) -> a dict of metrics holding the objective
             (settings.train: your own loop instead of the pipeline's compile + fit)
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Callable

ENTRY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
# What the pipeline passes to each kind of entry: the names say it in error messages.
ARGUMENTS = {"model": ("input_shape", "num_classes", "params"), "dataset": ("params",),
             "train": ("params", "callbacks")}


class EntryError(ValueError):
    """An entry that does not import, is not callable or takes other arguments."""


class TrackedParams(dict):
    """A run's params that remember which keys your functions read, so that a dimension
    of your own that nothing reads can be named (run 000 warns about it)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key) -> bool:
        self.read.add(key)
        return super().__contains__(key)


def is_entry(value: object) -> bool:
    """Whether a configuration value names user code ("module:function")."""
    return isinstance(value, str) and ENTRY.fullmatch(value) is not None


def load(entry: str, kind: str, config_dir: str | Path) -> Callable:
    """Imports `entry` (config_dir first on sys.path) and checks it takes `kind`'s arguments.

    Raises:
        EntryError: what went wrong, in words a user can act on.
    """
    module_name, _, function_name = entry.partition(":")
    folder = str(Path(config_dir).resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or anything the module raises at import
        raise EntryError(f"module {module_name!r} does not import ({type(exc).__name__}: "
                         f"{exc}); looked in {folder} first, then the environment") from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        near = _nearest(function_name, names)
        raise EntryError(f"{module_name} ({module.__file__}) has no function "
                         f"{function_name!r}" + (f"; did you mean {near!r}?" if near else ""))
    _check_signature(function, entry, ARGUMENTS[kind])
    return function


def _check_signature(function: Callable, entry: str, arguments: tuple[str, ...]) -> None:
    try:
        inspect.signature(function).bind(*arguments)
    except TypeError as exc:
        raise EntryError(f"{entry} must take {len(arguments)} positional argument(s) "
                         f"({', '.join(arguments)}): {exc}") from None
    except ValueError:  # a builtin without a signature: called as it is
        pass


def _nearest(name: str, names: list[str]) -> str | None:
    import difflib

    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return close[0] if close else None
