"""Faults a tester found in analyze and report with the odd sweeps real users make: a report
of a sweep never analysed (H1), a hand-damaged analysis.json (H2), an analysis older than
its runs (H3), a GPU meter that never got a reading (H4), finished runs with no energy
figure (H5). Run folders are written here; nothing is trained."""

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from test_analysis_report import page_texts
from test_report_faults import said
from test_report_honesty import sweep, write_run

from greenscreen_pipeline import analysis, cli, report
from greenscreen_pipeline.errors import UsageError

SPACE = {"batch_size": [16, 32, 64]}


def three_runs(folder: Path, energy=(100.0, 90.0, 80.0)) -> Path:
    """Three finished runs, equally accurate, run 002 the cheapest; sweep.json recorded."""
    sweep(folder, 3, SPACE)
    for i, joules in enumerate(energy):
        write_run(folder / f"{i:03d}", {"batch_size": SPACE["batch_size"][i]}, joules, 0.9)
    return folder


def config(tmp_path: Path, folder: Path) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"settings": {"runs": 3, "sweep_dir": str(folder)},
                                    "configuration": {k: {"values": v}
                                                      for k, v in SPACE.items()}}))
    return str(path)


def one_error(capsys, argv: list) -> str:
    """`greenscreen ARGV` fails with exit 2 and one error line, no traceback; that line."""
    assert cli.main(argv) == 2
    lines = said(capsys.readouterr().err)
    assert len(lines) == 1, lines
    return lines[0]


# H1: a report of a sweep never analysed said "no finished run (0 run folders)" of a sweep
# whose runs had all finished.

def test_a_report_without_an_analysis_says_to_analyse_not_that_nothing_finished(
        tmp_path, capsys):
    folder = three_runs(tmp_path / "sweep")
    line = one_error(capsys, ["report", "--config", config(tmp_path, folder),
                              "--out", str(tmp_path / "r.pdf")])
    assert f"no analysis.json in {folder}" in line and "greenscreen analyze" in line
    assert not (tmp_path / "r.pdf").exists()


# H2: an analysis.json of the wrong form was a traceback from deep inside the PDF.

DAMAGE = {
    "done": ("3", "done: got '3'"),
    "recommendation": ([1], "recommendation: got [1]"),
    "objective": ("val_loss", "objective: got 'val_loss'"),
    "relevance": ("x", "relevance: got 'x'"),
    "sweep_energy": ("many", "sweep_energy: got 'many'"),
    "left_out": ({"a": 1}, "left_out: got {'a': 1}"),
    "top_objective": ([{"run": "000"}], "top_objective[0].objective: got None"),
}


@pytest.mark.parametrize("key", DAMAGE)
def test_a_damaged_analysis_is_one_error_naming_the_key(tmp_path, capsys, key):
    folder = three_runs(tmp_path / "sweep")
    analysis.analyze(folder, out=tmp_path / "an")
    written = tmp_path / "an" / "analysis.json"
    value, named = DAMAGE[key]
    written.write_text(json.dumps({**json.loads(written.read_text()), key: value}))
    line = one_error(capsys, ["report", "--config", config(tmp_path, folder), "--analysis",
                              str(tmp_path / "an"), "--out", str(tmp_path / "r.pdf")])
    assert str(written) in line and named in line and "allowed:" in line
    assert f"greenscreen analyze --sweep-dir {folder} --out {tmp_path / 'an'}" in line


@pytest.mark.parametrize("key, told", [
    ("pareto", "pareto: missing, though 3 run(s) were ranked"),
    ("relevance", "relevance: missing, though 3 run(s) were ranked"),
    ("recommendation.run", "recommendation.run: missing"),
    ("recommendation.objective_floor", "recommendation.objective_floor: got None")])
def test_a_key_missing_from_an_analysis_that_ranked_runs_is_named(tmp_path, key, told):
    folder = three_runs(tmp_path / "sweep")
    doc = analysis.analyze(folder)
    *outer, last = key.split(".")
    del (doc[outer[0]] if outer else doc)[last]
    (folder / "analysis.json").write_text(json.dumps(doc))
    with pytest.raises(UsageError, match=re.escape(told)):
        report.build(folder, tmp_path / "r.pdf")


