"""What the report reads: analysis.json, the runs table, and run folders through RunFolder."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from greenscreen.carbon import carbon_intensity

from .. import collect, runfolder
from ..runfolder import RunFolder, Unreadable
from .layout import EnergyUnit

BASELINE = "000"


@dataclass
class ReportInputs:
    path: Path
    analysis: dict
    runs: pd.DataFrame  # one row per run folder (collect.load_sweep)

    @classmethod
    def read(cls, sweep_dir: Path) -> "ReportInputs":
        return cls(sweep_dir, runfolder.read_json(sweep_dir / "analysis.json") or {},
                   collect.load_sweep(sweep_dir))

    @cached_property
    def ok(self) -> pd.DataFrame:
        """Finished runs with an accuracy and an energy figure: the ones ranked."""
        if self.runs.empty:
            return self.runs
        done = self.runs[self.runs["status"] == "done"]
        return done.dropna(subset=["accuracy", "energy_j"])

    @cached_property
    def unit(self) -> EnergyUnit:
        return EnergyUnit(float(self.ok["energy_j"].max()) if not self.ok.empty else 0.0)

    @property
    def recommendation(self) -> dict:
        return self.analysis.get("recommendation") or {}

    def run(self, name: str) -> pd.Series | None:
        """A finished run's row in the runs table, or None."""
        rows = self.ok[self.ok["run"] == name] if not self.ok.empty else self.ok
        return None if rows.empty else rows.iloc[0]

    def logs(self, name: str) -> pd.DataFrame:
        try:
            return RunFolder(self.path / name).logs()
        except Unreadable:
            return pd.DataFrame()

    def summary(self, name: str) -> dict:
        """A run's summary.json, {} if it has none or it cannot be read (shown as n/a)."""
        try:
            return RunFolder(self.path / name).summary() or {}
        except Unreadable:
            return {}

    def results(self, name: str) -> dict:
        try:
            return RunFolder(self.path / name).results() or {}
        except Unreadable:
            return {}

    def parameters(self, name: str) -> dict:
        try:
            data = RunFolder(self.path / name).parameters()
        except Unreadable:
            return {}
        return {k: v for k, v in data.items() if not isinstance(v, (dict, list))}

    def final(self) -> dict:
        """The final run's outcome, summary and results merged; {} if it is not done."""
        folder = RunFolder(self.path / "final")
        try:
            if folder.state() != "done":
                return {}
            return {**(folder.summary() or {}), **(folder.results() or {}),
                    "epochs_trained": len(folder.logs())}
        except Unreadable:
            return {}

    @cached_property
    def summaries(self) -> list[dict]:
        """Every readable summary.json of the sweep folder (page 1 reads them three times)."""
        names = [p.name for p in sorted(self.path.iterdir()) if p.is_dir()]
        return [s for s in (self.summary(n) for n in names) if s]

    def carbon(self):
        """The intensity the sweep's settings ask for, and which setting chose it."""
        settings = (runfolder.read_json(self.path / "sweep.json") or {}).get("settings", {})
        if settings.get("carbon_intensity") is not None:
            return carbon_intensity(settings["carbon_intensity"]), "settings.carbon_intensity"
        if settings.get("country"):
            return carbon_intensity(country=settings["country"]), "settings.country"
        return carbon_intensity(), "no settings.country or settings.carbon_intensity given"
