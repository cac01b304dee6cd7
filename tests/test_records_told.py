"""Issue 33 item 5: the records tell what ran. A run of your own training loop records the
loop and no built-in model or dataset it never used; a pareto search's page 1 says its
relevance reads the random start's runs (and how few), leaves out a comparison with the
median run that means nothing, and never calls an estimate measured."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from greenscreen_pipeline import analysis, collect, report

# Your own loop (as in test_own_training.py): it reads seed, units, lr and epochs only.
LOOP = '''import keras
import numpy as np


def train(params, callbacks):
    rng = np.random.default_rng(params["seed"])
    x = rng.normal(0.0, 1.0, (200, 4)).astype("float32")
    y = x.sum(axis=1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(params["units"]),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(params["lr"]), "mse")
    history = model.fit(x, y, validation_split=0.25, epochs=params["epochs"], verbose=0,
                        callbacks=callbacks)
    return {"val_loss": history.history["val_loss"][-1]}
'''


def own_loop_study(tmp_path: Path) -> Path:
    """A config folder with loop.py: one run of one epoch, model and dataset left out."""
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "loop.py").write_text(LOOP)
    config = {"settings": {"runs": 1, "epochs": 1, "seed": 3, "sweep_dir": "sweeps/s",
                           "energy_source": "nvidia-smi", "train": "loop:train",
                           "objective": "val_loss"},
              "configuration": {"units": {"values": [8]}, "lr": {"values": [0.01]}}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def pdf_pages(path: Path) -> list[str]:
    """Each page's text with its whitespace made single spaces (pypdf breaks lines)."""
    from pypdf import PdfReader

    return [" ".join(page.extract_text().split()) for page in PdfReader(str(path)).pages]


@pytest.mark.backends("tensorflow")
def test_your_own_loop_is_recorded_and_no_built_in_model_or_dataset(fake_smi, tmp_path):
    folder = own_loop_study(tmp_path)
    done = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "sweep",
                           "--no-probe"], cwd=folder, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    run, sweep = folder / "sweeps" / "s" / "000", folder / "sweeps" / "s"
    assert json.loads((run / "status.json").read_text())["status"] == "done"
    text = (run / "parameters.yaml").read_text()
    params = yaml.safe_load(text)
    assert params["train"] == "loop:train"
    assert "small_cnn" not in text and "digits" not in text
    # What the loop never read is n/a; what it read, and the precision the pipeline set
    # around it, keep their values.
    assert params["model"] == params["dataset"] == params["optimizer"] == "n/a"
    assert params["batch_size"] == params["method"] == params["partitioning"] == "n/a"
    assert params["lr"] == 0.01 and params["units"] == 8 and params["precision"] == "float32"
    results = json.loads((run / "results.json").read_text())
    assert results["train"] == "loop:train"

    analysis.analyze(sweep)
    row = collect.load_sweep(sweep).iloc[0]
    assert row["train"] == "loop:train" and row["model"] == row["dataset"] == "n/a"
    pages = pdf_pages(report.build(sweep, tmp_path / "r.pdf"))
    assert "training loop" in pages[0] and "loop:train (settings.train)" in pages[0]
    whole = " ".join(pages)
    assert "small_cnn" not in whole and "digits" not in whole


def test_a_loop_that_reads_params_whole_records_every_value():
    from greenscreen_pipeline.run import own_loop

    params = own_loop.LoopParams({"model": "small_cnn", "lr": 0.1, "precision": "float32"})
    params["lr"]
    assert own_loop.not_run(params) == {"model": "n/a"}
    assert own_loop.recorded(params, "loop:train")["model"] == "n/a"
    dict(**params)  # read whole: every key may have been used
    assert own_loop.not_run(params) == {}


SPACE = {"batch_size": [16, 32, 64], "lr": [0.01, 0.001], "model": ["ffnn"]}
# (run, batch_size, lr, accuracy, energy J); runs 001-003 of the random start failed.
PARETO_RUNS = [(0, 64, 0.01, 0.9, 100.0), (4, 16, 0.01, 0.9, 400.0),
               (5, 32, 0.001, 0.7, 200.0), (6, 32, 0.01, 0.89, 210.0),
               (7, 16, 0.001, 0.71, 390.0)]


def write_estimated_run(folder: Path, config: dict, acc: float | None,
                        energy: float | None) -> None:
    """A run folder as a CPU-only run leaves it: its energy estimated from CPU time."""
    folder.mkdir(parents=True)
    status = "done" if energy is not None else "failed"
    (folder / "parameters.yaml").write_text(yaml.safe_dump(
        {**config, **({"test_accuracy": acc} if acc is not None else {})}))
    (folder / "status.json").write_text(json.dumps({"status": status, "reason": (
        None if status == "done" else "RuntimeError: boom")}))
    if energy is None:
        return
    (folder / "summary.json").write_text(json.dumps({
        "energy_j": energy, "power_avg_w": 10.0, "duration_s": energy / 10.0,
        "source": "estimated:cpu-time", "t_start": 1.7e9, "t_end": 1.7e9 + energy / 10.0,
        "components": {"cpu": {"energy_j": energy, "source": "estimated:cpu-time"}},
        "unmeasured": {"gpu": "no GPU found"}, "test_accuracy": acc}))
    rows = ["epoch,loss,accuracy,val_accuracy,power_w,energy_j",
            f"0,0.5,{acc},{acc},10.0,{energy}"]
    (folder / "logs.csv").write_text("\n".join(rows) + "\n")


def pareto_sweep(sweep: Path) -> Path:
    """Twelve runs in batches of 2: the random start is runs 000-003, of which only 000
    finished; four more, chosen by the sampler, finished with batch_size and lr varied."""
    sweep.mkdir(parents=True)
    (sweep / "sweep.json").write_text(json.dumps({
        "seed": 7, "space": SPACE, "settings": {"runs": 12, "epochs": 1},
        "search": {"search": "pareto", "search_sampler": "tpe", "batch_size": 2}}))
    for i in (1, 2, 3):
        write_estimated_run(sweep / f"{i:03d}", {"batch_size": 16, "lr": 0.01,
                                                  "model": "ffnn"}, None, None)
    for i, bs, lr, acc, energy in PARETO_RUNS:
        write_estimated_run(sweep / f"{i:03d}", {"batch_size": bs, "lr": lr, "model": "ffnn"},
                            acc, energy)
    return sweep


def test_a_pareto_search_s_page_one_says_what_its_figures_are(tmp_path):
    sweep = pareto_sweep(tmp_path / "sweep")
    result = analysis.analyze(sweep)
    assert result["done"] == 5 and result["recommendation"]["run"] == "000"
    first = pdf_pages(report.build(sweep, tmp_path / "r.pdf"))[0]
    # The relevance reads the random start only, and says how few of its runs finished.
    assert "relevance is computed on the 1 finished run(s) of its random start" in first
    assert "Its random start's 1 run is too few to name a driver" in first
    assert "2 parameter(s) varied across the 5 finished runs: batch_size, lr" in first
    assert "No parameter varied" not in first
    # The median of runs the sampler chose is no reference: no "+0 % against the median".
    assert "against the median run" not in first and not re.search(r"[+-]\d+ % against", first)
    assert "the median of its 5 finished run(s) means nothing here" in first
    # Estimated energy is called estimated, and nothing on page 1 calls it measured.
    assert "used 100 J (an estimate, not a measurement)" in first
    assert not [m for m in re.finditer(r"\bmeasured\b", first)
                if not first[:m.start()].endswith("not ")], first
