"""Run folders with a broken file (issue 33): a logs.csv that does not parse is set aside,
never mixed into a resumed run; analyze names every run it left out and why, reads each
figure from whichever file holds it, and keeps runs without parameters.yaml."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from greenscreen_pipeline import analysis, cli, collect, ranges

GARBAGE = {"garbage": b"%PDF-1.4 \xff\xfe binary; not, a ,csv\n\x01\x02\x03 more junk\n",
           "nul": b"\0" * 4096}


def fit(log_dir: Path, initial_epoch: int, epochs: int):
    import keras

    from greenscreen import SMICallback

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.zeros((16, 4), "float32")
    model.fit(x, x[:, :1], epochs=epochs, initial_epoch=initial_epoch, verbose=0,
              callbacks=[SMICallback(log_dir=log_dir, source="estimate", interval=0.05,
                                     resume=True)])


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_an_unreadable_logs_csv_is_kept_aside_and_never_mixed_into_a_resumed_run(tmp_path, kind):
    fit(tmp_path, 0, 2)
    earlier = json.loads((tmp_path / "summary.json").read_text())["energy_j"]
    (tmp_path / "logs.csv").write_bytes(GARBAGE[kind])
    with pytest.warns(RuntimeWarning, match="could not be read.*kept as logs.csv.unreadable-"):
        fit(tmp_path, 2, 3)
    aside = list(tmp_path.glob("logs.csv.unreadable-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == GARBAGE[kind]  # kept, as it was
    header, *rows = (tmp_path / "logs.csv").read_text().splitlines()
    assert "junk" not in header and "\0" not in header and header.startswith("epoch,")
    logs = collect.RunFolder(tmp_path).logs()
    assert logs["epoch"].tolist() == [0, 1, 2]
    assert logs["energy_j"][:2].isna().all() and logs["energy_j"][2] > 0
    assert logs["reason"][:2].str.startswith("lost: logs.csv could not be read").all()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary["attempts"]) == 2 and summary["energy_j"] > earlier  # both attempts


def test_without_any_record_of_the_earlier_epochs_their_energy_is_lost(tmp_path):
    (tmp_path / "logs.csv").write_bytes(GARBAGE["nul"])
    with pytest.warns(RuntimeWarning, match="recorded as lost"):
        fit(tmp_path, 2, 3)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["attempts"][0]["ended"].startswith("lost: logs.csv could not be read")
    assert summary["energy_j"] is None  # unknown, not the last attempt's alone


def write_run(folder: Path, index: int, *, params=True, logs=True, status="done", acc=0.9,
              energy=600.0):
    folder = folder / f"{index:03d}"
    folder.mkdir(parents=True)
    config = {"batch_size": [16, 32][index % 2], "model": "ffnn"}
    if params:
        (folder / "parameters.yaml").write_text(yaml.safe_dump({**config,
                                                                "test_accuracy": acc}))
    (folder / "status.json").write_text(json.dumps({"status": status}))
    (folder / "summary.json").write_text(json.dumps({
        "energy_j": energy, "power_avg_w": 100.0, "duration_s": energy / 100,
        "source": "measured:nvidia-smi", "t_start": 1.7e9, "t_end": 1.7e9 + 60,
        "test_accuracy": acc}))
    if logs:
        (folder / "logs.csv").write_text("epoch,loss,val_accuracy,energy_j\n0,1.0,0.5,300\n"
                                         f"1,0.5,{acc},300\n")
    return folder


def sweep(tmp_path: Path, runs: int = 6) -> Path:
    for i in range(runs):
        write_run(tmp_path, i, acc=0.8 + 0.01 * i, energy=500.0 + 10 * i)
    return tmp_path


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_a_finished_run_s_unreadable_logs_csv_is_reported_and_the_analysis_goes_on(tmp_path,
                                                                                  kind):
    (sweep(tmp_path) / "002" / "logs.csv").write_bytes(GARBAGE[kind])
    result = analysis.analyze(tmp_path)
    assert result["done"] == 6  # its figures come from its other files
    warned = {w["run"]: w["warning"] for w in result["warnings"]}
    assert "logs.csv" in warned["002"] and "cannot be read" in warned["002"]
    assert "read with a warning: 1 run(s)" in analysis.summary_text(result)


def test_energy_comes_from_summary_json_when_status_json_is_unreadable(tmp_path):
    (sweep(tmp_path) / "003" / "status.json").write_text('{"status": "do')
    df = collect.load_sweep(tmp_path)
    row = df.set_index("run").loc["003"]
    assert row["status"] == "unreadable" and row["energy_j"] == 530.0
    result = analysis.analyze(tmp_path)
    assert result["energy_by_state"]["unreadable"]["energy_j"] == 530.0
    left = {e["run"]: e["reason"] for e in result["left_out"]}
    assert list(left) == ["003"] and "status.json cannot be read" in left["003"]


def test_a_finished_run_without_parameters_yaml_takes_its_configuration_from_the_sweep(
        tmp_path):
    space = {"batch_size": [16, 32, 64], "model": ["ffnn", "small_cnn"]}
    (tmp_path / "sweep.json").write_text(json.dumps({"seed": 7, "space": space}))
    sweep(tmp_path)
    (tmp_path / "004" / "parameters.yaml").unlink()
    row = collect.load_sweep(tmp_path).set_index("run").loc["004"]
    expected = ranges.configuration(space, 7, 4)
    assert row["status"] == "done" and not math.isnan(row["objective"])  # from results
    assert (row["batch_size"], row["model"]) == (expected["batch_size"], expected["model"])
    assert "parameters.yaml is missing" in row["warnings"] and "sweep.json" in row["warnings"]


def test_a_proposed_configuration_is_read_from_configuration_json(tmp_path):
    sweep(tmp_path)
    folder = tmp_path / "001"
    (folder / "parameters.yaml").unlink()
    (folder / "configuration.json").write_text(json.dumps({"batch_size": 64, "model": "resnet"}))
    row = collect.load_sweep(tmp_path).set_index("run").loc["001"]
    assert (row["batch_size"], row["model"]) == (64, "resnet")
    assert "configuration.json" in row["warnings"]


def test_a_run_whose_configuration_is_unknown_is_left_out_by_name(tmp_path):
    sweep(tmp_path)
    (tmp_path / "005" / "parameters.yaml").unlink()  # no sweep.json, no configuration.json
    result = analysis.analyze(tmp_path)
    left = {e["run"]: e["reason"] for e in result["left_out"]}
    assert "005" in left and "neither configuration.json nor sweep.json" in left["005"]
    assert "005" not in [r["run"] for r in result["top_objective"]]


def test_a_finished_run_without_parameters_yaml_and_logs_csv_does_not_vanish(tmp_path):
    space = {"batch_size": [16, 32], "model": ["ffnn"]}
    (tmp_path / "sweep.json").write_text(json.dumps({"seed": 1, "space": space}))
    sweep(tmp_path)
    write_run(tmp_path, 6, params=False, logs=False, acc=0.95, energy=100.0)
    result = analysis.analyze(tmp_path)
    assert result["runs"] == 7 and result["done"] == 7
    assert result["recommendation"]["run"] == "006"  # the best and the cheapest


def test_analyze_names_every_run_it_left_out_with_the_reason(tmp_path, capsys):
    sweep(tmp_path)
    write_run(tmp_path, 6, status="failed")
    (tmp_path / "006" / "status.json").write_text(json.dumps(
        {"status": "failed", "reason": "RuntimeError: boom"}))
    (tmp_path / "003" / "status.json").write_bytes(b"\0\0\0")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"configuration": {"batch_size": {"values": [16, 32]}},
                                      "settings": {"sweep_dir": str(tmp_path)}}))
    assert cli.main(["analyze", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "left out: 2 run(s)" in out
    assert "006: failed: RuntimeError: boom" in out
    assert "003: unreadable:" in out and "status.json cannot be read" in out
    saved = json.loads((tmp_path / "analysis.json").read_text())
    assert {e["run"] for e in saved["left_out"]} == {"003", "006"}
