"""Analysis and PDF report on run folders whose truth is known, the seed format, and
hostile input."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from greenscreen_pipeline import analysis, collect, report, sweep_total

SEED_RUNS = Path(__file__).parent / "fixtures" / "seed-runs"


def write_run(folder: Path, params: dict, energy, power, acc, status="done", epochs=3):
    folder.mkdir(parents=True)
    (folder / "parameters.yaml").write_text(yaml.safe_dump({**params, "test_accuracy": acc}))
    (folder / "status.json").write_text(json.dumps({"status": status, "reason": (
        None if status == "done" else "RuntimeError: boom")}))
    if status == "done":
        (folder / "summary.json").write_text(json.dumps({
            "energy_j": energy, "power_avg_w": power, "duration_s": energy / power,
            "source": "measured:nvidia-smi", "t_start": 1.7e9, "t_end": 1.7e9 + 60,
            "devices": [{"name": "NVIDIA H200"}], "test_accuracy": acc}))
        rows = ["epoch,loss,accuracy,val_accuracy,power_w,energy_j"]
        rows += [f"{e},{1 / (e + 1)},{acc * (e + 1) / epochs},{acc * (e + 1) / epochs},{power},"
                 f"{energy / epochs}" for e in range(epochs)]
        (folder / "logs.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture
def known_sweep(tmp_path):
    return make_known_sweep(tmp_path)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """The known sweep, analysed once for the tests that only read it: (folder, result)."""
    folder = make_known_sweep(tmp_path_factory.mktemp("known"))
    return folder, analysis.analyze(folder)


def make_known_sweep(tmp_path):
    """Power depends on batch_size only; optimizer and lr are noise."""
    rng = np.random.default_rng(0)
    for i in range(32):
        bs = [16, 32, 64, 128][i % 4]
        params = {"batch_size": bs, "optimizer": ["Adam", "SGD"][(i // 4) % 2],
                  "lr": [0.01, 0.001][(i // 8) % 2], "model": "ffnn"}
        power = 100 + 1.5 * bs + rng.normal(0, 3)
        write_run(tmp_path / f"{i:03d}", params, energy=power * 60, power=power,
                  acc=0.9 + rng.normal(0, 0.01))
    write_run(tmp_path / "032", {"batch_size": 16, "optimizer": "Adam", "lr": 0.01,
                                 "model": "ffnn"}, None, None, None, status="failed")
    return tmp_path


def test_relevance_names_the_true_driver_first(analysed):
    _, result = analysed
    power = result["relevance"]["power_w"]
    assert power["table"][0]["factor"] == "batch_size"
    assert power["table"][0]["p_holm"] < 0.001 and power["table"][0]["partial_eta2"] > 0.9
    assert all(r["p_holm"] > 0.01 for r in power["table"][1:])
    assert power["rf_cv_r2"] > 0.5
    assert max(power["table"], key=lambda r: r["rf_importance"])["factor"] == "batch_size"
    assert "batch_size (partial eta^2" in result["relevance_summary"][0]


def test_failed_runs_are_listed_but_never_ranked(analysed):
    known_sweep, result = analysed
    assert result["failed_or_skipped"][0]["run"] == "032"
    ranked = {r["run"] for key in ("top_objective", "top_energy", "top_power")
              for r in result[key]}
    assert "032" not in ranked and result["done"] == 32
    for name in ("runs", "top_objective", "top_energy", "top_power", "top_efficiency", "pareto",
                 "relevance"):
        assert (known_sweep / f"{name}.csv").exists()


def test_recommendation_never_falls_below_the_floor(known_sweep):
    result = analysis.analyze(known_sweep, floor=0.005)
    rec = result["recommendation"]
    assert rec["objective"] >= rec["best_objective"] - 0.005
    assert rec["objective_floor"] == rec["accuracy_floor"] == 0.005
    df = collect.load_sweep(known_sweep)
    eligible = df[(df["status"] == "done") & (df["accuracy"] >= rec["best_objective"] - 0.005)]
    assert rec["energy_j"] == pytest.approx(eligible["energy_j"].min())
    assert rec["explanation"]["batch_size"]["value"] == 16  # lowest power level


def test_pareto_front_keeps_only_unbeaten_runs():
    import pandas as pd

    df = pd.DataFrame({"run": list("abcd"), "objective": [0.9, 0.8, 0.95, 0.85],
                       "energy_j": [100, 50, 200, 120]})
    assert analysis.pareto(df)["run"].tolist() == ["b", "a", "c"]  # d: beaten by a


def test_seed_format_runs_load_with_computed_energy():
    df = collect.load_sweep(SEED_RUNS)
    assert df["run"].tolist() == ["002", "017", "033"]
    assert (df["source"] == collect.SEED_SOURCE).all()
    run = df.set_index("run").loc["002"]
    assert run["accuracy"] == 0.888 and run["batch_size"] == 64
    assert run["energy_j"] == pytest.approx(run["power_w"] * run["duration_s"], rel=0.02)
    assert 1300 < run["duration_s"] < 1500  # pre row 14:39:12 to epoch 49 at 15:02:49
    assert df.set_index("run").loc["033", "internal"] == "post_quantization"


def test_seed_format_sweep_analyses_and_says_how_energy_was_made(tmp_path):
    import shutil

    shutil.copytree(SEED_RUNS, tmp_path / "seed", ignore=shutil.ignore_patterns("*.md"))
    result = analysis.analyze(tmp_path / "seed")
    assert result["done"] == 3 and collect.SEED_SOURCE in result["note"]
    assert "computed:power" in analysis.summary_text(result)


def pdf_text(path: Path) -> tuple[int, str]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_report_leads_with_the_answer_and_is_byte_identical(analysed, tmp_path):
    from greenscreen_pipeline.report.layout import number

    known_sweep, result = analysed
    a = report.build(known_sweep, tmp_path / "a.pdf")
    b = report.build(known_sweep, tmp_path / "b.pdf")
    assert a.read_bytes() == b.read_bytes()
    assert_every_page_is_used(a)
    pages, text = pdf_text(a)
    assert 4 <= pages <= 12
    first = " ".join(page_texts(a)[0].split())
    rec = result["recommendation"]
    base = collect.load_sweep(known_sweep).set_index("run").loc["000"]
    change = (rec["energy_j"] / base["energy_j"] - 1) * 100
    assert (f"The recommended configuration (run {rec['run']}) used "
            f"{number(rec['energy_j'] / 3600)} Wh, {change:+.0f} % against the baseline "
            "(run 000)") in first
    for words in ("What drives energy and power", "Pareto front", "Totals",
                  "measured: nvidia-smi power stream", "NVIDIA H200", "g/kWh"):
        assert words in first, words
    text = " ".join(text.split())
    for heading in ("Recommendation", "settings.recommend: run",
                    "The recommendation next to the baseline", "cumulative energy",
                    "Every run across its parameters", "Energy per parameter value",
                    "Runs that did not finish (1)", "RuntimeError: boom",
                    "Appendix: the full tables", "Top runs by accuracy", "Lowest mean power",
                    "Which parameters matter", f"Parameters of run {rec['run']}"):
        assert heading in text, heading
    assert "e+0" not in text  # numbers a person reads: no scientific notation


def page_texts(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(str(path)).pages]


def assert_every_page_is_used(pdf: Path, least: float = 0.6) -> None:
    """Rendered (pypdfium2): no page blank, none but the last mostly empty (a content
    span under `least` of the page's height)."""
    from pdfpages import render, used_height

    images = render(pdf, scale=0.5)
    for number, image in enumerate(images, 1):
        used = used_height(image)
        assert used > 0.05, f"page {number} of {pdf.name} is blank"
        if number < len(images):
            assert used >= least, f"page {number} of {pdf.name} uses {used:.0%} of its height"


@pytest.mark.parametrize("runs", [1, 2])
def test_the_report_builds_for_one_and_two_runs(tmp_path, runs):
    for i in range(runs):
        write_run(tmp_path / f"{i:03d}", {"batch_size": [32, 64][i], "model": "ffnn"},
                  energy=100.0 * (i + 1), power=50.0, acc=0.9)
    analysis.analyze(tmp_path)
    out = report.build(tmp_path, tmp_path / "r.pdf")
    assert_every_page_is_used(out)
    first = " ".join(page_texts(out)[0].split())
    assert "The recommended configuration (run 000) used 100 J" in first
    assert "the baseline itself is recommended" in first


def test_without_a_baseline_the_pick_is_compared_with_the_other_runs_not_itself(tmp_path):
    # 3 runs: the median of all three was the recommended run itself ("+0 % against the
    # median run"); the reference is now the median of the two others.
    for i, (energy, acc) in enumerate([(100.0, 0.5), (200.0, 0.9), (500.0, 0.91)], 1):
        write_run(tmp_path / f"{i:03d}", {"batch_size": 16 * i, "model": "ffnn"},
                  energy=energy, power=50.0, acc=acc)
    result = analysis.analyze(tmp_path)
    assert result["recommendation"]["run"] == "002"
    first = " ".join(page_texts(report.build(tmp_path, tmp_path / "r.pdf"))[0].split())
    assert ("used 200 J, -33 % against the median of the other 2 finished runs (the "
            "baseline run 000 is missing), at +19.5 pt accuracy (0.900 against 0.705)") in first


def test_a_pick_of_the_baseline_s_own_configuration_claims_no_saving(tmp_path):
    # a one-configuration space: page 1 said "run 001 used 90 J, -10 % against the
    # baseline", and then that the recommendation is the baseline's configuration
    for i, (energy, acc) in enumerate([(100.0, 0.80), (90.0, 0.81)]):
        write_run(tmp_path / f"{i:03d}", {"batch_size": 32, "model": "ffnn"},
                  energy=energy, power=50.0, acc=acc)
    assert analysis.analyze(tmp_path)["recommendation"]["run"] == "001"
    first = " ".join(page_texts(report.build(tmp_path, tmp_path / "r.pdf"))[0].split())
    assert ("The recommended configuration (run 001) used 90.0 J at accuracy 0.810; it is "
            "compared with no other run: it is the baseline's configuration (run 000's), so "
            "the two differ by their training seed alone.") in first
    assert "against the baseline" not in first


@pytest.mark.parametrize("theirs, why", [
    ("estimated:cpu-time", "an estimate is never compared with a measurement"),
    # both measured, by two meters: the words said "an estimate" of neither
    ("measured:nvml-counter", "one meter's figure is never compared with another's")])
def test_an_estimated_baseline_is_not_compared_with_a_measured_pick(tmp_path, theirs, why):
    # page 1 said "used 305 J, +422 % against the baseline" of an estimate and a measurement
    for i, (energy, acc) in enumerate([(58.4, 0.75), (305.0, 0.95)]):
        write_run(tmp_path / f"{i:03d}", {"batch_size": 16 * (i + 1), "model": "ffnn"},
                  energy=energy, power=50.0, acc=acc)
    summary = tmp_path / "000" / "summary.json"
    summary.write_text(summary.read_text().replace("measured:nvidia-smi", theirs))
    result = analysis.analyze(tmp_path)
    assert result["recommendation"]["run"] == "001"
    first = " ".join(page_texts(report.build(tmp_path, tmp_path / "r.pdf"))[0].split())
    assert ("The recommended configuration (run 001) used 305 J at accuracy 0.950; its energy "
            "is not compared with the baseline's (000), which was obtained otherwise "
            f"(measured:nvidia-smi here, {theirs} there): {why}.") in first
    assert "%" not in first.split("Totals")[0].split("No final comparison")[0]
    assert ("The runs' energy was obtained in 2 ways (" + "; ".join(sorted(
        [f"{theirs}: 1 run", "measured:nvidia-smi: 1 run"])) + "): this front places them "
        f"side by side, but {why}; compare runs of one kind only") in first


def test_the_report_of_the_original_pipeline_s_folders(tmp_path):
    import shutil

    shutil.copytree(SEED_RUNS, tmp_path / "seed", ignore=shutil.ignore_patterns("*.md"))
    analysis.analyze(tmp_path / "seed")
    out = report.build(tmp_path / "seed", tmp_path / "seed.pdf")
    assert_every_page_is_used(out)
    first = " ".join(page_texts(out)[0].split())
    assert "against the median of the other 2 finished runs (the baseline run 000 is " \
           "missing)" in first
    assert "computed from one nvidia-smi sample per epoch" in first and "kWh" in first


def report_with_optimizer(sweep: Path, value: str, out: Path) -> tuple[Path, str]:
    """The report of `sweep` with run 000's optimizer set to `value`: the PDF and its text."""
    folder = sweep / "000"
    params = yaml.safe_load((folder / "parameters.yaml").read_text())
    (folder / "parameters.yaml").write_text(yaml.safe_dump({**params, "optimizer": value}))
    analysis.analyze(sweep)
    pdf = report.build(sweep, out)
    return pdf, pdf_text(pdf)[1]


def test_hostile_strings_build_and_show_literally(known_sweep, tmp_path):
    hostile = "Adam<b>&</para><font size=40>"
    _, text = report_with_optimizer(known_sweep, hostile, tmp_path / "hostile.pdf")
    assert hostile in text.replace("\n", "")


def test_text_beyond_windows_1252_is_printed_not_boxed(known_sweep, tmp_path):
    """reportlab's standard fonts hold Windows-1252 only: a value in Polish or Cyrillic was
    printed (and read back) as black boxes."""
    value = "Łódź-Жук"
    out, text = report_with_optimizer(known_sweep, value, tmp_path / "unicode.pdf")
    assert value in text.replace("\n", "") and "\u25a0" not in text  # no ■ anywhere
    assert_every_page_is_used(out)


def test_a_sweep_with_no_finished_run_still_states_what_it_spent(tmp_path):
    # the PDF said nothing of the 96.5 J an interrupted run had spent
    write_run(tmp_path / "000", {"batch_size": 4}, 96.5, 50.0, 0.5)
    (tmp_path / "000" / "status.json").write_text('{"status": "interrupted"}')
    assert analysis.analyze(tmp_path)["done"] == 0
    _, text = pdf_text(report.build(tmp_path, tmp_path / "r.pdf"))
    assert "Its runs have spent 96.5 J so far (measured), counted in the sweep's totals." \
        in " ".join(text.split())


def test_zero_finished_runs_give_a_short_pdf_not_a_traceback(tmp_path):
    write_run(tmp_path / "000", {"batch_size": 4}, None, None, None, status="failed")
    result = analysis.analyze(tmp_path)
    assert result["done"] == 0 and "no finished run" in result["message"]
    pages, text = pdf_text(report.build(tmp_path, tmp_path / "empty.pdf"))
    assert pages == 1 and "no finished run" in text and "RuntimeError: boom" in text
    assert_every_page_is_used(tmp_path / "empty.pdf")
    # final says that no run finished and why, not "run analyze first" (analyze just ran).
    from greenscreen_pipeline.errors import UsageError
    from greenscreen_pipeline.final import final_run
    from greenscreen_pipeline.space import SweepConfig

    with pytest.raises(UsageError) as told:
        final_run(SweepConfig("config.yaml", {"seed": 0}, {}), tmp_path)
    said = str(told.value)
    assert "0 of 1 runs finished; run 000 failed: RuntimeError: boom" in said
    assert "--retry-failed" in said and "analyze first" not in said


def test_energy_is_nan_safe_for_runs_without_summary(tmp_path):
    (tmp_path / "000").mkdir()
    (tmp_path / "000" / "status.json").write_text('{"status": "running"}')
    (tmp_path / "000" / "parameters.yaml").write_text("batch_size: 4\n")
    df = collect.load_sweep(tmp_path)
    assert df.loc[0, "status"] == "running" and math.isnan(df.loc[0, "energy_j"])


def test_the_run_folder_reader_translates_the_original_column_names():
    from greenscreen_pipeline.runfolder import RunFolder

    folder = RunFolder(SEED_RUNS / "002")
    logs = folder.logs()
    assert folder.is_seed_format() and len(logs) > 0
    assert (logs["power_w"] == logs["gpu_power_W"]).all()
    assert (logs["gpu_temp_c"] == logs["gpu_temp_C"]).all()
    assert logs["epoch"].tolist() == list(range(len(logs)))  # "pre"/"post" rows left out


def test_report_co2_follows_the_sweep_settings_and_says_which(known_sweep, tmp_path):
    (known_sweep / "sweep.json").write_text(json.dumps({"settings": {"country": "FR"}}))
    analysis.analyze(known_sweep)
    _, text = pdf_text(report.build(known_sweep, tmp_path / "r.pdf"))
    assert "France" in text and "settings.country" in " ".join(text.split())
    for settings, value, chosen_by in [
            ({"country": "FR", "carbon_intensity": 500.0}, 500.0, "settings.carbon_intensity"),
            ({}, None, "no settings.country or settings.carbon_intensity given")]:
        (known_sweep / "sweep.json").write_text(json.dumps({"settings": settings}))
        intensity, why = report.sweep_carbon_intensity(known_sweep)
        assert why == chosen_by and (value is None or intensity.g_per_kwh == value)
        assert value is not None or "world average" in intensity.source


def test_a_method_setting_is_n_a_elsewhere_and_tested_within_its_method(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(24):
        method = ["standard", "pruned"][i % 2]
        sparsity = [0.5, 0.9][(i // 2) % 2]
        energy = 1000 - (600 * sparsity if method == "pruned" else 0) + rng.normal(0, 5)
        write_run(tmp_path / f"{i:03d}", {"method": method, "target_sparsity": sparsity,
                                          "batch_size": [32, 64][(i // 4) % 2]},
                  energy=energy, power=100, acc=0.9)
    df = collect.load_sweep(tmp_path)
    assert set(df[df["method"] == "standard"]["target_sparsity"]) == {"n/a"}
    assert set(df[df["method"] == "pruned"]["target_sparsity"]) == {0.5, 0.9}
    table = analysis.analyze(tmp_path)["relevance"]["energy_j"]["table"]
    row = next(r for r in table if r["factor"] == "target_sparsity")
    assert row["within"] == "pruned runs" and row["n"] == 12  # the other 12 are not imputed
    assert row["p_holm"] < 0.001 and row["partial_eta2"] > 0.9
    assert {r["factor"] for r in table} >= {"method", "batch_size"}


def two_factor_sweep(folder: Path, combos=(("ffnn", 0.01), ("ffnn", 0.05), ("small_cnn", 0.01),
                                            ("small_cnn", 0.05))) -> None:
    """Energy: small_cnn +50, lr 0.05 +30. Accuracy: 0.80 for (ffnn, 0.01), else 0.90."""
    from greenscreen_pipeline import space

    config = folder.parent / "config.yaml"
    config.write_text("settings: {final_epochs: 1, final_seeds: 1, epochs: 1, "
                      "recommend: values}\n"
                      "configuration:\n  model: {values: [ffnn, small_cnn]}\n"
                      "  lr: {values: [0.01, 0.05]}\n  batch_size: {values: [64]}\n")
    baseline = space.load(config).run(0)
    for i in range(12):
        model, lr = combos[i % len(combos)]
        energy = 100 + 50 * (model == "small_cnn") + 30 * (lr == 0.05) + i * 0.01
        acc = 0.80 if (model, lr) == ("ffnn", 0.01) else 0.90
        write_run(folder / f"{i:03d}", {**baseline, "model": model, "lr": lr}, energy=energy,
                  power=100, acc=acc)


def test_the_two_recommendation_rules_differ_as_the_readme_says(tmp_path):
    two_factor_sweep(tmp_path / "sweep")
    by_run = analysis.analyze(tmp_path / "sweep", floor=0.02)["recommendation"]
    assert by_run["rule"] == "run"  # the cheapest whole run within the floor: ffnn, lr 0.05
    assert (by_run["parameters"]["model"], by_run["parameters"]["lr"]) == ("ffnn", 0.05)
    result = analysis.analyze(tmp_path / "sweep", floor=0.02, rule="values")
    by_values = result["recommendation"]
    # ffnn's mean accuracy (0.85) is 5 points below small_cnn's, lr 0.01's below 0.05's:
    # each parameter alone picks small_cnn and 0.05, which cost the most together.
    assert by_values["parameters"] == {"model": "small_cnn", "lr": 0.05}
    assert by_values["run"] == "003" and by_values["energy_j"] == pytest.approx(180.03)
    model = {e["value"]: e for e in by_values["evidence"]["model"]}
    assert model["ffnn"]["mean_objective"] == pytest.approx(0.85) and model["small_cnn"]["chosen"]
    assert model["ffnn"]["runs"] == 6 and not model["ffnn"]["chosen"]
    assert "each parameter's best value" in analysis.summary_text(result)


def test_values_rule_says_when_no_run_had_the_combination(tmp_path):
    two_factor_sweep(tmp_path / "sweep", combos=(("ffnn", 0.01), ("ffnn", 0.05),
                                                 ("small_cnn", 0.01)))
    result = analysis.analyze(tmp_path / "sweep", floor=0.02, rule="values")
    assert result["recommendation"]["parameters"] == {"model": "small_cnn", "lr": 0.05}
    assert result["recommendation"]["run"] is None
    assert "no run had that combination" in analysis.summary_text(result)
    text = " ".join(pdf_text(report.build(tmp_path / "sweep", tmp_path / "r.pdf"))[1].split())
    assert ("The recommended configuration (each parameter's best value) is not among the "
            "sweep's runs; no final run has measured it yet") in text
    assert "settings.recommend: values" in text and "Per-parameter evidence" in text


def test_the_final_run_trains_the_values_rule_s_combination(fake_smi, tmp_path):
    import subprocess
    import sys

    two_factor_sweep(tmp_path / "sweep", combos=(("ffnn", 0.01), ("ffnn", 0.05),
                                                 ("small_cnn", 0.01)))
    config = tmp_path / "config.yaml"
    root = Path(__file__).resolve().parents[1]
    for stage in ("analyze", "final"):
        done = subprocess.run([sys.executable, "-m", "greenscreen_pipeline", stage, "--config",
                               str(config), "--sweep-dir", str(tmp_path / "sweep")], cwd=root,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    assert "each parameter's best value" in done.stdout
    params = yaml.safe_load((tmp_path / "sweep" / "final" / "parameters.yaml").read_text())
    assert (params["model"], params["lr"], params["epochs"]) == ("small_cnn", 0.05, 1)


def test_resnet_study_pages_and_the_final_run_s_confusion_matrix(tmp_path):
    for i in range(12):
        depth, width, shortcuts = [1, 2, 3][i % 3], [8, 16][(i // 3) % 2], i < 6
        write_run(tmp_path / f"{i:03d}", {"model": "resnet", "resnet_depth": depth,
                                           "resnet_width": width, "resnet_shortcuts": shortcuts},
                  energy=100.0 * depth * width, power=50.0, acc=0.7 + 0.05 * depth)
    write_run(tmp_path / "final", {"model": "resnet", "resnet_depth": 1}, energy=900.0,
              power=50.0, acc=0.85, epochs=5)
    confusion = [[8, 2, 0], [1, 9, 0], [0, 5, 5]]  # per class: 0.8, 0.9, 0.5
    (tmp_path / "final" / "results.json").write_text(json.dumps({
        "test_accuracy": 0.733, "confusion_matrix": confusion}))
    analysis.analyze(tmp_path)
    out = report.build(tmp_path, tmp_path / "r.pdf")
    texts = [" ".join(t.split()) for t in page_texts(out)]
    resnet = next(i for i, t in enumerate(texts) if "ResNet depth and width" in t)
    assert "confusion matrix and per-class accuracy" in " ".join(texts)
    assert_every_page_is_used(out)
    from pdfpages import inked_share, render

    page = render(out, scale=1.0)[resnet]
    page.save(tmp_path / "resnet-page.png")  # kept for a person to look at when this fails
    assert inked_share(page) > 0.5


def test_a_stopped_sweep_says_how_many_planned_runs_never_started(tmp_path):
    """A sweep of 6 runs stopped after 2: the report said "2 finished of 2", as if done."""
    from test_sweep_totals import totals_text

    from greenscreen_pipeline import manifest, space

    config = tmp_path / "config.yaml"
    config.write_text("settings: {runs: 6, epochs: 1}\nconfiguration:\n"
                      "  batch_size: {values: [16, 32, 64]}\n")
    sweep = tmp_path / "sweep"
    manifest.record(space.load(config), sweep)
    for i in range(2):
        write_run(sweep / f"{i:03d}", {"batch_size": 16 * (i + 1), "model": "ffnn"},
                  energy=100.0, power=50.0, acc=0.9)
    result = analysis.analyze(sweep)
    assert result["planned"] == 6
    assert analysis.summary_text(result).startswith(
        "2 of 2 runs finished (4 of the 6 planned not started)")
    assert "runs 2 finished of 2; 4 of the 6 planned not started" in totals_text(sweep)


def test_the_report_s_dates_and_hardware_count_every_final_seed(tmp_path):
    """The header's date range read the top-level folders only: it ended before the
    final runs' later seeds (final/baseline-s2 ended after final/)."""
    from test_sweep_totals import totals_text

    from greenscreen_pipeline.report.inputs import ReportInputs
    from greenscreen_pipeline.report.totals import dates

    write_run(tmp_path / "000", {"batch_size": 32, "model": "ffnn"}, energy=100.0,
              power=50.0, acc=0.9)
    write_run(tmp_path / "final", {"batch_size": 32, "model": "ffnn"}, energy=100.0,
              power=50.0, acc=0.9)
    write_run(tmp_path / "final" / "baseline-s2", {"batch_size": 32, "model": "ffnn"},
              energy=100.0, power=50.0, acc=0.9)
    late = tmp_path / "final" / "baseline-s2" / "summary.json"
    late.write_text(late.read_text().replace("1700000060", "1700003660")
                    .replace('"NVIDIA H200"', '"NVIDIA H100"'))
    analysis.analyze(tmp_path)
    inputs = ReportInputs.read(tmp_path)
    assert dates(inputs).endswith("to 2023-11-14 23:14 UTC")  # final/baseline-s2's end
    assert "NVIDIA H100" in totals_text(tmp_path)


def test_an_original_folder_with_epochs_missing_their_power_has_no_energy_figure(tmp_path):
    """10 of run 002's 50 epochs without a power reading ([N/A]): its energy was the other
    epochs' sum, 20 % low, ranked as whole with no word."""
    import shutil

    from greenscreen_pipeline.runfolder import RunFolder

    shutil.copytree(SEED_RUNS, tmp_path / "seed", ignore=shutil.ignore_patterns("*.md"))
    logs = tmp_path / "seed" / "002" / "logs.csv"
    whole = RunFolder(logs.parent).seed_energy()[0]
    lines = logs.read_text().splitlines()
    for i in range(5, 15):  # epoch rows 3..12: the header and "pre" come first
        cells = lines[i].split(",")
        cells[6] = "[N/A]"
        lines[i] = ",".join(cells)
    logs.write_text("\n".join(lines) + "\n")
    assert whole > 0 and math.isnan(RunFolder(logs.parent).seed_energy()[0])
    epochs = RunFolder(logs.parent).seed_epoch_joules()
    assert len(epochs) == 50 and sum(map(math.isnan, epochs)) == 10
    result = analysis.analyze(tmp_path / "seed")
    assert "002" not in [r["run"] for r in result["top_energy"]]
    assert {"run": "002", "warning": "logs.csv has no power reading (gpu_power_W) in 10 of "
            "its 50 epochs: its energy is unknown, not the other epochs' sum"} in \
        result["warnings"]
    # Energy already spent is never dropped: its 40 known epochs count, said as a bound.
    total = result["sweep_energy"]
    others = [RunFolder(f).seed_energy()[0] for f in sorted((tmp_path / "seed").iterdir())
              if f.is_dir() and f.name != "002"]
    known = math.fsum(j for j in epochs if not math.isnan(j))
    assert total["energy_j"] == pytest.approx(math.fsum(others) + known)
    assert total["partial_runs"] == ["002"]
    assert {"run": "002", "status": "done", "reason": "done, but no energy figure (logs.csv "
            "lacks a power "
            "reading in some epochs: analysis.json's warnings say how many)"} in \
        result["left_out"]
    assert "run(s) 002 counted over the epochs that have a power reading only, so the total " \
           "is a lower bound" in sweep_total.words(total)


def test_the_console_says_a_millijoule_run_s_energy_not_0_j():
    """"Pareto front: 000 (0.770, 0 J)" and "recommended: ..., 0.0 J" of runs at 0.97 mJ."""
    from greenscreen_pipeline.objective import Objective

    rec = {"run": "009", "objective": 0.84664, "best_objective": 0.85, "objective_floor": 0.02,
           "energy_j": 0.000970}
    assert analysis.recommendation_lines(rec, Objective())[0] == (
        "recommended: run 009: accuracy 0.8466 (best 0.8500, floor 0.02), 0.0009700 J")


def test_a_finished_run_without_a_test_value_is_said_to_be_ranked_by_its_validation(tmp_path):
    """An original run whose test_accuracy is nan was ranked by its last val_accuracy,
    beside the others' test accuracy, with no word."""
    import shutil

    shutil.copytree(SEED_RUNS, tmp_path / "seed", ignore=shutil.ignore_patterns("*.md"))
    params = tmp_path / "seed" / "002" / "parameters.yaml"
    params.write_text(params.read_text().replace("test_accuracy: 0.888", "test_accuracy: .nan"))
    result = analysis.analyze(tmp_path / "seed")
    assert {"run": "002", "warning": "no test value recorded (test_accuracy): ranked by its "
            "last epoch's val_accuracy, a validation value"} in result["warnings"]
    assert [w for w in result["warnings"] if w["run"] != "002"] == []
