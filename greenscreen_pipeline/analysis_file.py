"""analysis.json read back by `report` (and `report --analysis DIR`) and by `final`: there,
and of the form `analyze` writes, checked once here, so a missing, hand-edited or damaged
file is one error naming the key, what it holds and what is allowed, never a traceback from
deep in the PDF or a report of "no finished run" for a sweep that was only never analysed;
and, for the report, of the sweep's runs as they are now (`check_current`)."""

from __future__ import annotations

import hashlib
import math
from numbers import Real
from pathlib import Path

import pandas as pd

from .errors import UsageError
from .runfolder import Unreadable, read_json

FILE = "analysis.json"
DIGEST = "runs_digest"  # runs_digest(the runs analysed), written by analyze
MODES = ("max", "min")
# Lists of records (JSON objects); the ranked tables' rows name a run, its objective value
# and its energy figure, as the report prints them.
RECORDS = ("failed_or_skipped", "left_out", "warnings", "search_progress")
RANKED = ("pareto", "top_objective", "top_energy", "top_power", "top_efficiency",
          "top_efficiency_per_w")
OBJECTS = ("energy", "sweep_energy", "energy_by_state", "ranges", "search_progress_reference",
           "relevance")
RANKED_HOLDS = ("pareto", "relevance", "relevance_summary", "recommendation")
TEXTS = ("sweep_dir", "message", "efficiency_left_out", "energy_rankings_left_out",
         "relevance_note", DIGEST)


def read(folder: Path, sweep_dir: Path) -> dict:
    """`folder`/analysis.json; UsageError where it is absent, unreadable or not of the form
    `analyze` writes (`sweep_dir`: the sweep it should be the analysis of, for the advice)."""
    advice = _advice(Path(folder), Path(sweep_dir))
    try:
        doc = read_json(Path(folder) / FILE)
    except Unreadable as exc:
        raise UsageError(f"{exc}; {advice}") from None
    if doc is None:
        raise missing(Path(folder), Path(sweep_dir))
    return check(doc, Path(folder), Path(sweep_dir))


def missing(folder: Path, sweep_dir: Path) -> UsageError:
    """The one error for a folder without analysis.json, whichever command looked there."""
    return UsageError(f"no {FILE} in {folder}: the report reads the analysis; "
                      f"{_advice(folder, sweep_dir)}")


def check(doc: dict, folder: Path, sweep_dir: Path) -> dict:
    """`doc`, read from `folder`/analysis.json; UsageError where it is not of the form
    `analyze` writes, naming the key and what to run."""
    wrong = problem(doc)
    if wrong:
        raise UsageError(f"{Path(folder) / FILE}: {wrong}; it is not of the form greenscreen "
                         "analyze writes (damaged or edited by hand): "
                         f"{_advice(Path(folder), Path(sweep_dir))}")
    return doc


def _advice(folder: Path, sweep_dir: Path) -> str:
    out = "" if folder.resolve() == sweep_dir.resolve() else f" --out {folder}"
    return f"run greenscreen analyze --sweep-dir {sweep_dir}{out} first"


def problem(doc: dict) -> str | None:
    """What in `doc` is not as `analyze` writes it ("key: got X; allowed: Y"), or None."""
    def checks():  # in turn: each one reads only what those before it found of its form
        yield _counts(doc)
        yield _ranked(doc)
        yield _objective(doc.get("objective"))
        yield _recommendation(doc)
        yield from (_kind(doc, key, dict, "a JSON object") for key in OBJECTS)
        yield from (_kind(doc, key, str, "a string") for key in TEXTS)
        yield from (_records(doc, key) for key in RECORDS + RANKED)
        yield from (_ranked_row(doc, key) for key in RANKED)
        yield _relevance(doc.get("relevance") or {})
    return next((c for c in checks() if c), None)


def _got(key: str, value, allowed: str) -> str:
    shown = repr(value)
    return f"{key}: got {shown if len(shown) <= 60 else shown[:57] + '...'}; allowed: {allowed}"


def _kind(doc: dict, key: str, kind: type, allowed: str) -> str | None:
    value = doc.get(key)
    return None if value is None or isinstance(value, kind) else _got(key, value, allowed)


