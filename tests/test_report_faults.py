"""Faults a tester found in analyze and report: `report --analysis DIR` reports the sweep
DIR's analysis was made from (F1); `analyze --component` on energy that was estimated, not
measured (F7); a sweep folder that is not there (F8); the validation split's words for a
regression (F17). Each on finished run folders written here, nothing trained."""

import json
from pathlib import Path

import pytest
import yaml
from test_analysis_report import pdf_text, write_run

from greenscreen_pipeline import analysis, cli, report

ESTIMATE = "estimated:cpu-time"
RAPL = "measured:rapl;attributed:cpu-time-share"


def small_sweep(folder: Path, model: str, runs: int = 2) -> Path:
    """`runs` finished runs of `model`, run 000 the dearest."""
    for i in range(runs):
        write_run(folder / f"{i:03d}", {"batch_size": [16, 32, 64][i], "model": model},
                  energy=300.0 - 100 * i, power=50.0, acc=0.9)
    return folder


def config_file(path: Path, sweep_dir: "Path | None" = None) -> Path:
    """A config.yaml; without `sweep_dir` it names none (settings.sweep_dir's default)."""
    settings = {"runs": 3} | ({"sweep_dir": str(sweep_dir)} if sweep_dir else {})
    path.write_text(yaml.safe_dump({"settings": settings, "configuration": {
        "batch_size": {"values": [16, 32, 64]}}}))
    return path


def said(err: str) -> list[str]:
    """The error lines `greenscreen` printed (not its warnings)."""
    return [line for line in err.splitlines() if line.startswith("greenscreen:")
            and not line.startswith("greenscreen: warning")]


def flat(pdf: Path) -> str:
    """The PDF's text without any whitespace, so that a long path wrapped is still found."""
    return "".join(pdf_text(pdf)[1].split())


# F1: `report --analysis DIR` reports the sweep the analysis in DIR was made from.

@pytest.fixture
def analysed_elsewhere(tmp_path, monkeypatch, capsys):
    """Sweep A analysed into an/ (`analyze --out`), from a folder whose config.yaml names
    no sweep_dir: settings.sweep_dir is sweeps/default, which does not exist."""
    monkeypatch.chdir(tmp_path)
    swept = small_sweep(tmp_path / "a", "ffnn")
    config_file(tmp_path / "config.yaml")
    assert cli.main(["analyze", "--sweep-dir", str(swept), "--out", "an"]) == 0
    capsys.readouterr()
    return swept, tmp_path / "an"


def test_analysis_json_records_the_sweep_it_analysed(analysed_elsewhere):
    swept, out = analysed_elsewhere
    recorded = json.loads((out / "analysis.json").read_text())["sweep_dir"]
    assert recorded == str(swept.resolve())


def test_report_of_an_analysis_elsewhere_reads_the_sweep_it_analysed(analysed_elsewhere,
                                                                        capsys):
    swept, out = analysed_elsewhere
    assert cli.main(["report", "--analysis", str(out), "--out", "x.pdf"]) == 0  # no sweeps/
    assert f"Sweepfolder:{swept.resolve()}" in flat(Path("x.pdf"))
    # Another sweep in settings.sweep_dir: the analysed one still wins, and it is said.
    small_sweep(Path("sweeps/default"), "small_cnn", runs=3)
    capsys.readouterr()
    assert cli.main(["report", "--analysis", str(out), "--out", "y.pdf"]) == 0
    text = flat(Path("y.pdf"))
    assert f"Sweepfolder:{swept.resolve()}" in text and "small_cnn" not in text
    assert "ffnn" in text
    told = capsys.readouterr().out
    assert f"{out}/analysis.json was made from" in told and "sweeps/default" in told


