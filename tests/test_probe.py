"""The probe (issue 33): `check` and the sweep call your dataset and model functions once,
before any run, and name each mistake with your function, what it found and what is
allowed; your own splits without a test split are evaluated on the validation split."""

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from greenscreen_pipeline import cli, probe, space
from greenscreen_pipeline.objective import Objective
from greenscreen_pipeline.run import user_data
from greenscreen_pipeline.run.data import DataError

ROOT = Path(__file__).resolve().parents[1]
NAMES = itertools.count()  # one module name per study: the probe runs in this process too
CONFIG = """settings: {{runs: {runs}, epochs: 1, seed: 0, energy_source: nvidia-smi}}
configuration:
  dataset: {{values: ["{data}:load"]}}
  model: {{values: ["{model}"]}}
  batch_size: {{values: [16]}}
"""
MODEL = """import keras


def mlp(input_shape, num_classes, params):
    inputs = keras.Input(input_shape)
    x = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes + {extra},
                                                  activation="softmax")(x))
"""


def study(folder: Path, body: str, model: str = "ffnn", extra: int | None = None,
          runs: int = 1) -> Path:
    """A config folder with your dataset function `load` (its body) and, with `extra`,
    your model `mlp` whose output is `extra` wider than num_classes."""
    n = next(NAMES)
    data = f"probedata{n}"
    (folder / f"{data}.py").write_text("import numpy as np\n\n\ndef load(params):\n"
                                       "    rng = np.random.default_rng(0)\n" + body)
    if extra is not None:
        (folder / f"probemodel{n}.py").write_text(MODEL.format(extra=extra))
        model = f"probemodel{n}:mlp"
    config = folder / "config.yaml"
    config.write_text(CONFIG.format(runs=runs, data=data, model=model))
    return config


def greenscreen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "greenscreen_pipeline", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def mistakes(config: Path) -> str:
    with pytest.raises(probe.ProbeFailed) as failed:
        probe.probe(space.load(config))
    return str(failed.value)


GOOD_X = "    x = rng.random((200, 8)).astype('float32')\n"
LABELS_1_TO_10 = GOOD_X + "    y = np.arange(200) % 10 + 1\n"


def test_labels_from_1_with_10_classes_name_the_function_and_0_to_9(tmp_path):
    config = study(tmp_path, LABELS_1_TO_10 + "    return {'train': (x[:150], y[:150]), "
                   "'validation': (x[150:], y[150:]), 'num_classes': 10}\n")
    text = mistakes(config)
    data = config.parent.glob("probedata*.py").__next__().stem
    assert text.startswith(f"{data}:load()['train']: labels 1..10, 15 of 150 outside 0..9; "
                           "allowed with num_classes 10: integer labels 0..9 (labels counted "
                           "from 1? use y - 1)")
    assert "--no-probe skips the probe" in text


def test_labels_from_1_without_num_classes_name_the_empty_class_0(tmp_path):
    config = study(tmp_path, LABELS_1_TO_10 + "    return x, y\n")
    text = mistakes(config)
    assert ":load() (train split): class(es) 0 of 0..10 never occur in the train split " \
           "(labels 1..10; 11 classes from the largest label + 1); allowed: every class " \
           "0..10 in the train split (labels counted from 1? use y - 1)" in text


def test_a_class_that_never_occurs_in_the_train_split_is_named(tmp_path):
    config = study(tmp_path, GOOD_X + "    y = np.array([0, 1, 3, 4] * 50)\n"
                   "    return {'train': (x[:150], y[:150]), 'validation': (x[150:], y[150:]), "
                   "'test': (x[150:], y[150:])}\n")
    assert "()['train']: class(es) 2 of 0..4 never occur in the train split" in \
        mistakes(config)


@pytest.mark.parametrize("body, found", [
    ("    return rng.random((100, 8)), np.arange(99) % 3\n",
     "load(): x has 100 samples and y 99; allowed: one label per sample"),
    ("    x = rng.random((100, 8))\n    x[3, 2] = np.nan\n    x[7, 1] = np.inf\n"
     "    return {'train': (x[:80], np.arange(80) % 2), 'validation': (x[80:], "
     "np.arange(20) % 2)}\n",
     "load()['train']: x holds 2 value(s) that are NaN or infinite; allowed: finite numbers"),
])
def test_lengths_and_values_that_are_not_finite(tmp_path, body, found):
    assert found in mistakes(study(tmp_path, body))


