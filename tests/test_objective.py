"""A sweep ranked by its own objective (issue 24): Objective.from_settings, and a regression
sweep (settings.loss mse, settings.objective val_loss, minimised) through collect, the
analysis and the report, on run folders written as real runs write them."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from pdfpages import render, used_height

from greenscreen_pipeline import analysis, collect, report
from greenscreen_pipeline.objective import Objective, ObjectiveError
from greenscreen_pipeline.records import RunResults
from greenscreen_pipeline.runfolder import RunFolder

REGRESSION = {"loss": "mse", "objective": "val_loss", "objective_mode": "auto"}
FLOOR = 0.05
# SMICallback's logs.csv columns for a model compiled with metrics=["mae"].
LOG_COLUMNS = ("epoch", "t_start", "t_end", "loss", "mae", "val_loss", "val_mae", "energy_j",
               "power_w", "power_peak_w", "gpu_temp_c", "gpu_util_pct", "epoch_s",
               "val_energy_j", "coverage", "source", "shared_with", "reason", "attempt")
# run: (test loss, energy in J). The best loss is 001's (0.20); within FLOOR above it are
# 001, 002, 005 and 006, of which 002 is the cheapest: the recommendation. 003 is cheaper
# but 0.06 above the best. The front (lower loss, lower energy): 000, 007, 003, 002, 006,
# 001; 004 is beaten by 002, 005 by 001.
RUNS = {"000": (0.50, 100.0), "001": (0.20, 400.0), "002": (0.24, 200.0),
        "003": (0.26, 150.0), "004": (0.30, 300.0), "005": (0.22, 500.0),
        "006": (0.21, 350.0), "007": (0.45, 120.0)}
FRONT = ["000", "007", "003", "002", "006", "001"]


# -- Objective.from_settings -----------------------------------------------------------------

@pytest.mark.parametrize("name, maximise", [("val_loss", False), ("val_mae", False),
                                            ("val_accuracy", True), ("val_auc", True)])
def test_auto_mode_knows_the_direction_of_keras_metrics(name, maximise):
    objective = Objective.from_settings({"loss": "mse", "objective": name,
                                         "objective_mode": "auto"})
    assert (objective.name, objective.maximise) == (name, maximise)
    assert objective.mode == ("max" if maximise else "min")


def test_the_default_is_classification_by_accuracy_and_a_regression_loss_ranks_by_val_loss():
    assert Objective.from_settings({}) == Objective("categorical_crossentropy", "val_accuracy",
                                                    True)
    assert Objective.from_settings({}).classification
    regression = Objective.from_settings({"loss": "mse", "objective": ""})
    assert (regression.name, regression.maximise, regression.classification) == (
        "val_loss", False, False)
    assert regression.label == "loss (lower is better)" and regression.test_name == "test_loss"


def test_an_unknown_metric_in_auto_mode_is_an_error_naming_the_setting():
    with pytest.raises(ObjectiveError) as caught:
        Objective.from_settings({"loss": "mse", "objective": "val_wiggle"})
    assert caught.value.key == "objective_mode" and "val_wiggle" in caught.value.allowed


@pytest.mark.parametrize("name, mode, maximise", [("val_wiggle", "max", True),
                                                  ("val_wiggle", "min", False),
                                                  ("val_loss", "max", True),
                                                  ("val_accuracy", "min", False)])
def test_an_explicit_mode_wins_over_the_metric_s_name(name, mode, maximise):
    objective = Objective.from_settings({"loss": "mse", "objective": name,
                                         "objective_mode": mode})
    assert objective.maximise is maximise


# -- run folders as a regression sweep's runs write them -------------------------------------

def write_sweep_json(sweep: Path, settings: dict) -> None:
    sweep.mkdir(parents=True, exist_ok=True)
    (sweep / "sweep.json").write_text(json.dumps({
        "seed": 22, "space": {"batch_size": [16, 32], "lr": [0.01, 0.001]},
        "settings": {**settings, "accuracy_floor": FLOOR}}))


def write_run(folder: Path, params: dict, loss: float, energy: float, *, epochs: int = 3,
              tested: bool = True, recorded: bool = True) -> None:
    """A finished regression run: parameters.yaml with its test metrics, status.json,
    summary.json, logs.csv (val_loss ends 0.1 above the test loss) and results.json
    through RunFolder, results.json's objective being the test loss. `tested`: the test
    metrics were recorded (False: an older folder without them); `recorded`: results.json
    names the objective's value (False: written before settings.objective existed)."""
    folder.mkdir(parents=True)
    run, power = RunFolder(folder), 100.0
    metrics = {"test_accuracy": None, "test_loss": loss, "test_mae": loss ** 0.5}
    run.write_parameters({**params, **(metrics if tested else {})})
    (folder / "status.json").write_text(json.dumps({"status": "done", "reason": None}))
    (folder / "summary.json").write_text(json.dumps({
        "energy_j": energy, "power_avg_w": power, "duration_s": energy / power,
        "source": "measured:nvml-counter", "t_start": 1.7e9, "t_end": 1.7e9 + energy / power,
        "backend": "tensorflow", "devices": [{"index": 0, "name": "NVIDIA H200",
                                              "energy_j": energy}],
        "attempts": [{"t_start": 1.7e9, "t_end": 1.7e9 + energy / power, "energy_j": energy,
                      "duration_s": energy / power}]}))
    history = {"loss": [], "mae": [], "val_loss": [], "val_mae": []}
    rows = [",".join(LOG_COLUMNS)]
    for e in range(epochs):
        val_loss = loss + 0.1 * (epochs - e)
        values = {"loss": val_loss - 0.05, "mae": val_loss ** 0.5, "val_loss": val_loss,
                  "val_mae": val_loss ** 0.5}
        for key, value in values.items():
            history[key].append(value)
        rows.append(",".join(str(c) for c in (
            e, 1.7e9 + e, 1.7e9 + e + 1, values["loss"], values["mae"], val_loss,
            values["val_mae"], energy / epochs, power, power + 10, 60, 90, energy / power / epochs,
            0.0, 1.0, "measured:nvml-counter", 0, "", 1)))
    (folder / "logs.csv").write_text("\n".join(rows) + "\n")
    objective = {"loss": "mse", "name": "val_loss", "mode": "min", "value": loss,
                 "split": "test"} if recorded else {}
    if tested:
        run.write_results(RunResults(None, loss, None, {"keras": "3"}, {}, history,
                                     test_metrics={k: v for k, v in metrics.items() if v},
                                     objective=objective))


