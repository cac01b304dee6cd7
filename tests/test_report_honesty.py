"""The report says where each energy figure comes from and names every run it counts:
final runs estimated, a baseline whose first repeat failed, runs that finished but
could not be ranked, and what the search cost by state (run folders built as
test_analysis_report builds them, the sources and statuses varied)."""

import json
import math
from pathlib import Path

import yaml
from test_analysis_report import page_texts
from test_sweep_totals import totals_text

from greenscreen_pipeline import analysis, report

MEASURED, ESTIMATED = "measured:nvidia-smi", "estimated:cpu-time"


def sweep(folder: Path, runs: int, space: dict, **settings) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sweep.json").write_text(json.dumps(
        {"seed": 22, "space": space, "settings": {"runs": runs, **settings}}))
    return folder


def write_run(folder: Path, params: dict, energy, acc, status="done", source=MEASURED,
              reason=None, components=None) -> None:
    """A run folder; `energy` None: no summary.json (a run that failed before measuring),
    NaN: a summary.json without a figure."""
    folder.mkdir(parents=True)
    (folder / "parameters.yaml").write_text(yaml.safe_dump({**params, "test_accuracy": acc}))
    (folder / "status.json").write_text(json.dumps({"status": status, "reason": reason}))
    if energy is None:
        return
    power = energy / 60 if math.isfinite(energy) else 100.0
    summary = {"energy_j": energy, "power_avg_w": power, "duration_s": 60.0,
               "source": source, "t_start": 1.7e9, "t_end": 1.7e9 + 60,
               "devices": [{"name": "NVIDIA H200"}]}
    if components:
        summary["components"] = components
    (folder / "summary.json").write_text(json.dumps(summary))
    rows = ["epoch,loss,accuracy,val_accuracy,power_w,energy_j"]
    rows += [f"{e},{1 / (e + 1)},{acc},{acc},{power},{energy / 2}" for e in range(2)]
    (folder / "logs.csv").write_text("\n".join(rows) + "\n")


def first_page(folder: Path) -> str:
    return " ".join(page_texts(report.build(folder, folder / "r.pdf"))[0].split())


def all_pages(folder: Path) -> str:
    return " ".join(" ".join(page_texts(report.build(folder, folder / "r.pdf"))).split())


def test_an_estimated_final_run_is_said_in_the_total_the_sources_and_its_row(tmp_path):
    """The final runs' 1000 J, a CPU-time estimate, were added into "1,460 J in all" and
    the CO2 with no word, the sources named the sweep's alone, and its row was unmarked."""
    d = sweep(tmp_path, 4, {"lr": [0.01, 0.05]})
    for i in range(4):
        write_run(d / f"{i:03d}", {"lr": [0.01, 0.05][i % 2]}, 100.0 + 10 * i, 0.9 - 0.001 * i)
    analysis.analyze(d)
    write_run(d / "final", {"lr": 0.01}, 1000.0, 0.9, source=ESTIMATED)
    text = totals_text(d)
    assert "1,460 J in all (measured + estimated): sweep 460 J" in text
    assert "final runs 1,000 J (estimated)" in text
    assert "g/kWh, of energy measured + estimated" in text
    assert "the final runs: estimated from CPU time and a nominal power" in text
    assert "final run 0.900 1,000 (estimated)" in all_pages(d)


def test_a_measured_final_run_keeps_the_total_measured(tmp_path):
    d = sweep(tmp_path, 2, {"lr": [0.01, 0.05]})
    for i in range(2):
        write_run(d / f"{i:03d}", {"lr": [0.01, 0.05][i]}, 100.0, 0.9)
    analysis.analyze(d)
    write_run(d / "final", {"lr": 0.01}, 50.0, 0.9)
    text = totals_text(d)
    assert "250 J in all (measured): sweep 200 J" in text and "final runs 50.0 J (measured)" in text
    assert "estimate" not in text and "the final runs:" not in text


