"""The PDF report (reportlab + seaborn): the sweep's answer on page 1, its evidence in
pictures after it, the full tables in an appendix.

Every user-supplied string is escaped before it enters reportlab markup, and the
same inputs give byte-identical PDFs (reportlab's invariant mode, PNG plots
without metadata, no random numbers in the plots).
"""

from __future__ import annotations

from pathlib import Path

from reportlab.lib.units import cm
from reportlab.platypus import CondPageBreak

from . import answer, details, search
from .inputs import ReportInputs
from .layout import para, write

__all__ = ["build", "sweep_carbon_intensity"]


def build(sweep_dir: "str | Path", out: "str | Path",
          analysis_dir: "str | Path | None" = None) -> Path:
    """Writes the report of `sweep_dir` (analysed already, into `analysis_dir` if not into
    the sweep folder: `analyze --out`) to `out`; returns `out`."""
    import matplotlib

    matplotlib.use("Agg")
    inputs = ReportInputs.read(Path(sweep_dir), Path(analysis_dir) if analysis_dir else None)
    if not inputs.analysis.get("done"):
        return write(nothing_to_rank(inputs), Path(out))
    # The recommendation goes on with page 1 when it has room (a small sweep's page 1 is short).
    story = answer.page_one(inputs) + [CondPageBreak(9 * cm)]
    story += answer.recommendation(inputs)
    story += details.how_runs_differ(inputs)
    story += details.resnet_study(inputs)
    story += details.not_finished(inputs)
    story += details.not_ranked(inputs)
    story += search.search_cost(inputs)
    story += details.appendix(inputs)
    return write(story, Path(out))


def nothing_to_rank(inputs: ReportInputs) -> list:
    a = inputs.analysis
    spent = (a.get("sweep_energy") or {})
    energy = (f" Its runs have spent {inputs.unit.text(spent['energy_j'])} so far "
              f"({spent.get('provenance') or 'measured'}), counted in the sweep's totals."
              if spent.get("energy_j") else "")
    done = len(inputs.unranked())  # finished, but with no figure to rank: said, and why
    state = (f"no run it could rank: {done} of its {a.get('runs', 0)} run folders finished, "
             "but with no figure to rank (listed below)" if done else
             f"no finished run ({a.get('runs', 0)} run folders)")
    return [para("greenscreen sweep report", "Title"), para(f"Sweep folder: {inputs.path}"),
            para(f"This sweep has {state}, so there is nothing to rank or recommend yet."
                 f"{energy}"), *details.not_finished(inputs), *details.not_ranked(inputs)]


def sweep_carbon_intensity(sweep_dir: "str | Path"):
    """The intensity the sweep's settings ask for, and which setting chose it."""
    return ReportInputs(Path(sweep_dir), {}, None).carbon()
