"""The analysis and the report at the original study's scale and beyond (issue 27): run
folders in the original pipeline's format with planted drivers, 1 to 1000 runs."""

import re
from pathlib import Path

import pytest
from pdfpages import render, used_height
from seedsweep import DRIVERS, write_sweep

from greenscreen_pipeline import analysis, report

# A figure as the text shows it: 1,234.5 or 0.00012 or 8.2e-159 (a sign or an exponent kept).
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")
LONGEST = 12


def pdf_text(pdf: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(str(pdf)).pages)


def assert_pages_render(pdf: Path) -> int:
    """Every page renders (pypdfium2) and holds something; returns the page count."""
    images = render(pdf, scale=0.5)
    for number, image in enumerate(images, 1):
        assert used_height(image) > 0.05, f"page {number} of {pdf.name} is blank"
    return len(images)


def assert_numbers_are_short(text: str) -> None:
    long = [n for n in NUMBER.findall(text) if len(n) > LONGEST]
    assert not long, f"numbers longer than {LONGEST} characters in the report: {long[:5]}"


def test_a_thousand_runs_find_the_planted_drivers_and_the_report_holds(tmp_path):
    sweep = write_sweep(tmp_path / "sweep", 1000, epochs=3)
    result = analysis.analyze(sweep, floor=0.02, rule="run")
    assert result["done"] == 1000
    for target, drivers in DRIVERS.items():
        # the sweep ranks by accuracy (its default objective): its relevance is "objective"'s
        tests = result["relevance"]["objective" if target == "accuracy" else target]
        table = {r["factor"]: r for r in tests["table"]}
        for factor, row in table.items():
            if factor in drivers:
                assert row["p_holm"] < 0.001 and row["partial_eta2"] > 0.5, (target, row)
            else:  # the null factors, and the other targets' drivers
                assert row["p_holm"] >= 0.05, (target, row)
        top = sorted(table.values(), key=lambda r: -r["partial_eta2"])[:len(drivers)]
        assert {r["factor"] for r in top} == drivers, target
        assert max(table.values(), key=lambda r: r["rf_importance"])["factor"] in drivers
    rec = result["recommendation"]
    assert rec["objective"] >= rec["best_objective"] - 0.02

    pdf = report.build(sweep, tmp_path / "report.pdf")
    assert assert_pages_render(pdf) <= 12
    text = pdf_text(pdf)
    assert_numbers_are_short(text)
    flat = " ".join(text.split())
    assert "p_holm < 0.001" in flat and "e-" in flat  # sentences and tables, both readable
    for words in ("1000 finished runs, translucent", "spread over a band", "runs.csv",
                  "relevance.csv", "Top runs by accuracy"):
        assert words in flat, words


@pytest.mark.parametrize("runs", [1, 2, 10, 100])
def test_every_table_and_figure_holds_from_one_run_to_a_hundred(tmp_path, runs):
    sweep = write_sweep(tmp_path / "sweep", runs, epochs=3, seed=runs)
    result = analysis.analyze(sweep)
    assert result["done"] == runs
    pdf = report.build(sweep, tmp_path / "report.pdf")
    assert_pages_render(pdf)
    text = pdf_text(pdf)
    assert_numbers_are_short(text)
    assert "The recommended configuration" in text.replace("\n", " ")


def test_numbers_stay_readable_at_every_magnitude():
    from greenscreen_pipeline.report.layout import number, p_text, p_value, setting

    assert [number(v) for v in (0.9, 167623.4, 0.000123, 1.23e-5, 3.4e9, 0, 12)] == [
        "0.900", "167,623", "0.000123", "1.23e-5", "3.4e9", "0", "12"]
    assert number(9.9996) == "10.0"  # rounding carries into the next digit
    assert [p_value(p) for p in (8.2e-159, 0.0, 0.034, 0.5, None)] == [
        "8.2e-159", "< 1e-300", "0.034", "0.50", "n/a"]
    assert [p_text(p) for p in (8.2e-159, 0.034)] == ["p < 0.001", "p = 0.034"]
    assert [setting(v) for v in (0.001, 1e-5, 64, "Adam")] == ["0.001", "1e-5", "64", "Adam"]
    assert all(len(number(10.0 ** k * 1.234567)) <= LONGEST for k in range(-300, 300))


def test_column_widths_come_from_the_page_not_the_cells():
    from greenscreen_pipeline.report.layout import WIDTH, column_widths, table

    assert column_widths(None, 4) == [WIDTH / 4] * 4
    assert column_widths([0.5, 0.25, 0.25], 3) == [WIDTH / 2, WIDTH / 4, WIDTH / 4]
    assert sum(column_widths([400, 400], 2)) == pytest.approx(WIDTH)  # scaled to fit
    t = table([["parameter", "p"], ["lr", "0." + "0" * 160 + "82"]])
    assert t._colWidths == [WIDTH / 2, WIDTH / 2]  # noqa: SLF001 (reportlab has no getter)


def test_many_unfinished_runs_are_grouped_by_reason_not_listed_one_by_one(tmp_path):
    import json

    sweep = write_sweep(tmp_path / "sweep", 5, epochs=3)
    for i in range(5, 45):  # 40 runs that failed, for two reasons
        folder = sweep / f"{i:03d}"
        folder.mkdir()
        (folder / "parameters.yaml").write_text("batch_size: 32\n")
        reason = "out of memory" if i % 4 else "NaN loss"
        (folder / "status.json").write_text(json.dumps({"status": "failed", "reason": reason}))
    analysis.analyze(sweep)
    pdf = report.build(sweep, tmp_path / "report.pdf")
    assert_pages_render(pdf)
    flat = " ".join(pdf_text(pdf).split())
    assert "Runs that did not finish (40)" in flat and "Grouped by status and reason" in flat
    assert "30: 005, 006, 007, 009, 010, ..." in flat and "10: 008, 012," in flat