def test_a_model_whose_output_does_not_fit_the_classes(tmp_path):
    config = study(tmp_path, GOOD_X + "    return x, np.arange(200) % 3\n", extra=2)
    text = mistakes(config)
    assert ":mlp returned a model whose output per sample has shape (5,); allowed: (3,), " \
           "one value per class (your function gets num_classes=3)" in text
    # your def named once: a run's failure said the pipeline's models.py:86 instead
    model = next(tmp_path.glob("probemodel*.py"))
    assert text.count(f"def at {model}:4)") == 1 and "models.py" not in text


def test_num_classes_smaller_than_the_labels_is_one_error_not_a_traceback(tmp_path, capsys):
    body = GOOD_X + ("    y = np.arange(200) % 10\n    return {'train': (x[:150], y[:150]), "
                     "'validation': (x[150:], y[150:]), 'num_classes': 5}\n")
    config = study(tmp_path, body)
    assert cli.main(["check", "--config", str(config)]) == 2  # the command, in this process
    err = capsys.readouterr().err
    assert err.startswith("greenscreen: ") and "Traceback" not in err and "IndexError" not in err
    assert "allowed with num_classes 5: integer labels 0..4" in err.splitlines()[0]
    # The run's own rule, the one the probe calls: a run meets it before to_categorical.
    with pytest.raises(DataError, match="labels 0..9, 75 of 150 outside 0..4"):
        user_data.prepare({"train": (list(range(150)), [i % 10 for i in range(150)]),
                           "validation": ([0], [0]), "num_classes": 5}, Objective(),
                          "80-10-10", 0, "mine:load")
    skipped = greenscreen("check", "--config", str(config), "--no-probe")
    assert skipped.returncode == 0, skipped.stderr
    assert "no probe (--no-probe)" in skipped.stdout and "probed" not in skipped.stdout


@pytest.mark.parametrize("given", [0, -2, 2.5, True, "3"])
def test_a_num_classes_that_is_no_count_is_one_error(given):
    """num_classes 0 was taken for "not given": the classes were inferred without a word."""
    splits = {"train": (list(range(150)), [i % 3 for i in range(150)]),
              "validation": ([0, 1, 2], [0, 1, 2]), "num_classes": given}
    with pytest.raises(DataError, match=rf"mine:load: num_classes={given!r} is not valid; "
                                        r"allowed: an integer >= 1"):
        user_data.prepare(splits, Objective(), "80-10-10", 0, "mine:load")


def test_the_sweep_refuses_to_start_on_a_probe_failure(fake_smi, tmp_path):
    config = study(tmp_path, LABELS_1_TO_10 + "    return x, y\n", runs=2)
    out = tmp_path / "sweep"
    done = greenscreen("sweep", "local", "--config", str(config), "--sweep-dir", str(out))
    assert done.returncode == 2, done.stderr
    assert "class(es) 0 of 0..10 never occur in the train split" in done.stderr
    assert "nothing was trained" in done.stderr
    assert not (out / "000").exists()


