"""Sweeping your own training: your model, your data and your own dimensions, run as a
user would, from a config folder outside the checkout (examples/own-model/)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from greenscreen_pipeline import space

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "own-model"


def greenscreen(*args, cwd, timeout=600, command=(sys.executable, "-m", "greenscreen_pipeline")):
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def own(tmp_path):
    """The example copied outside the checkout, made small: 2 runs of 1 epoch."""
    folder = tmp_path / "study"
    shutil.copytree(EXAMPLE, folder)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["settings"].update(runs=2, epochs=1, final_epochs=1, final_seeds=1,
                              sweep_dir="sweeps/own")
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


@pytest.mark.backends("tensorflow", "jax")
def test_own_model_data_and_dimension_through_the_whole_pipeline(fake_smi, own):
    pids = own / "pids"  # each call of your dataset function: the process that made it
    with open(own / "data.py", "a") as fh:
        fh.write(f"\n\n_blobs = blobs\n\n\ndef blobs(params):\n"
                 f"    open({str(pids)!r}, 'a').write(f'{{__import__(\"os\").getpid()}}\\n')\n"
                 f"    return _blobs(params)\n")
    # The console command, as `./greenscreen.sh --config ...` runs it (greenscreen all).
    done = greenscreen("all", "--out", "report.pdf", cwd=own,
                       command=(str(Path(sys.executable).parent / "greenscreen"),))
    assert done.returncode == 0, done.stderr[-3000:]
    # The probe, both runs and both final runs in one worker: one backend import (issue 31).
    made = pids.read_text().split()
    assert len(made) >= 4 and len(set(made)) == 1, made  # 4: the recommendation is run 000
    sweep = own / "sweeps" / "own"
    for i in range(2):
        params = yaml.safe_load((sweep / f"{i:03d}" / "parameters.yaml").read_text())
        assert params["model"] == "model:mlp" and params["units"] in (64, 8, 256)
        assert json.loads((sweep / f"{i:03d}" / "status.json").read_text())["status"] == "done"
    analysis = json.loads((sweep / "analysis.json").read_text())
    assert "units" in json.dumps(analysis["recommendation"])  # an own dimension, analysed
    final = yaml.safe_load((sweep / "final" / "parameters.yaml").read_text())
    assert final["model"] == "model:mlp" and "hidden_layers" in final
    from pypdf import PdfReader

    text = " ".join(page.extract_text() for page in PdfReader(str(own / "report.pdf")).pages)
    assert "units" in text and "hidden_layers" in text  # your dimensions, under their names


def test_an_own_dimension_nobody_reads_is_named_after_run_000(fake_smi, own):
    text = (own / "config.yaml").read_text().replace("configuration:\n",
                                                     "configuration:\n  colour: {values: [red]}\n")
    (own / "config.yaml").write_text(text)
    done = greenscreen("sweep", "--runs", "1", cwd=own)
    assert done.returncode == 0, done.stderr[-3000:]
    assert ("warning: run 000: your own dimension(s) colour were read by none of your "
            "functions (model, dataset or training loop") in done.stderr
    assert "units" not in done.stderr.split("warning: run 000:")[1].splitlines()[0]


def test_own_splits_make_partitioning_not_apply(fake_smi, own):
    (own / "data.py").write_text((EXAMPLE / "data.py").read_text() + '''

def splits(params):
    x, y = blobs(params)
    return {"train": (x[:600], y[:600]), "validation": (x[600:750], y[600:750]),
            "test": (x[750:], y[750:])}
''')
    text = (own / "config.yaml").read_text().replace("data:blobs", "data:splits")
    (own / "config.yaml").write_text(text)
    done = greenscreen("sweep", "--runs", "1", cwd=own)
    assert done.returncode == 0, done.stderr[-3000:]
    params = yaml.safe_load((own / "sweeps" / "own" / "000" / "parameters.yaml").read_text())
    assert params["partitioning"] == "n/a" and params["test_accuracy"] > 0.5


@pytest.mark.parametrize("entry, message", [
    ("nosuchmodule:mlp", "module 'nosuchmodule' does not import"),
    ("model:mpl", "has no function 'mpl'; did you mean 'mlp'?"),
    ("data:blobs", "data:blobs must take 3 positional argument(s) (input_shape, "
                   "num_classes, params)"),
])
def test_a_bad_entry_is_one_error_with_its_key_path_before_any_training(own, entry, message):
    text = (own / "config.yaml").read_text().replace("model:mlp", entry)
    (own / "config.yaml").write_text(text)
    done = greenscreen("sweep", cwd=own, timeout=300)
    assert done.returncode == 2
    assert "configuration.model.values[0]: got " in done.stderr and message in done.stderr
    ours = [line for line in done.stderr.splitlines() if line.startswith("greenscreen:")]
    assert len(ours) == 1 and ours[0] == done.stderr.strip().splitlines()[-1]  # TF's start-up
    assert not (own / "sweeps").exists()                 # lines, when model.py imports it, aside


@pytest.mark.parametrize("raising", ["raise RuntimeError('my model is broken')",
                                     "__import__('sys').exit('my model is broken')"])
def test_a_function_that_raises_fails_its_run_with_the_traceback(fake_smi, own, raising):
    """sys.exit in your function ended the worker: "worker exited with code 1 without
    writing its status", the reason under TensorFlow's log lines."""
    (own / "model.py").write_text("def mlp(input_shape, num_classes, params):\n"
                                  f"    {raising}\n")
    done = greenscreen("sweep", "--runs", "1", "--no-probe", cwd=own)  # the probe: test_probe
    assert done.returncode == 1, done.stderr[-3000:]  # its only run failed
    assert "no run finished: 1 failed" in done.stderr
    status = json.loads((own / "sweeps" / "own" / "000" / "status.json").read_text())
    assert status["status"] == "failed" and "my model is broken" in status["reason"]
    assert "model.py" in status["traceback_tail"]
    assert f"my model is broken ({own / 'model.py'}:2)" in done.stdout  # your line, named


def test_own_dimensions_are_sampled_like_the_built_in_ones(own):
    config = space.load(own / "config.yaml")
    assert config.own_dimensions == ["units", "hidden_layers", "noise"]
    assert config.run(0)["units"] == 64  # run 0: the first value of every dimension
    assert {config.run(i)["units"] for i in range(1, 30)} == {64, 8, 256}
