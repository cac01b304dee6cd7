"""Your own code named in config.yaml: "module:function" entries for a model, a dataset or
a training loop.

An entry is imported with the config file's own folder first on `sys.path`, so a
`model.py` next to `config.yaml` just works, then from the environment. A user's code
named in config.yaml is trusted as their own script is. Validating config.yaml checks
that the function takes the arguments the pipeline passes, calling nothing, and reads
your module's source for that (`check`) instead of importing it, where the source says
enough: a function defined once, undecorated. So a sweep's own process never imports
the Keras backend that your module imports; only its workers do, and the probe (which
also meets an import that fails inside your module). Otherwise `check` imports it.

    model    function(input_shape, num_classes, params) -> an uncompiled keras.Model
    dataset  function(params) -> (x, y) arrays, or {"train": (x, y), "validation": (x, y),
             "test": (x, y)} (plus "num_classes" where it cannot be inferred), where a
             split may also be a keras.utils.PyDataset or a tf.data.Dataset
    train    function(params, callbacks) -> a dict of metrics holding the objective
             (settings.train: your own loop instead of the pipeline's compile + fit)
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Callable

from greenscreen.validation import nearest

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
        raise _no_function(module_name, str(module.__file__), function_name, names)
    try:
        signature = inspect.signature(function)
    except ValueError:  # a builtin without a signature: called as it is
        return function
    _check_signature(signature, entry, ARGUMENTS[kind])
    return function


def check(entry: str, kind: str, config_dir: str | Path) -> None:
    """What `load` checks, from your module's source where it says enough (nothing of
    yours runs, no Keras is imported); else `load` itself.

    Raises:
        EntryError: as `load`.
    """
    module_name, _, function_name = entry.partition(":")
    source = _source_of(module_name, str(Path(config_dir).resolve()))
    tree = _parse(source) if source else None
    if tree is not None and _surely_absent(tree, function_name):
        names = [node.name for node in tree.body if isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        raise _no_function(module_name, str(source), function_name, names)
    signature = _defined_once(tree, function_name) if tree is not None else None
    if signature is None:  # found but not plainly, or no source: the import says why
        load(entry, kind, config_dir)
        return
    _check_signature(signature, entry, ARGUMENTS[kind])


def _no_function(module_name: str, file: str, function_name: str,
                 names: list[str]) -> EntryError:
    near = nearest(function_name, names)
    return EntryError(f"{module_name} ({file}) has no function {function_name!r}"
                      + (f"; did you mean {near!r}?" if near else ""))


def _check_signature(signature: inspect.Signature, entry: str,
                     arguments: tuple[str, ...]) -> None:
    try:
        signature.bind(*arguments)
    except TypeError as exc:
        raise EntryError(f"{entry} must take {len(arguments)} positional argument(s) "
                         f"({', '.join(arguments)}): {exc}") from None


def _source_of(module_name: str, folder: str) -> Path | None:
    """The .py file the import would run, found as it finds it (`folder` first), running
    no package's __init__; None where that is not plain (already imported, built in, not
    a source file, not found)."""
    from importlib.machinery import PathFinder, SourceFileLoader

    if module_name in sys.modules or module_name in sys.builtin_module_names:
        return None
    spec, path = None, [folder, *(p for p in sys.path if p != folder)]
    for part in module_name.split("."):
        if spec is not None:
            path = spec.submodule_search_locations
            if not path:
                return None
        spec = PathFinder.find_spec(part, list(path))
        if spec is None:
            return None
    if not isinstance(spec.loader, SourceFileLoader) or not spec.origin:
        return None
    return Path(spec.origin)


def _parse(source: Path) -> ast.Module | None:
    try:
        return ast.parse(source.read_bytes(), str(source))
    except (SyntaxError, ValueError, OSError):  # the import will say what is wrong
        return None


# Names through which a module can make a global its source never binds by name.
_DYNAMIC = {"globals", "vars", "exec", "eval", "setattr", "__getattr__", "__dict__",
            "sys", "importlib", "__import__"}


def _surely_absent(tree: ast.Module, name: str) -> bool:
    """Whether the module cannot define `name`: nothing binds it (no def, assignment,
    import or star import) and nothing could make it another way (a module
    `__getattr__`, `globals()`, `exec`, ...), so saying so needs no import."""
    if any(_binds(node, name) for node in ast.walk(tree)):
        return False
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} \
        | {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)} \
        | {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)} \
        | {a.name.partition(".")[0] for node in ast.walk(tree)
           if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names}
    return not used & _DYNAMIC


def _defined_once(tree: ast.Module, name: str) -> inspect.Signature | None:
    """The signature of `def name(...)` where it is the module's only binding of `name`
    (no decorator, no other assignment, import or star import anywhere); else None."""
    bindings = [node for node in ast.walk(tree) if _binds(node, name)]
    found = bindings[0] if len(bindings) == 1 else None
    if not isinstance(found, (ast.FunctionDef, ast.AsyncFunctionDef)) \
            or found not in tree.body or found.decorator_list:
        return None
    return _signature(found.args)


def _binds(node: ast.AST, name: str) -> bool:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name == name
    if isinstance(node, ast.Name):
        return node.id == name and not isinstance(node.ctx, ast.Load)
    if isinstance(node, ast.alias):
        bound = node.asname or node.name.partition(".")[0]
        return node.name == "*" or bound == name
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return name in node.names
    return False


def _signature(args: ast.arguments) -> inspect.Signature:
    """An inspect.Signature with the parameters' names, kinds and which have defaults."""
    kind = inspect.Parameter
    positional = [(a, kind.POSITIONAL_ONLY) for a in args.posonlyargs] + \
                 [(a, kind.POSITIONAL_OR_KEYWORD) for a in args.args]
    first_default = len(positional) - len(args.defaults)
    params = [kind(a.arg, k, default=None if i >= first_default else kind.empty)
              for i, (a, k) in enumerate(positional)]
    if args.vararg:
        params.append(kind(args.vararg.arg, kind.VAR_POSITIONAL))
    params += [kind(a.arg, kind.KEYWORD_ONLY, default=kind.empty if d is None else None)
               for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    if args.kwarg:
        params.append(kind(args.kwarg.arg, kind.VAR_KEYWORD))
    return inspect.Signature(params)

