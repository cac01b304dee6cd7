"""The probe's and the entry check's messages on mistakes in your own code (a fault hunt):
each names what was given, where (the key path, your file:line), what is allowed and the
near name you may have meant; greenscreen's own steps are not blamed on your function."""

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

from greenscreen_pipeline import probe, space, user_code
from greenscreen_pipeline.run import data

NAMES = itertools.count()
CONFIG = """settings: {{runs: 1, epochs: 1, seed: 0, energy_source: nvidia-smi}}
configuration:
  dataset: {{values: ["{data}"]}}
  model: {{values: ["{model}"]}}
  batch_size: {{values: [16]}}
"""
DATA = """import numpy as np


def good(params):
    rng = np.random.default_rng(0)
    return rng.random((200, 8)).astype("float32"), np.arange(200) % 3


def tiny(params):
    return np.zeros((5, 4), "float32"), np.array([0, 1, 2, 0, 1])


def lens(params):
    return np.zeros((10, 3)), np.zeros(9, int)


def none(params):
    return None


def valdation(params):
    x, y = good(params)
    return {"train": (x, y), "valdation": (x, y)}


def tset(params):
    x, y = good(params)
    return {"train": (x, y), "validation": (x, y), "tset": (x, y)}


def misread(params):
    return np.zeros((200, 3)) + params["batchsize"], np.arange(200) % 2
"""
MODELS = """import keras


def wide(input_shape, num_classes, params):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, keras.layers.Dense(num_classes + 2)(inputs))
"""


def module(folder: Path, body: str) -> tuple[str, Path]:
    """A module of yours in `folder`, never imported before: (its name, its file)."""
    name = f"hunted_{next(NAMES)}"
    path = folder / f"{name}.py"
    path.write_text(body)
    return name, path.resolve()


def entry_error(call, entry: str, kind: str, folder: Path) -> str:
    with pytest.raises(user_code.EntryError) as failed:
        call(entry, kind, folder)
    return str(failed.value)


# --- the entry check: nothing of the backend is imported -----------------------------------

def test_a_module_that_raises_at_import_names_its_line_not_the_function(tmp_path):
    name, path = module(tmp_path, "import os\nraise ImportError('no GPU library here')\n\n\n"
                                  "def mlp(input_shape, num_classes, params):\n    pass\n")
    text = entry_error(user_code.load, f"{name}:mlp", "model", tmp_path)
    assert text == (f"module {name!r} does not import: it raised ImportError at import: "
                    f"no GPU library here ({path}:2)")
    name, path = module(tmp_path, "def load(params):\n    return (\n")  # SyntaxError
    assert "it raised SyntaxError at import: " in entry_error(
        user_code.load, f"{name}:load", "dataset", tmp_path)
    assert f"({path}:2)" in entry_error(user_code.load, f"{name}:load", "dataset", tmp_path)


@pytest.mark.parametrize("call", [user_code.check, user_code.load])
def test_a_function_taking_too_few_arguments_says_what_it_takes_and_where(tmp_path, call):
    name, path = module(tmp_path, "import os\n\n\ndef mlp2(input_shape, num_classes):\n"
                                  "    return os\n")
    text = entry_error(call, f"{name}:mlp2", "model", tmp_path)
    assert text.endswith(f"as the pipeline passes them; mlp2 ({path}:4) takes 2 (input_shape, "
                         "num_classes)")
    assert "too many positional arguments" not in text


def test_a_class_named_instead_of_a_function_is_called_a_class(tmp_path):
    name, path = module(tmp_path, "class NotAFunction:\n    pass\n")
    text = entry_error(user_code.check, f"{name}:NotAFunction", "model", tmp_path)
    assert f"NotAFunction ({path}:1) is a class, whose __init__ takes 0 ()" in text
    assert "name a function" in text


def test_a_folder_named_as_a_module_is_called_a_folder(tmp_path):
    folder = tmp_path / f"adir_{next(NAMES)}"
    folder.mkdir()
    (folder / "nets.py").write_text("def mlp(input_shape, num_classes, params):\n    pass\n")
    text = entry_error(user_code.check, f"{folder.name}:mlp", "model", tmp_path)
    assert text.startswith(f"{folder.name} is a folder ({folder.resolve()}), not a .py module")
    assert f"{folder.name}.nets:mlp" in text and "(None)" not in text


# --- the split: greenscreen's step, in words of samples per class ---------------------------

PARTITIONINGS = ["80-10-10", "70-15-15", "90-5-5", "80-5-15", "34-33-33", "98-1-1"]


def test_too_few_samples_per_class_for_the_split_says_how_many_are_needed():
    with pytest.raises(data.DataError) as failed:
        data.split(np.zeros((5, 4)), np.array([0, 1, 2, 0, 1]), "80-10-10", 0)
    assert str(failed.value) == (
        "5 samples of 3 classes are too few for the stratified 80-10-10 split (partitioning; "
        "class 0: 2, class 1: 2, class 2: 1); allowed: at least 10 samples of each class for "
        "the 80-10-10 split")
    with pytest.raises(data.DataError, match="allowed: at least 10 samples for the 80-10-10"):
        data.split(np.zeros((5, 1)), np.arange(5.0), "80-10-10", 0, stratify=False)