def test_report_refuses_an_explicit_sweep_dir_that_is_not_the_analysed_one(analysed_elsewhere,
                                                                            capsys):
    swept, out = analysed_elsewhere
    other = small_sweep(Path("b"), "small_cnn", runs=3)
    code = cli.main(["report", "--sweep-dir", str(other), "--analysis", str(out), "--out",
                     "x.pdf"])
    lines = said(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1 and not Path("x.pdf").exists()
    assert f"--sweep-dir {other}" in lines[0] and str(swept.resolve()) in lines[0]
    # The same folder given explicitly is no conflict.
    assert cli.main(["report", "--sweep-dir", str(swept), "--analysis", str(out), "--out",
                     "x.pdf"]) == 0


def test_report_says_in_one_line_where_the_analysis_or_its_sweep_is_missing(
        analysed_elsewhere, capsys):
    swept, out = analysed_elsewhere
    assert cli.main(["report", "--analysis", "nowhere", "--out", "x.pdf"]) == 2
    lines = said(capsys.readouterr().err)
    assert len(lines) == 1 and "no analysis.json in nowhere" in lines[0]
    # the words `report` says of a sweep folder never analysed, with the command to run
    assert "the report reads the analysis; run greenscreen analyze --sweep-dir " in lines[0]
    assert lines[0].endswith("--out nowhere first")
    swept.rename(swept.with_name("moved"))
    assert cli.main(["report", "--analysis", str(out), "--out", "x.pdf"]) == 2
    lines = said(capsys.readouterr().err)
    assert len(lines) == 1 and str(swept.resolve()) in lines[0]
    assert "--sweep-dir" in lines[0] and not Path("x.pdf").exists()


def test_an_analysis_written_before_it_recorded_its_sweep_reports_settings_sweep_dir(
        analysed_elsewhere, capsys):
    swept, out = analysed_elsewhere
    written = json.loads((out / "analysis.json").read_text())
    written.pop("sweep_dir", None)  # as written before analysis.json recorded it
    (out / "analysis.json").write_text(json.dumps(written))
    assert cli.main(["report", "--sweep-dir", str(swept), "--analysis", str(out), "--out",
                     "x.pdf"]) == 0
    assert f"Sweepfolder:{swept}" in flat(Path("x.pdf"))


# F7: `analyze --component` where a run's component energy is an estimate, not a measurement.

def write_cpu_run(folder: Path, bs: int, cpu: float, source: str = ESTIMATE) -> None:
    """A finished CPU-only run, as a machine without a GPU writes it: the CPU-time
    estimate (or RAPL's measurement) is the whole of its energy."""
    write_run(folder, {"batch_size": bs, "model": "ffnn"}, energy=cpu, power=cpu / 60,
              acc=0.9 - bs / 1000)
    summary = json.loads((folder / "summary.json").read_text())
    summary.update(source=source, covers=["cpu"],
                   components={"cpu": {"energy_j": cpu, "source": source}},
                   unmeasured={"gpu": "nvml: NVML could not be initialised"})
    (folder / "summary.json").write_text(json.dumps(summary))


def test_component_that_was_only_estimated_is_one_clear_error(tmp_path, capsys):
    for i in range(5):
        write_cpu_run(tmp_path / "sweep" / f"{i:03d}", [16, 32][i % 2], 100.0 + i)
    config = config_file(tmp_path / "config.yaml", tmp_path / "sweep")
    code = cli.main(["analyze", "--config", str(config), "--component", "cpu"])
    captured = capsys.readouterr()
    lines = said(captured.err)
    assert code == 2 and len(lines) == 1, captured
    assert ESTIMATE in lines[0] and "not measured" in lines[0]
    assert "000, 001, 002, 003, 004" in lines[0]
    assert "summary.json is missing" not in lines[0] and "0 of 5" not in captured.out
    assert not (tmp_path / "sweep" / "analysis.json").exists()


def test_component_measured_in_some_runs_ranks_those_and_says_why_not_the_others(tmp_path):
    for i in range(5):
        write_cpu_run(tmp_path / f"{i:03d}", [16, 32][i % 2], 100.0 + i,
                      RAPL if i < 3 else ESTIMATE)
    result = analysis.analyze(tmp_path, component="cpu")
    assert result["done"] == 3 and result["energy"]["runs_without_it"] == 2
    reasons = {e["run"]: e["reason"] for e in result["left_out"]}
    assert set(reasons) == {"003", "004"}
    assert all(ESTIMATE in why and "not measured" in why and "summary.json" not in why
               for why in reasons.values())
    text = analysis.summary_text(result)
    assert text.startswith("5 of 5 runs finished")


# F8: analyze and report on a sweep folder that is not there.

@pytest.mark.parametrize("command", ["analyze", "report"])
def test_a_missing_sweep_folder_is_one_line(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    config_file(tmp_path / "config.yaml")
    for extra, folder in (([], "sweeps/default"),
                          (["--sweep-dir", str(tmp_path / "nosuch")], str(tmp_path / "nosuch"))):
        assert cli.main([command, *extra]) == 2
        lines = said(capsys.readouterr().err)
        assert lines == [f"greenscreen: no sweep in {folder}: run greenscreen sweep first, or "
                         "name the sweep's folder with --sweep-dir (or settings.sweep_dir)"]


# F17: the words on a validation split name the confusion matrix for classification only.

def validation_sweep(folder: Path, settings: dict, metric: str) -> Path:
    """Two runs evaluated on the validation split (a dataset function without a test split)."""
    small_sweep(folder, "ffnn")
    (folder / "sweep.json").write_text(json.dumps({"settings": settings}))
    for i, run in enumerate(sorted(folder.glob("0*"))):
        (run / "results.json").write_text(json.dumps({
            "evaluated_on": "validation", "test_metrics": {f"test_{metric}": 0.2 + i},
            "objective": {"name": f"val_{metric}", "mode": "min" if metric == "mae" else "max",
                          "value": 0.2 + i, "split": "validation"}}))
    return folder


@pytest.mark.parametrize("settings, metric, words", [
    ({"loss": "mse", "objective": "val_mae"}, "mae", "Theirtestfigureshere(themae)are"),
    ({}, "accuracy", "Theirtestfigureshere(theaccuracy,theconfusionmatrix)are")])
def test_the_validation_split_s_words_follow_the_task(tmp_path, settings, metric, words):
    folder = validation_sweep(tmp_path / "sweep", settings, metric)
    analysis.analyze(folder)
    text = flat(report.build(folder, tmp_path / "r.pdf"))
    assert "Evaluatedonthevalidationsplit" in text and words in text
