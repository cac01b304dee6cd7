"""Validating config.yaml reads your module's source instead of importing it, where the
source says enough (issue 31: a sweep's own process then never imports the backend your
module imports), and gives the same verdict, in the same words, as the import does."""

import itertools
import sys

import pytest

from greenscreen_pipeline import user_code

NAMES = itertools.count()
SIGNATURES = ["x, y, z", "x, y", "x, y, z, w", "x, y, z, w=1", "*args", "x, *rest",
              "x, y, z, *, flag", "x, y, z, *, flag=True", "x, /, y, z", "**kwargs",
              "x, y, z=0, **kwargs", "input_shape, num_classes, params"]


def module(tmp_path, body: str) -> str:
    """A module of yours in `tmp_path`, never imported before; returns its name."""
    name = f"yours_{next(NAMES)}"
    (tmp_path / f"{name}.py").write_text(body)
    return name


def verdict(call, *args) -> str:
    try:
        call(*args)
    except user_code.EntryError as exc:
        return str(exc)
    return "ok"


@pytest.mark.parametrize("signature", SIGNATURES)
def test_the_source_gives_the_imports_verdict_without_importing(tmp_path, signature):
    name = module(tmp_path, f"import os\n\n\ndef build({signature}):\n    return os\n")
    entry = f"{name}:build"
    from_source = verdict(user_code.check, entry, "model", tmp_path)
    assert name not in sys.modules  # read, not imported
    assert from_source == verdict(user_code.load, entry, "model", tmp_path)
    assert (from_source == "ok") == (signature not in ("x, y", "x, y, z, w", "x, y, z, *, flag",
                                                       "**kwargs"))


def test_your_module_is_not_run_where_its_source_says_enough(tmp_path):
    name = module(tmp_path, "import nosuchpackage_anywhere\n\n\ndef load(params):\n"
                            "    return nosuchpackage_anywhere.data()\n")
    user_code.check(f"{name}:load", "dataset", tmp_path)  # the probe meets the import
    with pytest.raises(user_code.EntryError, match="does not import"):
        user_code.load(f"{name}:load", "dataset", tmp_path)


@pytest.mark.parametrize("body", [
    "import functools\n\n\n@functools.lru_cache\ndef load(params):\n    return 1\n",
    "def _load(params):\n    return 1\n\n\nload = _load\n",
    "from os.path import join as load\n",
    "def load(params):\n    return 1\n\n\nif True:\n    def load(a, b):\n        return 2\n",
    "from os.path import *\n\n\ndef load(params):\n    return 1\n",
    # what can make a function its source never names: found missing only by importing
    "def __getattr__(name):\n    return lambda params: 1\n",
    "globals()['load'] = lambda params: 1\n",
    "exec('def load(params): return 1')\n",
    "from os.path import *\n",
])
def test_what_the_source_cannot_settle_is_imported(tmp_path, body):
    name = module(tmp_path, body)
    got = verdict(user_code.check, f"{name}:load", "dataset", tmp_path)
    assert name in sys.modules  # decorated, assigned, imported, defined twice, made: imported
    assert got == verdict(user_code.load, f"{name}:load", "dataset", tmp_path)


def test_a_missing_function_and_a_missing_module_say_what_the_import_says(tmp_path):
    name = module(tmp_path, "def mlp(input_shape, num_classes, params):\n    return None\n")
    assert "has no function 'mpl'; did you mean 'mlp'?" in verdict(
        user_code.check, f"{name}:mpl", "model", tmp_path)
    assert "module 'nosuchmodule_here' does not import" in verdict(
        user_code.check, "nosuchmodule_here:mlp", "model", tmp_path)


def test_a_misspelt_function_is_found_missing_from_the_source_without_importing(tmp_path):
    # `check --no-probe` on a config naming model:mpl imported TensorFlow to say so
    name = module(tmp_path, "import nosuchpackage_anywhere\n\n\n"
                            "def mlp(input_shape, num_classes, params):\n    return None\n")
    got = verdict(user_code.check, f"{name}:mpl", "model", tmp_path)
    assert name not in sys.modules
    assert f"{name} ({tmp_path / name}.py) has no function 'mpl'; did you mean 'mlp'?" \
        in got.replace(str(tmp_path.resolve()), str(tmp_path))


def test_a_module_in_a_package_is_read_without_running_the_packages_init(tmp_path):
    package = tmp_path / f"pkg_{next(NAMES)}"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('the package ran')\n")
    (package / "nets.py").write_text("def mlp(input_shape, num_classes, params):\n    pass\n")
    user_code.check(f"{package.name}.nets:mlp", "model", tmp_path)
    assert package.name not in sys.modules