def make_regression_sweep(sweep: Path) -> Path:
    write_sweep_json(sweep, REGRESSION)
    for i, (name, (loss, energy)) in enumerate(RUNS.items()):
        params = {"batch_size": [16, 32][i % 2], "lr": [0.01, 0.001][(i // 2) % 2],
                  "model": "my_models:mlp", "dataset": "my_data:houses"}
        write_run(sweep / name, params, loss, energy)
    failed = sweep / "008"
    failed.mkdir()
    (failed / "parameters.yaml").write_text("batch_size: 16\nlr: 0.01\n")
    (failed / "status.json").write_text(json.dumps({"status": "failed",
                                                    "reason": "ValueError: boom"}))
    write_run(sweep / "final", {"batch_size": 32, "lr": 0.01}, 0.23, 600.0, epochs=5)
    return sweep


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    """The regression sweep, analysed once: (folder, analysis result)."""
    sweep = make_regression_sweep(tmp_path_factory.mktemp("regression") / "sweep")
    return sweep, analysis.analyze(sweep, floor=FLOOR)


# -- collect -----------------------------------------------------------------------------------

def test_collect_ranks_by_the_recorded_value_then_the_test_metric_then_validation(tmp_path):
    write_sweep_json(tmp_path, REGRESSION)
    write_run(tmp_path / "000", {"batch_size": 16}, 0.3, 100.0)
    write_run(tmp_path / "001", {"batch_size": 16}, 0.4, 100.0, recorded=False)
    write_run(tmp_path / "002", {"batch_size": 16}, 0.5, 100.0, tested=False, recorded=False)
    results = json.loads((tmp_path / "000" / "results.json").read_text())
    results["objective"]["value"] = 0.25  # the run's own value wins over parameters.yaml's
    (tmp_path / "000" / "results.json").write_text(json.dumps(results))
    df = collect.load_sweep(tmp_path).set_index("run")
    assert df["objective"].tolist() == pytest.approx([0.25, 0.4, 0.6])  # 002: last val_loss
    assert "accuracy" not in df and df.loc["001", "test_loss"] == 0.4
    assert df.loc["002", "best_val_loss"] == pytest.approx(0.6)  # lower is better


def test_the_default_objective_is_today_s_accuracy_on_the_original_pipeline_s_folders():
    seed_runs = Path(__file__).parent / "fixtures" / "seed-runs"
    df = collect.load_sweep(seed_runs)
    assert (df["objective"] == df["accuracy"]).all() and df["objective"].notna().all()


# -- analysis ----------------------------------------------------------------------------------

def test_the_recommendation_is_the_cheapest_run_within_the_floor_above_the_lowest_loss(
        regression):
    _, result = regression
    rec = result["recommendation"]
    assert rec["run"] == "002" and rec["objective"] == pytest.approx(0.24)
    assert rec["best_objective"] == pytest.approx(0.20)
    assert rec["objective_floor"] == rec["accuracy_floor"] == FLOOR
    assert sorted(rec["eligible_runs"]) == ["001", "002", "005", "006"]
    assert result["done"] == 8 and result["failed_or_skipped"][0]["run"] == "008"


def test_the_pareto_front_is_lower_loss_against_lower_energy(regression):
    _, result = regression
    assert [r["run"] for r in result["pareto"]] == FRONT
    losses = [r["objective"] for r in result["pareto"]]
    assert losses == sorted(losses, reverse=True)  # each costlier front run has a lower loss
    df = pd.DataFrame({"run": list("abcd"), "objective": [0.9, 0.8, 0.95, 0.85],
                       "energy_j": [100, 50, 200, 120]})
    minimised = Objective("mse", "val_loss", False)
    assert analysis.pareto(df, minimised)["run"].tolist() == ["b"]  # cheapest and lowest


def test_analysis_json_names_the_objective_and_ranks_by_it(regression):
    sweep, result = regression
    on_disk = json.loads((sweep / "analysis.json").read_text())
    assert on_disk["objective"] == {"loss": "mse", "name": "val_loss", "mode": "min",
                                    "label": "loss (lower is better)"}
    assert [r["run"] for r in on_disk["top_objective"]] == ["001", "006", "005", "002", "003"]
    assert "top_efficiency" not in on_disk and "minimised" in on_disk["efficiency_left_out"]
    assert (sweep / "top_objective.csv").exists() and not (sweep / "top_efficiency.csv").exists()
    relevance = on_disk["relevance"]["objective"]
    assert relevance["target"] == "objective" and relevance["label"] == "loss (lower is better)"
    text = analysis.summary_text(result)
    assert "best loss (lower is better): run 001 (0.2000" in text
    assert "recommended: run 002: loss 0.2400 (best 0.2000, floor 0.05 above)" in text


def test_the_values_rule_picks_each_parameter_s_value_by_the_lowest_mean_loss(tmp_path):
    sweep = make_regression_sweep(tmp_path / "sweep")
    rec = analysis.analyze(sweep, floor=0.01, rule="values")["recommendation"]
    assert rec["based_on"] == "001" and rec["best_objective"] == pytest.approx(0.20)
    for levels in rec["evidence"].values():
        best = min(level["mean_objective"] for level in levels)
        eligible = [lv for lv in levels if lv["mean_objective"] <= best + 0.01]
        chosen = next(lv for lv in levels if lv["chosen"])
        assert chosen == min(eligible, key=lambda lv: lv["mean_energy_j"])


# -- report ------------------------------------------------------------------------------------

def pdf_text(pdf: Path) -> str:
    from pypdf import PdfReader

    return " ".join(" ".join(page.extract_text() for page in PdfReader(str(pdf)).pages).split())


def test_the_report_names_the_objective_and_has_no_confusion_matrix(regression, tmp_path):
    sweep, _ = regression
    pdf = report.build(sweep, tmp_path / "regression.pdf")
    assert all(used_height(page) > 0.05 for page in render(pdf, scale=0.5))
    text = pdf_text(pdf)
    for words in ("The recommended configuration (run 002) used 200 J, +100 % against the "
                  "baseline (run 000), at loss (lower is better) 0.240 against 0.500.",
                  "Energy against loss (lower is better): the Pareto front",
                  "among those at most 0.05 above the best loss (0.200) (settings.objective: "
                  "val_loss, minimised", "Top runs by loss (lower is better)",
                  "No ranking by loss per kWh", "Loss, validation loss, power",
                  "final run 0.230", "loss (lower is better): "):
        assert words in text, words
    assert "confusion" not in text.lower()
    # "accuracy" only in the floor setting's name and the test_accuracy: null of the runs'
    # parameters.yaml (the appendix lists them)
    assert set(re.findall(r"\w*accuracy\w*", text)) <= {"accuracy_floor", "test_accuracy"}


def test_a_classification_sweep_keeps_accuracy_beside_another_objective(tmp_path):
    """Ranked by val_loss (minimised) with a cross-entropy loss: accuracy stays a column."""
    sweep = tmp_path / "sweep"
    write_sweep_json(sweep, {"loss": "categorical_crossentropy", "objective": "val_loss"})
    for name, (loss, energy) in RUNS.items():
        write_run(sweep / name, {"batch_size": 16}, loss, energy)
        params = yaml.safe_load((sweep / name / "parameters.yaml").read_text())
        params["test_accuracy"] = 1 - loss
        (sweep / name / "parameters.yaml").write_text(yaml.safe_dump(params))
    result = analysis.analyze(sweep, floor=FLOOR)
    assert result["recommendation"]["run"] == "002"
    assert result["top_objective"][0]["accuracy"] == pytest.approx(0.80)
    assert collect.load_sweep(sweep)["accuracy"].notna().all()