def repeated(tmp_path: Path, figures: list) -> Path:
    """settings.repeats 2, runs 000 and 001 the baseline's: (energy or None, status)."""
    d = sweep(tmp_path, len(figures), {"lr": [0.01, 0.05, 0.1, 0.2]}, repeats=2)
    for i, energy in enumerate(figures):
        lr = [0.01, 0.05, 0.1, 0.2][i // 2]
        if energy is None:
            write_run(d / f"{i:03d}", {"lr": lr}, None, 0.0, "failed", reason="node lost")
        else:
            write_run(d / f"{i:03d}", {"lr": lr}, energy, 0.9)
    return d


def test_with_repeats_the_baseline_is_its_configuration_whichever_repeat_finished(tmp_path):
    """Repeat 000 failed, 001 finished: page 1 said the baseline failed and compared with
    a median of runs that held the recommendation's own second repeat (-25 %)."""
    d = repeated(tmp_path, [None, 100.0, 60.0, 62.0, 80.0, 82.0])
    assert analysis.analyze(d)["recommendation"]["run"] == "002"
    first = first_page(d)
    assert "-39 % against the baseline (run 000's configuration: run 001)" in first
    assert "failed" not in first.split("No final comparison")[0]


def test_with_repeats_the_fallback_median_is_over_the_other_configurations(tmp_path):
    """No baseline repeat finished: the median was over single runs, the recommendation's
    own repeat among them (82 J, -26 %); the other configurations' means are 81 and 101."""
    d = repeated(tmp_path, [None, None, 60.0, 62.0, 80.0, 82.0, 100.0, 102.0])
    assert analysis.analyze(d)["recommendation"]["run"] == "002"
    first = first_page(d)
    assert ("-33 % against the median of the other 2 configurations' means (the baseline's "
            "repeats: run 000 failed: node lost; run 001 failed: node lost)") in first


def test_finished_runs_without_a_figure_are_counted_finished_and_named(tmp_path):
    """Run 000 finished without an energy figure: "1 did not finish", "(the baseline
    done)", and it was named nowhere in the PDF."""
    d = sweep(tmp_path, 4, {"lr": [0.01, 0.05]})
    write_run(d / "000", {"lr": 0.01}, math.nan, 0.5)
    for i, (energy, acc) in enumerate([(40.0, 0.6), (50.0, 0.55), (45.0, 0.6)], 1):
        write_run(d / f"{i:03d}", {"lr": [0.01, 0.05][i % 2]}, energy, acc)
    result = analysis.analyze(d)
    assert analysis.summary_text(result).startswith("4 of 4 runs finished")  # the console
    assert "runs 4 finished of 4; 1 of them not ranked" in totals_text(d)
    assert "did not finish" not in totals_text(d)
    text = all_pages(d)
    assert ("against the median of the other 2 ranked runs (the baseline finished but is "
            "not ranked: no energy figure (summary.json is missing, unreadable or has none))"
            ) in text
    assert ("Runs that finished but are not ranked (1) run status reason 000 done done, but "
            "no energy figure") in text


def test_a_sweep_none_of_whose_finished_runs_has_a_figure_names_them(tmp_path):
    d = sweep(tmp_path, 2, {"lr": [0.01, 0.05]})
    for i in range(2):
        write_run(d / f"{i:03d}", {"lr": [0.01, 0.05][i]}, math.nan, 0.8, source="none")
    assert analysis.analyze(d)["done"] == 0
    text = all_pages(d)
    assert "2 of its 2 run folders finished, but with no figure to rank" in text
    assert "no finished run" not in text
    assert text.count("done, but no energy figure") == 2


def test_a_run_without_the_component_ranked_is_counted_finished_and_named(tmp_path):
    d = sweep(tmp_path, 4, {"lr": [0.01, 0.05]})
    rapl = {"energy_j": 400.0, "source": "measured:rapl"}
    for i in range(4):
        gpu = {"energy_j": 600.0 + 10 * i, "source": "measured:nvml-counter"}
        parts = {"gpu": gpu, "cpu": rapl} if i < 3 else {"cpu": rapl}
        write_run(d / f"{i:03d}", {"lr": [0.01, 0.05][i % 2]},
                  sum(p["energy_j"] for p in parts.values()), 0.9,
                  source="measured:nvml-counter + measured:rapl" if i < 3 else "measured:rapl",
                  components=parts)
    analysis.analyze(d, component="gpu")
    assert "runs 4 finished of 4; 1 of them not ranked" in totals_text(d)
    assert "003 done done, but it did not measure the GPU" in all_pages(d)


def test_what_the_search_cost_says_each_state_s_provenance(tmp_path):
    """analysis.json's energy_by_state provenance was dropped: 260 J of measured and
    estimated runs, and a failed run's 400 J estimate, read as measurements."""
    d = sweep(tmp_path, 4, {"lr": [0.01, 0.05]})
    write_run(d / "000", {"lr": 0.01}, 100.0, 0.9)
    write_run(d / "001", {"lr": 0.05}, 110.0, 0.9)
    write_run(d / "002", {"lr": 0.01}, 50.0, 0.9, source=ESTIMATED)
    write_run(d / "003", {"lr": 0.05}, 400.0, 0.5, "failed", ESTIMATED, reason="boom")
    analysis.analyze(d)
    text = all_pages(d)
    assert ("state runs energy (J) share provenance done 3 260 39 % measured + estimated "
            "failed 1 400 61 % estimated") in text


def test_the_repeats_energy_spread_leaves_an_estimated_repeat_out(tmp_path):
    """A configuration measured at 100 J once and estimated at 1000 J once: page 1's noise
    floor said "energy 81.8 % of the mean", a spread of two ways of obtaining energy, not
    of seeds. Only the other configuration's two measured repeats (60, 62 J) make one."""
    d = sweep(tmp_path / "s", 4, {"lr": [0.01, 0.05]}, repeats=2)
    for i, (lr, energy, source) in enumerate([(0.01, 100.0, MEASURED), (0.01, 1000.0, ESTIMATED),
                                              (0.05, 60.0, MEASURED), (0.05, 62.0, MEASURED)]):
        write_run(d / f"{i:03d}", {"lr": lr}, energy, 0.9, source=source)
    analysis.analyze(d)
    first = first_page(d)
    assert ("the sweep's 2 repeated configuration(s) (4 runs): accuracy 0, energy 2.3 % of "
            "the mean (over 1 configuration(s), 2 runs, whose repeats' energy was obtained "
            "alike)") in first, first
    assert "81.8 %" not in first


def test_the_recommendation_s_explanation_averages_no_estimate_with_measurements(tmp_path):
    """analysis.json's explanation averaged run 001's 1000 J estimate with run 003's
    62 J measurement (531 J) where the rule itself compares the measured runs alone."""
    d = sweep(tmp_path / "s", 4, {"lr": [0.01, 0.05], "batch_size": [16, 32]})
    for i, (lr, batch, energy, source) in enumerate([
            (0.01, 16, 100.0, MEASURED), (0.01, 32, 1000.0, ESTIMATED),
            (0.05, 16, 60.0, MEASURED), (0.05, 32, 62.0, MEASURED)]):
        write_run(d / f"{i:03d}", {"lr": lr, "batch_size": batch}, energy, 0.9, source=source)
    rec = analysis.analyze(d)["recommendation"]
    assert rec["run"] == "002"
    assert rec["explanation"]["batch_size"]["mean_energy_j_others"] == 62.0
    assert rec["explanation"]["lr"]["mean_energy_j_others"] == 100.0
    assert rec["explanation_left_out"] == ["001"]
