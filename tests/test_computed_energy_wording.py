"""The original pipeline's energy (the seed format, tests/fixtures/seed-runs: real runs)
is computed from one nvidia-smi power reading per epoch times the epoch's duration
(collect.SEED_SOURCE, "computed:"): a measured power held over an epoch, not a metered
energy. sweep_total's words (`kind_of`, `words_of`) counted all that is not estimated as
"measured", so the sweep's total, the console's running total, the budget's "spent" line
and the energy by state said "measured" for it, alone or added into a real measurement.
Run folders copied or written here; no Keras training."""

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
from test_analysis_mixed_sources import ESTIMATE, MEASURED, PARAMS, write
from test_analysis_report import SEED_RUNS

from greenscreen_pipeline import budget, cli, collect, search_cost, sweep_total
from greenscreen_pipeline.executors.attempt import RunReport
from greenscreen_pipeline.executors.progress import Progress

COMPUTED = "computed from one power sample per epoch"
SEED_J = collect.load_sweep(SEED_RUNS)["energy_j"].sum()  # the three seed runs' figures


def seed_copy(folder: Path) -> Path:
    shutil.copytree(SEED_RUNS, folder, ignore=shutil.ignore_patterns("*.md"))
    return folder


def mixed(folder: Path, source: str = MEASURED, joules: float = 600.0) -> Path:
    """The seed runs (002, 017, 033) and run 000, a greenscreen run of `source` at
    `joules`, as its SMICallback leaves it."""
    seed_copy(folder)
    write(folder / "000", PARAMS, joules, source=source)
    return folder


def test_a_seed_sweep_s_total_is_computed_not_measured(tmp_path):
    assert sweep_total.kind_of(collect.SEED_SOURCE) == COMPUTED
    now = sweep_total.of(seed_copy(tmp_path / "seed"))
    assert now.total_j == pytest.approx(SEED_J) and SEED_J > 0
    assert (now.measured_j, now.estimated_j) == (0.0, 0.0)
    assert now.computed_j == pytest.approx(SEED_J)
    assert now.provenance == COMPUTED
    record = now.to_json()
    assert record["provenance"] == COMPUTED and record["computed_j"] == pytest.approx(SEED_J)
    assert "measured" not in sweep_total.words(record)


def test_the_budget_s_spent_line_says_computed(tmp_path):
    seed = seed_copy(tmp_path / "seed")
    said = budget.line({"budget": 1e9, "runs": 100}, seed)
    assert said.startswith(f"spent {SEED_J:.1f} J of budget") and said.endswith(f"({COMPUTED})")
    assert "measured" not in said


def test_computed_is_never_added_into_measured(tmp_path):
    """Run 000 measured (600 J) beside the seed runs: the total was "measured", the seed
    figures added into the measured joules."""
    sweep = mixed(tmp_path / "mix")
    now = sweep_total.of(sweep)
    assert now.measured_j == pytest.approx(600.0)
    assert now.computed_j == pytest.approx(SEED_J)
    assert now.total_j == pytest.approx(600.0 + SEED_J)
    assert now.provenance == f"measured + {COMPUTED}"
    states = search_cost.energy_by_state(collect.load_sweep(sweep))
    assert states["done"]["provenance"] == f"measured + {COMPUTED}"
    settings = {"budget": 1e9, "runs": 100}
    split = f"600.0 J measured + {SEED_J:.1f} J {COMPUTED}"  # each kind's joules said
    assert budget.line(settings, sweep).endswith(f"(measured + {COMPUTED}: {split})")
    (sweep / "sweep.json").write_text(json.dumps({"settings": settings}))
    assert f"spent (measured + {COMPUTED}: {split}); " in budget.report_sentence(sweep)


def test_the_console_s_running_total_says_computed(tmp_path):
    """The line the sweep prints as run 000 finishes, its total over every run folder."""
    sweep = mixed(tmp_path / "mix")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        Progress(None, None, lambda now: budget.line({"budget": 1e9, "runs": 100}, sweep,
                                                     now)).report(
            sweep, RunReport(0, {"status": "done", "test_accuracy": 0.9}, "done", 1.0))
    total, spent = out.getvalue().splitlines()[:2]
    assert f"energy 600.0 J ({MEASURED})" in total
    assert total.endswith(f"total {600.0 + SEED_J:.1f} J (measured + {COMPUTED})")
    assert spent.strip().endswith(f"(measured + {COMPUTED}: 600.0 J measured + {SEED_J:.1f} J "
                                  f"{COMPUTED})")
    # the same line again (a kept run on a resume) is not printed again
    again = io.StringIO()
    with contextlib.redirect_stdout(again):
        progress = Progress(None, None, lambda now: budget.line({"budget": 1e9, "runs": 100},
                                                                sweep, now))
        for _ in range(3):
            progress.report(sweep, RunReport(0, {"status": "done", "test_accuracy": 0.9},
                                             "kept", None))
    assert sum("of budget" in line for line in again.getvalue().splitlines()) == 1


def test_computed_and_estimated_is_in_part_an_estimate(tmp_path):
    """No meter beside the seed runs: "computed ... + estimated, in part an estimate"; it
    was "measured + estimated"."""
    now = sweep_total.of(mixed(tmp_path / "mix", ESTIMATE, 50.0))
    assert (now.measured_j, now.estimated_j) == (0.0, 50.0)
    assert now.provenance == f"{COMPUTED} + estimated"
    assert sweep_total.words(now.to_json()).startswith(
        f"{COMPUTED} + estimated, in part an estimate: ")


def test_analyze_on_the_command_line_says_measured_and_computed_apart(tmp_path, capsys):
    """`greenscreen analyze`'s summary and analysis.json: the mix was "measured"."""
    sweep = mixed(tmp_path / "mix")
    config = tmp_path / "config.yaml"
    config.write_text("settings: {runs: 40}\nconfiguration:\n  batch_size: {values: [32]}\n")
    assert cli.main(["analyze", "--config", str(config), "--sweep-dir", str(sweep)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"sweep energy {600.0 + SEED_J:.1f} J, measured + {COMPUTED}: " in said
    result = json.loads((sweep / "analysis.json").read_text())
    assert result["sweep_energy"]["provenance"] == f"measured + {COMPUTED}"
    assert result["sweep_energy"]["measured_j"] == pytest.approx(600.0)
    assert result["energy_by_state"]["done"]["provenance"] == f"measured + {COMPUTED}"
