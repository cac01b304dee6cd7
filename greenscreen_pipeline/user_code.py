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
import sys
import traceback
from pathlib import Path
from typing import Callable

from greenscreen.validation import nearest

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
    """Whether a configuration value names user code ("module:function"): a dotted module
    name and a function name, each part a Python identifier ("ümod:data" too: a check
    that took it for code while the runs took it for a built-in name failed every run)."""
    if not isinstance(value, str) or value.count(":") != 1:
        return False
    module, function = value.split(":")
    # A module path's parts may start with a digit (a folder exp/2024/ imports as
    # exp.2024); a function is a Python name.
    return function.isidentifier() and all(
        part and all(c.isalnum() or c == "_" for c in part) for part in module.split("."))


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
    except (Exception, SystemExit) as exc:  # ImportError, anything raised at import, or
        # a module-level sys.exit (an argparse parse_args() of a script's own)
        raise _not_imported(module_name, folder, exc) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        if getattr(module, "__file__", None) is None and hasattr(module, "__path__"):
            raise _a_folder(module_name, list(module.__path__), function_name)
        names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        raise _no_function(module_name, str(module.__file__), function_name, names)
    try:
        signature = inspect.signature(function)
    except ValueError:  # a builtin without a signature: called as it is
        return function
    _check_signature(signature, entry, ARGUMENTS[kind], defined_at(function),
                     isinstance(function, type))
    return function


def defined_at(function: Callable) -> str:
    """'file:line' of your function's def (a class's `class` line), or "" where unknown."""
    try:
        target = function if isinstance(function, type) else inspect.unwrap(function)
        code = getattr(target, "__code__", None)
        if code is not None:
            return f"{code.co_filename}:{code.co_firstlineno}"
        return f"{inspect.getsourcefile(target)}:{inspect.getsourcelines(target)[1]}"
    except (TypeError, ValueError, OSError):
        return ""


def _not_imported(module_name: str, folder: str, exc: Exception) -> EntryError:
    """The module is not found, or it raised while it was imported: then what it raised and
    the line of yours it raised at (the import's own frames left out)."""
    from .executors.progress import NOT_YOURS  # where a failed run's reason says it too

    missing = isinstance(exc, ModuleNotFoundError) and exc.name is not None and (
        module_name == exc.name or module_name.startswith(exc.name + "."))
    if missing:
        return EntryError(f"module {module_name!r} does not import ({type(exc).__name__}: "
                          f"{exc}); looked in {folder} first, then the environment")
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({exc.filename}:{exc.lineno})"
    else:
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if not any(part in f.filename for part in NOT_YOURS)]
        where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return EntryError(f"module {module_name!r} does not import: it raised "
                      f"{type(exc).__name__} at import: {(lines[0] if lines else '')[:300]}"
                      f"{where}")


def _a_folder(module_name: str, paths: list[str], function_name: str) -> EntryError:
    """A folder without __init__.py imports as a namespace package, which defines nothing."""
    inside = sorted({p.stem for path in paths for p in Path(path).glob("*.py")})
    names = ", ".join(f"{module_name}.{stem}:{function_name}" for stem in inside[:5])
    return EntryError(f"{module_name} is a folder ({', '.join(paths)}), not a .py module: "
                      f"name a module {module_name.rpartition('.')[2]}.py that defines "
                      f"{function_name}, or a module inside the folder"
                      + (f" ({names})" if names else ""))


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
    node = _defined_once(tree, function_name) if tree is not None else None
    if node is None:  # found but not plainly, or no source: the import says why
        load(entry, kind, config_dir)
        return
    _check_signature(_signature(node.args), entry, ARGUMENTS[kind], f"{source}:{node.lineno}")


def resolved(entry: str, config_dir: str | Path) -> str | None:
    """What `entry` names, whatever its spelling: 'file:function', the file the import
    would run from `config_dir` (`_source_of`, nothing imported) with its real path; None
    where that is not plain (not found, not a source file, already imported)."""
    if not is_entry(entry):
        return None
    module_name, _, function_name = entry.partition(":")
    source = _source_of(module_name, str(Path(config_dir).resolve()))
    return f"{source.resolve()}:{function_name}" if source else None


def _no_function(module_name: str, file: str, function_name: str,
                 names: list[str]) -> EntryError:
    near = nearest(function_name, names)
    return EntryError(f"{module_name} ({file}) has no function {function_name!r}"
                      + (f"; did you mean {near!r}?" if near else ""))


def _check_signature(signature: inspect.Signature, entry: str, arguments: tuple[str, ...],
                     where: str = "", is_class: bool = False) -> None:
    """`signature` takes `arguments` by position; else what it takes, where it is defined."""
    try:
        signature.bind(*arguments)
        return
    except TypeError:
        pass
    name = entry.partition(":")[2] + (f" ({where})" if where else "")
    what = f"{name} is a class, whose __init__ takes" if is_class else f"{name} takes"
    raise EntryError(f"{entry} must take {len(arguments)} positional argument(s) "
                     f"({', '.join(arguments)}), as the pipeline passes them; {what} "
                     f"{_takes(signature)}" + ("; name a function, or a class whose "
                                               "__init__ takes them" if is_class else ""))


def _takes(signature: inspect.Signature) -> str:
    """'2 (input_shape, num_classes)': how many positional arguments, and the parameters."""
    kind = inspect.Parameter
    params = list(signature.parameters.values())
    positional = [p for p in params if p.kind in (kind.POSITIONAL_ONLY,
                                                  kind.POSITIONAL_OR_KEYWORD)]
    required = sum(p.default is kind.empty for p in positional)
    if any(p.kind is kind.VAR_POSITIONAL for p in params):
        count = f"{required} or more"
    else:
        count = str(required) if required == len(positional) else \
            f"{required} to {len(positional)}"
    shown, star = [], False
    for p in params:
        if p.kind is kind.KEYWORD_ONLY and not star:
            shown.append("*")
        star = star or p.kind in (kind.VAR_POSITIONAL, kind.KEYWORD_ONLY)
        prefix = {kind.VAR_POSITIONAL: "*", kind.VAR_KEYWORD: "**"}.get(p.kind, "")
        shown.append(prefix + p.name + ("=..." if p.default is not kind.empty else ""))
    needed = [p.name for p in params if p.kind is kind.KEYWORD_ONLY and p.default is kind.empty]
    return f"{count} ({', '.join(shown)})" + (
        f" and needs keyword-only {', '.join(needed)}, which the pipeline never passes"
        if needed else "")


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


def _defined_once(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    """`def name(...)` where it is the module's only binding of `name` (no decorator, no
    other assignment, import or star import anywhere); else None."""
    bindings = [node for node in ast.walk(tree) if _binds(node, name)]
    found = bindings[0] if len(bindings) == 1 else None
    if not isinstance(found, (ast.FunctionDef, ast.AsyncFunctionDef)) \
            or found not in tree.body or found.decorator_list:
        return None
    return found


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