def test_an_objective_without_its_mode_is_named(tmp_path):
    folder = three_runs(tmp_path / "sweep")
    written = folder / "analysis.json"
    doc = analysis.analyze(folder)
    written.write_text(json.dumps({**doc, "objective": {**doc["objective"], "mode": "up"}}))
    with pytest.raises(UsageError, match=r"objective\.mode: got 'up'; allowed: max or min"):
        report.build(folder, tmp_path / "r.pdf")


# H3: an analysis older than the runs (a run added or retried since) was reported with the
# new runs' figures, or was a traceback where its recommended run was no longer ranked.

def test_an_analysis_older_than_the_runs_is_refused_with_what_changed(tmp_path):
    folder = three_runs(tmp_path / "sweep")
    analysis.analyze(folder)
    write_run(folder / "003", {"batch_size": 16}, 50.0, 0.95)
    with pytest.raises(UsageError) as told:
        report.build(folder, tmp_path / "r.pdf")
    assert "is not of the sweep's runs as they are now" in str(told.value)
    assert f"greenscreen analyze --sweep-dir {folder} first" in str(told.value)


def test_a_run_trained_again_since_the_analysis_is_refused_though_the_counts_agree(tmp_path):
    """A finished run's folder deleted and trained again (another energy figure): as many
    runs, as many ranked, the same recommendation; the analysis's tables are not its."""
    folder = three_runs(tmp_path / "sweep")
    analysis.analyze(folder)
    shutil.rmtree(folder / "001")
    write_run(folder / "001", {"batch_size": 32}, 95.0, 0.9)
    with pytest.raises(UsageError, match="is not of the sweep's runs as they are now"):
        report.build(folder, tmp_path / "r.pdf")


def test_an_analysis_from_an_older_greenscreen_is_checked_by_its_counts(tmp_path):
    folder = three_runs(tmp_path / "sweep")
    analysis.analyze(folder)
    written = folder / "analysis.json"
    doc = json.loads(written.read_text())
    del doc["runs_digest"]  # written before analyses recorded what they were made of
    written.write_text(json.dumps(doc))
    report.build(folder, tmp_path / "r.pdf")  # the same runs: reported
    write_run(folder / "003", {"batch_size": 16}, 50.0, 0.95)
    with pytest.raises(UsageError) as told:
        report.build(folder, tmp_path / "r2.pdf")
    assert "is of 3 run folder(s), 3 of them ranked; the sweep now has 4 run folder(s), " \
           "4 of them ranked: it is older than the runs, or was written by an older " \
           "greenscreen" in str(told.value)


def test_a_recommended_run_no_longer_ranked_is_refused(tmp_path):
    folder = three_runs(tmp_path / "sweep")
    analysis.analyze(folder)
    written = folder / "analysis.json"
    doc = json.loads(written.read_text())
    doc["recommendation"]["run"] = "099"  # an analysis of another sweep's, or hand-edited
    written.write_text(json.dumps(doc))
    with pytest.raises(UsageError, match="recommends run 099, which is not among the runs "
                                         "ranked now"):
        report.build(folder, tmp_path / "r.pdf")


# H4: a sweep whose GPU meter never got a reading (nvidia-smi answering [N/A]) left null
# figures in sweep_energy.json, and analyze died on them with a TypeError.

def test_a_sweep_meter_without_a_reading_does_not_stop_the_analysis(tmp_path):
    folder = three_runs(tmp_path / "sweep")
    session = {"t_start": 1.7e9, "t_end": 1.7e9 + 60, "energy_j": None, "union_s": 3.0,
               "source": "measured:nvidia-smi", "devices": ["NVIDIA H200"], "uuids": ["GPU-0"],
               "runs": {"000": {"energy_gpu_j": None, "covered_s": 1.5, "shared_s": 0.0}}}
    (folder / "sweep_energy.json").write_text(json.dumps({"sessions": [session]}))
    result = analysis.analyze(folder)
    assert result["done"] == 3 and result["recommendation"]["run"] == "002"
    assert report.build(folder, tmp_path / "r.pdf").exists()


# H5: finished runs without an energy figure were "no finished run" on the console.

def test_finished_runs_without_a_figure_are_not_called_unfinished(tmp_path):
    folder = three_runs(tmp_path / "sweep", energy=(float("nan"),) * 3)
    text = analysis.summary_text(analysis.analyze(folder))
    assert "no finished run" not in text
    assert "no run it could rank: 3 finished, but none with an energy figure and an " \
           "objective value" in text