def test_splits_without_a_test_split_are_evaluated_on_the_validation_split(fake_smi, tmp_path):
    pids = tmp_path / "pids"  # each call of your dataset function: the process that made it
    config = study(tmp_path, GOOD_X + "    y = np.arange(200) % 3\n"
                   f"    open({str(pids)!r}, 'a').write(f'{{__import__(\"os\").getpid()}}\\n')\n"
                   "    return {'train': (x[:150], y[:150]), 'validation': (x[150:], y[150:])}\n")
    out = tmp_path / "sweep"
    done = greenscreen("sweep", "local", "--config", str(config), "--sweep-dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "probed your code with run 000's configuration in " in done.stdout
    # The probe ran in the warm worker that then trained run 000: one backend import.
    probed, trained = pids.read_text().split()
    assert probed == trained
    assert "150/50 samples (your splits)" in done.stdout
    assert "no test split: runs are evaluated on the validation split" in done.stdout
    results = json.loads((out / "000" / "results.json").read_text())
    assert results["evaluated_on"] == "validation"
    assert results["objective"]["split"] == "validation"
    assert sum(map(sum, results["confusion_matrix"])) == 50  # the validation split's samples
    from greenscreen_pipeline import collect
    from greenscreen_pipeline.report import details
    from greenscreen_pipeline.report.inputs import ReportInputs

    said = details.evaluated_split(ReportInputs(out, {}, collect.load_sweep(out)))
    text = " ".join(texts(said))
    assert "1 of the 1 finished runs (000) were evaluated on the validation split" in text


def texts(flowables) -> list[str]:
    """The paragraphs' text, inside KeepTogether too."""
    out = []
    for flowable in flowables:
        out += texts(getattr(flowable, "_content", [])) + [getattr(flowable, "text", "")]
    return out


SUBCLASSED = """import keras


class Mlp(keras.Model):
    def __init__(self, num_classes):
        super().__init__()
        self.hidden = keras.layers.Dense(8, activation="relu")
        self.out = keras.layers.Dense(num_classes + {extra}, activation="softmax")

    def call(self, x):
        return self.out(self.hidden(x))


def mlp(input_shape, num_classes, params):
    return Mlp(num_classes)
"""
NO_INPUT = """import keras


def mlp(input_shape, num_classes, params):
    return keras.Sequential([keras.layers.Dense(num_classes + {extra}, activation="softmax")])
"""


@pytest.mark.parametrize("source", [SUBCLASSED, NO_INPUT], ids=["subclassed", "no-input"])
def test_a_model_keras_builds_only_when_called_is_built_checked_and_trained(tmp_path, source):
    """A subclassed model, or a Sequential without an Input, failed every run and the probe
    on the pipeline's own count_params ("the layer isn't built"), blamed on your function."""
    config = study(tmp_path, GOOD_X + "    return x, np.arange(200) % 3\n")
    module = f"probemodel{next(NAMES)}"
    (tmp_path / f"{module}.py").write_text(source.format(extra=0))
    config.write_text(config.read_text().replace('"ffnn"', f'"{module}:mlp"'))
    probed = probe.probe(space.load(config))
    assert any(f"{module}:mlp((8,), 3, params): output (3,)" in c for c in probed.checked), \
        probed.checked
    (tmp_path / f"{module}.py").write_text(source.format(extra=2))  # one output too many
    assert f"{module}:mlp returned a model whose output per sample has shape (5,); allowed: " \
           "(3,)" in mistakes(config)


def test_a_model_keras_cannot_serialize_is_kept_as_its_weights(tmp_path):
    """A final run of a subclassed model without get_config trained all its epochs, then
    failed on model.save: every seed's training lost."""
    import importlib

    import keras
    import numpy as np

    from greenscreen_pipeline.run import training

    module = f"probemodel{next(NAMES)}"
    (tmp_path / f"{module}.py").write_text(SUBCLASSED.format(extra=0))
    sys.path.insert(0, str(tmp_path))
    try:
        net = importlib.import_module(module).mlp((8,), 3, {})
    finally:
        sys.path.remove(str(tmp_path))
    x = np.ones((2, 8), "float32")
    net(x)
    with pytest.warns(RuntimeWarning, match="Mlp cannot be saved whole .*get_config.*"
                                            "model.weights.h5"):
        kept = training.save_trained(net, tmp_path)
    assert kept == tmp_path / "model.weights.h5" and not (tmp_path / "model.keras").exists()
    again = importlib.import_module(module).Mlp(3)
    again(x)
    again.load_weights(kept)
    assert np.allclose(again(x), net(x))
    plain = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    assert training.save_trained(plain, tmp_path) == tmp_path / "model.keras"


def test_your_code_calling_sys_exit_is_one_error_naming_it(tmp_path):
    """sys.exit in your function (or an argparse parse_args at your module's import) ended
    `check` with its bare message and every run with "worker exited with code 1"."""
    config = study(tmp_path, "    import sys\n    sys.exit('my data is missing')\n")
    text = mistakes(config)
    assert ":load(params) raised SystemExit: my data is missing (" in text and \
        "probedata" in text.split("raised SystemExit")[1]
    module = f"probemodel{next(NAMES)}"
    (tmp_path / f"{module}.py").write_text("import argparse\n\nargparse.ArgumentParser()"
                                           ".parse_args(['--nope'])\n\n\ndef mlp(input_shape, "
                                           "num_classes, params):\n    pass\n")
    config = study(tmp_path, GOOD_X + "    return x, np.arange(200) % 3\n")
    config.write_text(config.read_text().replace('"ffnn"', f'"{module}:mlp"'))
    text = mistakes(config)
    assert f"{module}:mlp: module {module!r} does not import: it raised SystemExit at import: " \
        f"2 ({tmp_path / module}.py:3)" in text


def test_a_run_whose_model_does_not_fit_names_your_def(tmp_path):
    """A run (the probe passed on run 000's configuration) failed with "ModelError: ...
    (greenscreen_pipeline/run/models.py:86)": the pipeline's line, said as where to fix."""
    import numpy as np

    from greenscreen_pipeline.run import models, training
    from greenscreen_pipeline.run.data import Splits

    config = space.load(study(tmp_path, GOOD_X + "    return x, np.arange(200) % 3\n",
                              extra=1))
    model = next(tmp_path.glob("probemodel*.py"))
    x, y = np.zeros((6, 8), "float32"), np.arange(6) % 3
    with pytest.raises(models.ModelError) as failed:
        training.build_model(config.run(0), Splits(x, y, x, y, x, y, 3), 1, config.folder)
    assert str(failed.value).endswith(f"(your function gets num_classes=3) (def at {model}:4)")


def test_a_run_whose_data_is_not_finite_fails_before_training_naming_your_function(tmp_path):
    """NaN in x for a configuration the probe did not try: the run trained an epoch and
    was reported "Diverged: loss became nan in epoch 1", nothing pointing at the data."""
    from greenscreen_pipeline import user_code
    from greenscreen_pipeline.objective import Objective
    from greenscreen_pipeline.run import training

    body = GOOD_X + "    x[3, 2] = np.nan if params['batch_size'] == 16 else 0.5\n" \
                    "    return x, np.arange(200) % 3\n"
    config = space.load(study(tmp_path, body))
    data = next(tmp_path.glob("probedata*.py"))
    cfg = config.run(0)
    with pytest.raises(DataError) as failed:
        training.read_data(cfg, config.settings, user_code.TrackedParams(cfg), Objective(), 0,
                           config.folder)
    assert f"{data.stem}:load() (test split): x holds 1 value(s) that are NaN or infinite; " \
           "allowed: finite numbers" in str(failed.value)
    assert str(failed.value).endswith(f"(def at {data}:4)")
    fine = {**cfg, "batch_size": 32}
    training.read_data(fine, config.settings, user_code.TrackedParams(fine), Objective(), 0,
                       config.folder)


def test_a_model_of_several_inputs_or_of_no_zeros_input_is_built_or_left_to_fit():
    """Zeros shaped (1, *input_shape) broke a run whose streams give several inputs (a
    tuple or dict of shapes: TypeError), and a model whose first layer reads text."""
    import keras

    from greenscreen_pipeline.run import models

    class Two(keras.Model):
        def __init__(self):
            super().__init__()
            self.a, self.b = keras.layers.Dense(3), keras.layers.Dense(3)

        def call(self, x):
            first, second = (x["p"], x["q"]) if isinstance(x, dict) else x
            return keras.ops.softmax(self.a(first) + self.b(second))

    class Text(keras.Model):
        def call(self, x):
            raise TypeError("this model reads strings")

    assert models.known_output_shape(Two(), ((4,), (5,))) == (3,)
    assert models.known_output_shape(Two(), {"p": (4,), "q": (2,)}) == (3,)
    assert models.known_output_shape(Text(), (4,)) is None  # fit builds it, as Keras would
