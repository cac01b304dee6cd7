"""What the report reads: analysis.json, the runs table, and run folders through RunFolder."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from greenscreen.carbon import carbon_intensity

from .. import analysis_file, collect, comparison, repeats, runfolder
from ..analysis import component_of, focus, objective_of
from ..objective import Objective
from ..records import RunResults, RunSummary
from ..runfolder import RunFolder, Unreadable
from . import layout
from .layout import EnergyUnit

BASELINE = "000"


@dataclass(frozen=True)
class FinalRun:
    """The final run's measured figures and results."""

    summary: RunSummary
    results: RunResults
    epochs_trained: int
    objective: float  # its value of the sweep's objective, by the rule the runs follow

    @property
    def energy_j(self) -> float:
        return self.summary.energy_j


@dataclass
class ReportInputs:
    path: Path
    analysis: dict
    runs: pd.DataFrame  # one row per run folder (collect.load_sweep)

    @classmethod
    def read(cls, sweep_dir: Path, analysis_dir: Path | None = None) -> "ReportInputs":
        """The sweep's runs and the analysis.json in `analysis_dir` (default: the sweep's)."""
        analysis = analysis_file.read(analysis_dir or sweep_dir, sweep_dir)
        runs = collect.load_sweep(sweep_dir, objective_of(analysis))
        # ranked by one component (analyze --component): the runs' energy_j is its figure
        inputs = cls(sweep_dir, analysis, focus(runs, component_of(analysis)))
        analysis_file.check_current(analysis, analysis_dir or sweep_dir, sweep_dir, runs,
                                    list(inputs.ok["run"]) if len(inputs.ok) else [])
        return inputs

    @cached_property
    def objective(self) -> Objective:
        """What the analysis ranked by (analysis.json says; val_accuracy, maximised, by default)."""
        return objective_of(self.analysis)

    @cached_property
    def ok(self) -> pd.DataFrame:
        """Finished runs with an objective value and an energy figure: the ones ranked."""
        return collect.rankable(self.runs)

    @cached_property
    def stopped(self) -> pd.DataFrame:
        """Runs halving stopped, with the objective of their last epoch and their energy so
        far: drawn apart in the Pareto plot, never ranked."""
        return collect.rankable(self.runs, "stopped")

    @cached_property
    def unit(self) -> EnergyUnit:
        return EnergyUnit(float(self.ok["energy_j"].max()) if not self.ok.empty else 0.0)

    @property
    def recommendation(self) -> dict:
        return self.analysis.get("recommendation") or {}

    @cached_property
    def ranked(self) -> pd.DataFrame:
        """The finished runs as the analysis ranked them: with settings.repeats, one row
        per configuration, the repeats' means (repeats.means); `ok` otherwise."""
        return repeats.means(self.ok, repeats.of_sweep(self.path))

    @cached_property
    def baseline(self) -> pd.Series | None:
        """The baseline's ranked row: run 000's; with settings.repeats, its configuration's
        (the row whose repeat_runs are configuration 0's: it is named after its first
        finished repeat, another run where 000 failed); None where none of them was ranked."""
        if self.ranked.empty or "repeat_runs" not in self.ranked:
            return self.run(BASELINE)
        ours = set(self.baseline_runs)
        mine = self.ranked["repeat_runs"].map(lambda runs: bool(ours & set(str(runs).split())))
        return self.ranked[mine].iloc[0] if mine.any() else None

    @cached_property
    def baseline_runs(self) -> list[str]:
        """The baseline configuration's run folders: 000, and its repeats (repeats.py)."""
        return [runfolder.run_name(i) for i in repeats.runs_of(0, repeats.of_sweep(self.path))]

    def others(self, name: str) -> pd.DataFrame:
        """The ranked rows but run `name`'s: with settings.repeats, the other
        configurations' means, never the recommendation's own repeats."""
        return self.ranked[self.ranked["run"] != name] if not self.ranked.empty else self.ranked

    def unranked(self) -> list[dict]:
        """analysis.json's `left_out` runs that finished (status done) but could not be
        ranked (no energy figure, none of --component's, no objective), with its reason."""
        return [e for e in self.analysis.get("left_out") or [] if e.get("status") == "done"]

    def run(self, name: str) -> pd.Series | None:
        """A finished run's row as ranked (its configuration's means, with repeats), or None."""
        rows = self.ranked[self.ranked["run"] == name] if not self.ranked.empty else self.ranked
        return None if rows.empty else rows.iloc[0]

    def spread(self, row: pd.Series) -> str:
        """" (mean of 3 repeats; SD 1.2 J, accuracy 0.004)": a ranked row's repeats and
        their spread in words; "" for a run trained once."""
        n = int(row.get("repeats", 1) or 1)
        if n < 2:
            return ""
        return (f" (mean of {n} repeats; SD {self.unit.text(row['energy_sd'])}, "
                f"{self.objective.metric} {layout.number(row['objective_sd'])})")

    def logs(self, name: str) -> pd.DataFrame:
        try:
            return RunFolder(self.path / name).logs()
        except Unreadable:
            return pd.DataFrame()

    def summary(self, name: str) -> RunSummary | None:
        """A run's summary.json; None if it has none or it cannot be read (shown as n/a)."""
        try:
            return RunFolder(self.path / name).summary()
        except Unreadable:
            return None

    def results(self, name: str) -> RunResults | None:
        try:
            return RunFolder(self.path / name).results()
        except Unreadable:
            return None

    def parameters(self, name: str) -> dict:
        try:
            data = RunFolder(self.path / name).parameters()
        except Unreadable:
            return {}
        return {k: v for k, v in data.items() if not isinstance(v, (dict, list))}

    @cached_property
    def final_folder(self) -> str:
        """The compared configuration's first final run, relative to the sweep: `final`,
        or a fallback's folder where the recommendation was passed over (final.py)."""
        named = (self.comparison or {}).get("final_folder")
        return named if isinstance(named, str) and (self.path / named).is_dir() else "final"

    @cached_property
    def final(self) -> FinalRun | None:
        """The final run's figures; None if it is not done, or was trained for another
        recommendation (`stale_comparison`) (read once: several pages use it)."""
        if self.stale_comparison:
            return None
        folder = RunFolder(self.path / self.final_folder)
        try:
            if folder.state() != "done":
                return None
            summary, results = folder.summary() or RunSummary(), folder.results() or RunResults()
            logs = folder.logs()
        except Unreadable:
            return None
        objective = self.objective
        validation = (pd.to_numeric(logs[objective.name], errors="coerce").iloc[-1]
                      if objective.name in logs and len(logs) else None)
        # results.json's test metrics (parameters.yaml holds the same for a final run)
        value = collect.objective_value(objective, results, collect.metric_on_test(
            objective.test_name, {}, results, summary), validation)
        return FinalRun(summary, results, len(logs), value)

    @cached_property
    def comparison(self) -> dict | None:
        """final/comparison.json (the recommendation against the baseline over seeds), or
        None where `final` has not written it, it cannot be read, or it compares another
        recommendation than analysis.json's (`stale_comparison`)."""
        return None if self.stale_comparison else self._comparison_file

    @cached_property
    def stale_comparison(self) -> dict | None:
        """final/comparison.json where it was made for another recommendation than the
        one analysis.json names now (the sweep grew, or was analysed again, after
        `final`): its final runs are not the recommendation's, and are not shown as such."""
        doc = self._comparison_file
        return doc if doc and not comparison.made_for(doc, self.recommendation) else None

    @cached_property
    def _comparison_file(self) -> dict | None:
        try:
            return runfolder.read_json(self.path / "final" / comparison.FILE)
        except Unreadable:
            return None

    @cached_property
    def final_figures(self) -> list[tuple[float, str]]:
        """Each final run's (energy, source), every seed of both sides, that recorded a
        figure: the source says whether it is measured or estimated (Totals)."""
        summaries = [self.summary(f.relative_to(self.path).as_posix())
                     for f in comparison.final_folders(self.path / "final")]
        return [(s.energy_j, s.source) for s in summaries
                if s is not None and not math.isnan(s.energy_j)]

    @cached_property
    def final_energy_j(self) -> float:
        """The energy of every final run (each seed, both sides) that recorded a figure."""
        return float(sum(e for e, _ in self.final_figures))

    def repeat_spread(self) -> dict | None:
        """The seed-to-seed spread of the sweep's repeated configurations (settings.repeats,
        or runs > the space's size): the pooled SD of the objective over configurations
        finished more than once, and the pooled coefficient of variation of the energy over
        those with more than one repeat of one energy kind (`repeats.one_kind`: an estimate
        beside a measurement is no spread of either), with how many configurations and
        runs that is (`energy_configurations`, `energy_runs`; `energy_cv` None where
        none); None if no configuration was finished twice."""
        dims = [d for d in collect.dimensions(self.path) if d in self.ok.columns]
        if self.ok.empty or not dims:
            return None
        groups = [g for _, g in self.ok.groupby(dims, dropna=False) if len(g) > 1]
        if not groups:
            return None
        # A mean of 0 J (runs whose meter saw nothing) has no spread relative to it: "nan %".
        alike = [same for same in (repeats.one_kind(g)[0] for g in groups)
                 if len(same) > 1 and same["energy_j"].mean() > 0]
        return {"configurations": len(groups), "runs": sum(len(g) for g in groups),
                "objective_sd": _pooled_sd([g["objective"] for g in groups]),
                "energy_configurations": len(alike),
                "energy_runs": sum(len(g) for g in alike),
                "energy_cv": _pooled_sd([g["energy_j"] / g["energy_j"].mean()
                                         for g in alike]) if alike else None}

    @cached_property
    def summaries(self) -> list[RunSummary]:
        """Every readable summary.json of the sweep folder: its runs and every final run,
        each seed's folder under final/ too (page 1 reads them three times: dates,
        devices, sources)."""
        names = [p.name for p in sorted(self.path.iterdir()) if p.is_dir()] + [
            f.relative_to(self.path).as_posix()
            for f in comparison.final_folders(self.path / "final")]
        return [s for s in (self.summary(n) for n in dict.fromkeys(names)) if s is not None]

    def carbon(self):
        """The intensity the sweep's settings ask for, and which setting chose it."""
        settings = (runfolder.read_json(self.path / "sweep.json") or {}).get("settings", {})
        if settings.get("carbon_intensity") is not None:
            return carbon_intensity(settings["carbon_intensity"]), "settings.carbon_intensity"
        if settings.get("country"):
            return carbon_intensity(country=settings["country"]), "settings.country"
        return carbon_intensity(), "no settings.country or settings.carbon_intensity given"


def _pooled_sd(groups: list[pd.Series]) -> float:
    """The pooled standard deviation of groups of two or more values each; 0 where it is
    below the values' float resolution (identical runs read "accuracy 1.17e-16")."""
    dof = sum(len(g) - 1 for g in groups)
    sd = math.sqrt(sum((len(g) - 1) * g.var(ddof=1) for g in groups) / dof)
    scale = max((float(g.abs().max()) for g in groups), default=0.0)
    return 0.0 if sd <= 1e-9 * max(scale, 1e-300) else sd