def _counts(doc: dict) -> str | None:
    for key in ("runs", "done", "planned"):
        value = doc.get(key)
        if (value is None and key == "planned") or (
                isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            continue
        return _got(key, value, "a whole number of runs, 0 or more")
    if doc["done"] > doc["runs"]:
        return _got("done", doc["done"], f"at most runs ({doc['runs']})")
    return None


def _objective(named) -> str | None:
    if not named:  # an analysis.json written before it named one: val_accuracy, maximised
        return None
    if not isinstance(named, dict):
        return _got("objective", named, "a JSON object with loss, name and mode")
    for key in ("loss", "name"):
        if not isinstance(named.get(key), str) or not named[key]:
            return _got(f"objective.{key}", named.get(key), "a Keras name")
    if named.get("mode") not in MODES:
        return _got("objective.mode", named.get("mode"), " or ".join(MODES))
    return None


def _ranked(doc: dict) -> str | None:
    """What an analysis that ranked runs (done above 0) always holds."""
    missing = [key for key in RANKED_HOLDS if key not in doc] if doc["done"] else []
    return f"{missing[0]}: missing, though {doc['done']} run(s) were ranked" if missing else None


def _recommendation(doc: dict) -> str | None:
    rec = doc.get("recommendation")
    if rec is None:
        return None
    if not isinstance(rec, dict):
        return _got("recommendation", rec, "a JSON object")
    if "run" not in rec:
        return "recommendation.run: missing; allowed: a run's name, such as '003', or null"
    run = rec.get("run")
    if run is not None and not isinstance(run, str):
        return _got("recommendation.run", run, "a run's name, such as '003', or null")
    for key in ("best_objective", "objective_floor"):
        if not _number(rec.get(key)):
            return _got(f"recommendation.{key}", rec.get(key), "a number")
    return None


def _records(doc: dict, key: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        return _got(key, value, "a list of JSON objects")
    return None


def _ranked_row(doc: dict, key: str) -> str | None:
    for i, row in enumerate(doc.get(key) or []):
        if not isinstance(row.get("run"), str):
            return _got(f"{key}[{i}].run", row.get("run"), "a run's name, such as '003'")
        for figure in ("objective", "energy_j"):
            if not _number(row.get(figure)):
                return _got(f"{key}[{i}].{figure}", row.get(figure), "a number")
    return None


def _number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _relevance(relevance: dict) -> str | None:
    for target, test in relevance.items():
        if not isinstance(test, dict):
            return _got(f"relevance.{target}", test, "a JSON object")
        table = test.get("table")
        if table is not None and (not isinstance(table, list)
                                  or not all(isinstance(r, dict) for r in table)):
            return _got(f"relevance.{target}.table", table, "a list of JSON objects")
    return None


def runs_digest(runs: pd.DataFrame) -> str:
    """What an analysis was made of, in 16 hex digits: each run folder's name, status and
    energy figure (`collect.load_sweep`'s frame), so that a run finished, retried or
    trained again since changes it."""
    rows = sorted(zip(*(runs[c].astype(str) if c in runs else [""] * len(runs)
                        for c in ("run", "status", "energy_j"))))
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


def check_current(doc: dict, folder: Path, sweep_dir: Path, runs: pd.DataFrame,
                  ranked: list) -> None:
    """UsageError where the analysis is not of the sweep's runs as they are now (`runs`, as
    `collect.load_sweep` reads them; `ranked` the names of those it can rank): a sweep
    resumed or a run retried since, whose report would mix the old analysis's tables with
    the new runs' figures. An analysis.json without `runs_digest` (older greenscreen) is
    checked by its counts and recommended run only."""
    where, advice = Path(folder) / FILE, _advice(Path(folder), Path(sweep_dir))
    if DIGEST in doc and doc[DIGEST] != runs_digest(runs):
        raise UsageError(f"{where} is not of the sweep's runs as they are now (a run "
                         f"finished, was retried or trained again since); {advice}")
    then, now = (doc["runs"], doc["done"]), (len(runs), len(ranked))
    if DIGEST not in doc and then != now:
        counts = "{} run folder(s), {} of them ranked"
        raise UsageError(f"{where} is of {counts.format(*then)}; the sweep now has "
                         f"{counts.format(*now)}: it is older than the runs, or was written "
                         f"by an older greenscreen; {advice}")
    run = (doc.get("recommendation") or {}).get("run")
    if run is not None and doc["done"] and run not in ranked:
        raise UsageError(f"{where} recommends run {run}, which is not among the runs ranked "
                         f"now; {advice}")