# H6: a run stopped (Ctrl-C) before its worker wrote status.json leaves attempts.jsonl only;
# analyze said "no run folders" and the report "0 run folders", though the sweep had just
# said "run 000 interrupted: it resumes".

def test_a_run_interrupted_before_its_status_is_named_interrupted(tmp_path):
    folder = sweep(tmp_path / "sweep", 4, SPACE)
    (folder / "000").mkdir()
    (folder / "000" / "attempts.jsonl").write_text(
        '{"event": "start", "host": "elsewhere", "pid": 1, "time": 1.7e9}\n'
        '{"event": "end", "time": 1.7e9, "how": "exit 130", "wall_s": 7.6}\n')
    result = analysis.analyze(folder)
    assert result["runs"] == 1 and result["planned"] == 4
    assert [(e["run"], e["status"]) for e in result["left_out"]] == [("000", "interrupted")]
    assert "no run folders" not in analysis.summary_text(result)
    text = " ".join(page_texts(report.build(folder, tmp_path / "r.pdf"))[0].split())
    assert "no finished run (1 run folders)" in text and "000 interrupted" in text


# H7: `report --out` naming a folder, and `analyze --out` naming a file, were tracebacks.

def test_report_out_naming_a_folder_is_one_error(tmp_path, capsys):
    folder = three_runs(tmp_path / "sweep")
    analysis.analyze(folder)
    (tmp_path / "pdfs").mkdir()
    line = one_error(capsys, ["report", "--config", config(tmp_path, folder),
                              "--out", str(tmp_path / "pdfs")])
    assert f"--out {tmp_path / 'pdfs'} is a folder" in line and "sweep.pdf" in line


def test_analyze_out_naming_a_file_is_one_error(tmp_path, capsys):
    folder = three_runs(tmp_path / "sweep")
    (tmp_path / "afile").write_text("mine\n")
    line = one_error(capsys, ["analyze", "--config", config(tmp_path, folder),
                              "--out", str(tmp_path / "afile")])
    assert f"--out {tmp_path / 'afile'} is a file" in line
    assert (tmp_path / "afile").read_text() == "mine\n"


# H8: a final comparison over too few seeds for an interval, where the recommendation
# used more energy than the baseline, said it "saves -4.4 %" of the baseline's energy.

def test_more_energy_without_an_interval_is_not_called_a_saving():
    from greenscreen_pipeline.comparison_words import saving_words

    doc = {"seeds": [22], "energy_saving": {
        "mean": -0.044, "ci95": None, "reason": "an interval needs at least 3 seeds"}}
    said = saving_words(doc)
    assert "saves -" not in said and said.startswith("no saving could be shown: ")
    assert "uses 4.4 % more energy than the baseline over 1 seed, but an interval needs" \
        in said


def test_final_names_a_damaged_analysis_before_it_trains(tmp_path):
    from greenscreen_pipeline.final import final_run
    from greenscreen_pipeline.space import SweepConfig

    folder = three_runs(tmp_path / "sweep")
    doc = analysis.analyze(folder)
    (folder / "analysis.json").write_text(json.dumps({**doc, "recommendation": "002"}))
    with pytest.raises(UsageError, match="recommendation: got '002'; allowed: a JSON object"):
        final_run(SweepConfig("config.yaml", {"seed": 0}, {}), folder)
    assert not (folder / "final").exists()


def test_report_analysis_naming_the_analysis_json_file_reads_its_folder(tmp_path, capsys):
    """`--analysis an/analysis.json` said "an/analysis.json/analysis.json cannot be read
    ... the run folder is left untouched"; the file names its folder, another file is one
    error saying what --analysis takes."""
    folder = three_runs(tmp_path / "sweep")
    analysis.analyze(folder, out=tmp_path / "an")
    path = config(tmp_path, folder)
    assert cli.main(["report", "--config", path, "--analysis", str(tmp_path / "an" /
                     "analysis.json"), "--out", str(tmp_path / "r.pdf")]) == 0
    assert (tmp_path / "r.pdf").is_file()
    line = one_error(capsys, ["report", "--config", path, "--analysis", path,
                              "--out", str(tmp_path / "r2.pdf")])
    assert f"--analysis {path} is a file: --analysis names the folder" in line
    assert not (tmp_path / "r2.pdf").exists()