@pytest.mark.parametrize("partitioning", PARTITIONINGS)
def test_the_samples_the_message_asks_for_do_split(partitioning):
    need = data.least_samples(partitioning)
    for classes in (2, 3, 7):
        y = np.repeat(np.arange(classes), need)
        for seed in (0, 1):
            splits = data.split(np.zeros((len(y), 1)), y, partitioning, seed)
            assert len(splits.y_val) and len(splits.y_test)
    data.split(np.zeros((need, 1)), np.arange(float(need)), partitioning, 0, stratify=False)


# --- the hints the probe's messages add, without a backend ---------------------------------

def test_a_misspelt_params_key_names_the_nearest_one():
    params = user_code.TrackedParams({"batch_size": 16, "run": 0})
    with pytest.raises(KeyError) as failed:
        params["batchsize"]
    assert probe.params_hint(failed.value, params) == \
        "; params has no 'batchsize'; did you mean 'batch_size'?"
    assert probe.params_hint(KeyError("batchsize"), user_code.TrackedParams()) == ""  # not read


# --- the probe itself: one backend import for all of these ---------------------------------

@pytest.fixture(scope="module")
def yours(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hunted")
    data_module, data_file = module(folder, DATA)
    model_module, model_file = module(folder, MODELS)
    raising, raising_file = module(folder, "raise ImportError('broken at import')\n\n\n"
                                           "def mlp(input_shape, num_classes, params):\n"
                                           "    pass\n")
    return folder, {"data": (data_module, data_file), "model": (model_module, model_file),
                    "raising": (raising, raising_file)}


def probed(folder: Path, dataset: str, model: str) -> str:
    config = folder / "config.yaml"
    config.write_text(CONFIG.format(data=dataset, model=model))
    with pytest.raises(probe.ProbeFailed) as failed:
        probe.probe(space.load(config))
    return str(failed.value).splitlines()[0]


DATA_KEY = "configuration.dataset.values[0]"


def line_of(text: str, start: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith(start))


@pytest.mark.parametrize("function, found", [
    ("tiny", "{d}:tiny(): 5 samples of 3 classes are too few for the stratified 80-10-10 "
                "split (partitioning; class 0: 2, class 1: 2, class 2: 1); allowed: at least 10 "
                "samples of each class for the 80-10-10 split"),
    ("lens", "{d}:lens(): x has 10 samples and y 9; allowed: one label per sample"),
    ("none", "{d}:none() is a NoneType; allowed:"),
    ("valdation", "; your dict has 'valdation': did you mean 'validation'?"),
    ("tset", "{d}:tset() returned a dict with key 'tset', which the pipeline does not read; "
                 "did you mean 'test'?"),
], ids=["tiny", "lens", "none", "valdation", "tset"])
def test_the_probe_names_the_key_path_and_the_def_of_your_data_function(yours, function,
                                                                        found):
    folder, modules = yours
    name, path = modules["data"]
    text = probed(folder, f"{name}:{function}", "ffnn")
    assert found.format(d=name) in text and "raised ValueError" not in text
    line = line_of(DATA, f"def {function}(")
    assert text.endswith(f" ({DATA_KEY}; def at {path}:{line})")


def test_a_model_whose_output_is_too_wide_names_its_key_path_and_def(yours):
    folder, modules = yours
    name, path = modules["model"]
    text = probed(folder, f"{modules['data'][0]}:good", f"{name}:wide")
    line = line_of(MODELS, "def wide")
    assert text.endswith("one value per class (your function gets num_classes=3) "
                         f"(configuration.model.values[0]; def at {path}:{line})")


def test_a_model_module_that_raises_at_import_is_not_blamed_on_the_function(yours):
    folder, modules = yours
    raising, raising_file = modules["raising"]
    text = probed(folder, f"{modules['data'][0]}:good", f"{raising}:mlp")
    assert text == (f"{raising}:mlp: module {raising!r} does not import: it raised ImportError "
                    f"at import: broken at import ({raising_file}:1) "
                    "(configuration.model.values[0])")
    assert raising not in sys.modules  # the probe drops your modules after it


def test_a_misspelt_params_key_in_your_function_names_the_nearest_key(yours):
    folder, modules = yours
    name, path = modules["data"]
    text = probed(folder, f"{name}:misread", "ffnn")
    line = line_of(DATA, "    return np.zeros((200, 3)) + params")
    assert text == (f"{name}:misread(params) raised KeyError: 'batchsize' ({path}:{line}); "
                    f"params has no 'batchsize'; did you mean 'batch_size'? ({DATA_KEY})")
