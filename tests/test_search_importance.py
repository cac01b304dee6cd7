"""Issue 25 item 5: a pareto search's analysis and report: Optuna's importance over every
run, the hypervolume against the sweep's cumulative energy, stopped runs in the Pareto
plot. Fast: run folders written by hand, no Keras training."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from greenscreen_pipeline import analysis, report, search_cost, search_importance
from greenscreen_pipeline.objective import Objective

SPACE = {"batch_size": [16, 32, 64], "optimizer": ["Adam", "SGD"], "lr": [0.01, 0.001],
         "model": ["ffnn"]}
STOPPED = {3, 6, 9}
FAILED = {10}


def write_sweep_json(sweep: Path, search: str) -> None:
    sweep.mkdir(parents=True, exist_ok=True)
    block = ({"search": "pareto", "search_sampler": "tpe", "early_stop": "halving",
              "halving_eta": 3, "batch_size": 2} if search == "pareto"
             else {"search": "random", "early_stop": "halving", "halving_eta": 3})
    (sweep / "sweep.json").write_text(json.dumps({
        "seed": 7, "space": SPACE, "settings": {"runs": 12, "epochs": 3}, "search": block}))


def write_run(folder: Path, config: dict, status: str, acc: float | None,
              energy: float | None, *, recorded: bool, epochs: int = 3) -> None:
    """A run folder as the run process leaves it: done (test accuracy), stopped by halving
    after one epoch (logs and summary, no test metrics) or failed (no energy)."""
    folder.mkdir(parents=True)
    if recorded:  # a pareto search's proposal, written by the executor
        (folder / "configuration.json").write_text(json.dumps(config))
    tested = {"test_accuracy": acc} if status == "done" else {}
    (folder / "parameters.yaml").write_text(yaml.safe_dump({**config, **tested}))
    (folder / "status.json").write_text(json.dumps({"status": status, "reason": (
        None if status == "done" else "halving: rung 1" if status == "stopped" else "boom")}))
    if energy is None:
        return
    power, trained = 100.0, epochs if status == "done" else 1
    (folder / "summary.json").write_text(json.dumps({
        "energy_j": energy, "power_avg_w": power, "duration_s": energy / power,
        "source": "measured:nvidia-smi", "t_start": 1.7e9, "t_end": 1.7e9 + energy / power,
        "devices": [{"name": "NVIDIA H200"}], **tested}))
    rows = ["epoch,loss,accuracy,val_accuracy,power_w,energy_j"]
    rows += [f"{e},{1 / (e + 1)},{acc * (e + 1) / trained},{acc * (e + 1) / trained},{power},"
             f"{energy / trained}" for e in range(trained)]
    (folder / "logs.csv").write_text("\n".join(rows) + "\n")


def make_sweep(sweep: Path, search: str = "pareto") -> Path:
    """Twelve runs: accuracy follows lr, energy follows batch_size (smaller: costlier);
    runs 3, 6 and 9 stopped by halving, run 10 failed."""
    write_sweep_json(sweep, search)
    rng = np.random.default_rng(3)
    for i in range(12):
        config = {"batch_size": SPACE["batch_size"][i % 3],
                  "optimizer": SPACE["optimizer"][(i // 3) % 2],
                  "lr": SPACE["lr"][(i // 2) % 2], "model": "ffnn"}
        acc = 0.9 if config["lr"] == 0.01 else 0.7
        energy = 3000.0 / config["batch_size"] * 10
        state = "stopped" if i in STOPPED else "failed" if i in FAILED else "done"
        write_run(sweep / f"{i:03d}", config, state, acc + rng.normal(0, 0.005),
                  None if state == "failed" else energy * (0.33 if state == "stopped" else 1)
                  + rng.normal(0, 5), recorded=search == "pareto" and i >= 4)
    return sweep


@pytest.fixture(scope="module")
def pareto_sweep(tmp_path_factory):
    """The pareto sweep, analysed once: (folder, analysis result)."""
    sweep = make_sweep(tmp_path_factory.mktemp("pareto") / "sweep")
    return sweep, analysis.analyze(sweep)


def test_optuna_importance_ranks_both_targets_over_all_runs_and_says_so(pareto_sweep):
    sweep, result = pareto_sweep
    entry = result["optuna_importance"]
    assert entry["evaluator"] == "fanova" and entry["runs"] == 8  # the done runs
    assert entry["note"] == search_importance.NOTE
    for target, driver in (("objective", "lr"), ("energy_j", "batch_size")):
        shares = entry[target]
        assert set(shares) == {"batch_size", "optimizer", "lr"}  # model does not vary
        assert math.isclose(sum(shares.values()), 1.0, abs_tol=1e-6), target
        assert next(iter(shares)) == driver, (target, shares)
    written = json.loads((sweep / "analysis.json").read_text())
    assert written["optuna_importance"] == entry
    assert analysis.analyze(sweep)["optuna_importance"] == entry  # seeded: the same again
    assert "Optuna's importance (fanova, all 8 done runs" in analysis.summary_text(result)


def test_importance_is_skipped_with_a_reason_below_four_runs():
    runs = [({"batch_size": 16, "optimizer": "SGD", "lr": 0.01}, 0.9, 10.0),
            ({"batch_size": 32, "optimizer": "SGD", "lr": 0.01}, 0.8, 5.0),
            ({"batch_size": 8, "optimizer": "SGD", "lr": 0.01}, 0.8, 5.0)]  # 8: not in it
    entry = search_importance.importance(runs, SPACE, Objective())
    assert "2 finished run(s)" in entry["skipped"] and entry["note"] == search_importance.NOTE
    still = search_importance.importance(runs * 3, {"model": ["ffnn"]}, Objective())
    assert still["skipped"] == "no dimension of the space varies"


def test_hypervolume_never_falls_and_the_energy_counts_every_run(pareto_sweep):
    sweep, result = pareto_sweep
    progress = result["search_progress"]
    assert [p["run"] for p in progress] == [f"{i:03d}" for i in range(12)]
    volumes = [p["hypervolume"] for p in progress]
    assert all(b >= a for a, b in zip(volumes, volumes[1:])) and volumes[-1] > 0
    spent = [p["cumulative_energy_j"] for p in progress]
    by_state = result["energy_by_state"]
    assert set(by_state) == {"done", "stopped", "failed"}
    assert math.isclose(spent[-1], search_cost.total(by_state))
    # a stopped run adds its energy and no area: it is not ranked
    for i in STOPPED:
        assert spent[i] > spent[i - 1] and volumes[i] == volumes[i - 1]
    reference = result["search_progress_reference"]
    done = [r for r in result["top_energy"]]
    assert reference["energy_j"] > max(r["energy_j"] for r in done)
    assert "the highest energy among the done runs" in reference["note"]


def test_the_reference_point_lies_beyond_the_worst_run_in_the_objective_s_direction():
    assert search_cost.reference_point([0.5, 0.9], [10.0, 20.0]) == pytest.approx((0.496, 20.1))
    assert search_cost.reference_point([0.5, 0.9], [10.0, 20.0], maximize=False) == \
        pytest.approx((0.904, 20.1))
    assert search_cost.reference_point([0.5], [10.0]) == pytest.approx((0.495, 10.1))
    assert search_cost.reference_point([math.nan], [1.0]) is None


def pdf_text(pdf: Path) -> str:
    from pypdf import PdfReader

    return " ".join(" ".join(page.extract_text() for page in PdfReader(str(pdf)).pages).split())


def test_the_report_shows_optuna_s_importance_and_the_search_s_progress(pareto_sweep, tmp_path):
    sweep, _ = pareto_sweep
    pdf = report.build(sweep, tmp_path / "a.pdf")
    text = pdf_text(pdf)
    for words in ("What the search cost", "Optuna's parameter importance (fANOVA) over all "
                  "8 done runs", search_importance.NOTE,
                  "Hypervolume of the Pareto front against the sweep's cumulative energy"):
        assert words in text, words
    assert report.build(sweep, tmp_path / "b.pdf").read_bytes() == pdf.read_bytes()


def test_stopped_runs_are_drawn_apart_and_never_on_the_front(pareto_sweep):
    import matplotlib

    matplotlib.use("Agg")
    from greenscreen_pipeline.report import plots
    from greenscreen_pipeline.report.inputs import ReportInputs

    sweep, result = pareto_sweep
    inputs = ReportInputs.read(sweep)
    fig = plots.pareto_plot(inputs.ok, result["pareto"], None, inputs.unit,
                            stopped=inputs.stopped)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "stopped (halving) (3)" in labels
    assert not {f"{i:03d}" for i in STOPPED} & {r["run"] for r in result["pareto"]}


def test_a_random_sweep_gains_the_progress_but_no_optuna_importance(tmp_path):
    sweep = make_sweep(tmp_path / "sweep", search="random")
    result = analysis.analyze(sweep)
    assert "optuna_importance" not in result and "relevance_note" not in result
    assert len(result["search_progress"]) == 12 and "search_progress_reference" in result
    text = pdf_text(report.build(sweep, tmp_path / "r.pdf"))
    assert "Optuna's parameter importance" not in text
    assert "Hypervolume of the Pareto front" in text  # a stopped or failed run: the section
