"""The final comparison over seeds: the recommendation against the baseline, each trained
`settings.final_seeds` times for `final_epochs`, interleaved and measured alike.

Layout: seed 0 of the recommendation is `<sweep>/final/` itself (the final run every
reader knows); every other run is a folder inside it, `final/recommended-s<k>/` and
`final/baseline-s<k>/`. Seed k of both sides trains with the same training seed
(`settings.seed` + the recommended run's index + k) and the same data split.

A recommendation whose first final run diverges is passed over for the run the same rule
picks without it (final.py): its runs are `final/fallback-<run>-s<k>/` (the baseline's
own where it is run 000's configuration), and comparison.json names
`passed_over`, the run compared (`final_run`) and its first folder (`final_folder`).

`final/comparison.json` holds `seeds` (the training seeds compared), `recommended` and
`baseline` (each its objective and `energy_j`: `values`, `mean`, `sd`, `ci95`),
`energy_saving` and `objective_change` (`mean`, `ci95`) and the `method`. The intervals
are Student t intervals over seeds: a side's mean, the paired difference of the
objective, and Fieller's interval for the saving, a ratio of paired means; below
`MIN_SEEDS` an interval is None with the reason. (They replaced a percentile bootstrap,
whose "95 %" interval held the true saving in 75 % of 2000 draws at 3 seeds,
benchmarks/comparison_coverage.py: with so few seeds it cannot reach past their own
extremes.) Energy is compared only between runs
measured the same way: never an estimate against a measurement.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np

from . import collect, runfolder
from .objective import Objective
from .provenance import NOTHING_SEEN, energy_kind, usable_energy, why_not_compared

SIDES = ("recommended", "baseline")
CONFIDENCE = 0.95
MIN_SEEDS = 3  # fewer seeds give no interval worth stating
POINT = 1e-9  # an interval narrower than this (relative) is a point: no spread, none stated
FILE = "comparison.json"
_SEED_FOLDER = re.compile(r"(recommended|baseline|fallback-\d+)-s\d+")


def folder_of(final_dir: Path, side: str, k: int, fallback: str | None = None) -> Path:
    """Seed `k`'s run folder of `side`: the recommendation's seed 0 is `final_dir` itself;
    a fallback's (run `fallback`, final.py) seeds are `fallback-<run>-s<k>`."""
    if side == "recommended" and fallback is not None:
        return final_dir / f"fallback-{fallback}-s{k}"
    return final_dir if (side, k) == ("recommended", 0) else final_dir / f"{side}-s{k}"


def plan(final_dir: Path, seeds: int, baseline: bool = True,
         fallback: str | None = None) -> list[tuple[str, int, Path]]:
    """(side, k, folder) in training order, interleaved: rec s0, base s0, rec s1, ...;
    the recommendation alone when `baseline` is False (it is the baseline); `fallback`:
    the run that stands in for a recommendation passed over (final.py). A fallback that
    is the baseline's configuration is the baseline's own runs (the same seeds)."""
    if fallback is not None and not baseline:
        return [("recommended", k, folder_of(final_dir, "baseline", k)) for k in range(seeds)]
    sides = SIDES if baseline else SIDES[:1]
    return [(side, k, folder_of(final_dir, side, k, fallback))
            for k in range(seeds) for side in sides]


def final_folders(final_dir: Path) -> list[Path]:
    """Every final run folder there is: `final_dir` and its seed folders, whatever
    settings.final_seeds is now."""
    if not final_dir.is_dir():
        return []
    return [final_dir] + sorted(p for p in final_dir.iterdir()
                                if p.is_dir() and _SEED_FOLDER.fullmatch(p.name))


def read_runs(sweep_dir: Path, planned: list[tuple[str, int, Path]],
              objective: Objective) -> dict[str, list[dict]]:
    """Each side's runs by seed index: folder (relative to the sweep), status, reason,
    objective value, energy and its source, read as collect reads a sweep's runs."""
    out: dict[str, list[dict]] = {}
    for side, _, folder in planned:
        row = collect.load_run(folder, None, objective) or {"status": "pending"}
        out.setdefault(side, []).append({
            "folder": folder.relative_to(sweep_dir).as_posix(),
            "status": row.get("status"), "reason": row.get("reason"),
            "objective": _finite(row.get("objective")), "energy_j": _finite(row.get("energy_j")),
            "source": row.get("source") if isinstance(row.get("source"), str) else None,
            "split": _split_of(folder), "partitioning": row.get("partitioning")})
    return out


def _split_of(folder: Path) -> str | None:
    """The split a run's objective value was taken on ("test", "validation"), or None."""
    try:
        results = runfolder.RunFolder(folder).results()
    except runfolder.Unreadable:
        return None
    return (results.objective or {}).get("split") if results else None


def measured_as(runs: dict[str, list[dict]], objective: Objective) -> str:
    """The objective as the compared values are: "test_accuracy" where every run's value
    is its test split's (the usual), the validation metric where every one is that."""
    splits = {r.get("split") for rows in runs.values() for r in rows if _usable(r)} - {None}
    if splits == {"test"}:
        return objective.test_name
    if splits <= {"validation"}:  # or not recorded: folders from before results.json
        return objective.name
    return f"{objective.test_name}, else {objective.name}"


def _finite(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _usable(row: dict) -> bool:
    return row["status"] == "done" and row["objective"] is not None \
        and usable_energy(row["energy_j"])


def compare(runs: dict[str, list[dict]], seeds: list[int], objective: Objective,
            no_baseline: str | None = None) -> dict:
    """The comparison.json document of `runs` (read_runs), whose seed k trained with
    training seed `seeds[k]`. `no_baseline`: why the baseline was not trained (it is the
    recommendation); the seeds still show the recommendation's spread."""
    sides = [s for s in SIDES if s in runs]
    paired = [k for k in range(len(seeds)) if all(_usable(runs[s][k]) for s in sides)]
    doc: dict = {"seeds": [seeds[k] for k in paired]}
    for side in SIDES:
        doc[side] = (_side(runs[side], paired, objective) if side in runs else
                     {"reason": no_baseline, "folders": []})
    rec, base = doc["recommended"], doc["baseline"]
    missing = no_baseline or (None if paired else _unpaired(runs))
    why = missing or _incomparable(runs, paired)
    doc["energy_saving"] = {"mean": None, "ci95": None, "reason": why} if why else \
        _saving(rec["energy_j"]["values"], base["energy_j"]["values"])
    doc["objective_change"] = {"mean": None, "ci95": None, "reason": missing} if missing \
        else _difference(rec["objective"]["values"], base["objective"]["values"])
    doc["method"] = method(measured_as(runs, objective), _splits_alike(runs))
    return doc


def _splits_alike(runs: dict[str, list[dict]]) -> str | None:
    """Where the two sides partition the data differently, how: their objective values
    then come from different test sets. None where they split it alike."""
    kinds = {side: sorted({str(r.get("partitioning")) for r in rows if r.get("partitioning")})
             for side, rows in runs.items()}
    if len(kinds) < 2 or kinds["recommended"] == kinds["baseline"]:
        return None
    return (f"partitioning {', '.join(kinds['recommended']) or 'unknown'} against "
            f"{', '.join(kinds['baseline']) or 'unknown'}")


def _unpaired(runs: dict[str, list[dict]]) -> str:
    """Why no seed finished on both sides: each side's first reason (left_out has all)."""
    said = []
    for side, rows in runs.items():
        unusable = [r for r in rows if not _usable(r)]
        if unusable:
            first, why = unusable[0], _why_left_out(unusable[0])
            said.append(f"{side}: {len(unusable)} of {len(rows)} not usable, e.g. "
                        f"{first['folder']} {first['status']}" + (f" ({why})" if why else ""))
    return "no seed finished on both sides (" + "; ".join(said) + ")"


def _incomparable(runs: dict[str, list[dict]], paired: list[int]) -> str | None:
    """Why the two sides' energy cannot be compared, or None."""
    kinds = {side: sorted({energy_kind(runs[side][k]["source"]) for k in paired})
             for side in SIDES}
    if len(kinds["recommended"]) == 1 and kinds["recommended"] == kinds["baseline"]:
        return None if kinds["recommended"] != ["none"] else "no run's energy was measured"
    said = "; ".join(f"{side}: {', '.join(k)}" for side, k in kinds.items())
    return (f"the runs' energy was not obtained the same way ({said}), and "
            f"{why_not_compared([k for side in kinds.values() for k in side])}")


def _side(rows: list[dict], paired: list[int], objective: Objective) -> dict:
    done = [rows[k] for k in paired]
    kinds = {energy_kind(r["source"]) for r in done}
    energy = _summary([r["energy_j"] for r in done])
    if len(kinds) > 1:  # never one mean over an estimate and a measurement
        energy.update(mean=None, sd=None, ci95=None, reason="the seeds' energy was not "
                      f"obtained the same way: {', '.join(sorted(kinds))}")
    out = {"folders": [r["folder"] for r in done],
           "objective": {"name": measured_as({"side": rows}, objective),
                         **_summary([r["objective"] for r in done])},
           "energy_j": energy, "source": sorted({r["source"] or "none" for r in done})}
    left = [{"folder": r["folder"], "status": r["status"], "reason": _why_left_out(r)}
            for k, r in enumerate(rows) if k not in paired]
    return {**out, "left_out": left} if left else out


def _why_left_out(row: dict) -> str | None:
    if row["status"] != "done":
        return row["reason"]
    if row["objective"] is None:
        return "no objective value"
    if row["energy_j"] is None:
        return f"no energy figure (source: {row['source'] or 'none'})"
    if not usable_energy(row["energy_j"]):
        return f"energy {row['energy_j']:g} J: {NOTHING_SEEN}"
    return PEER


PEER = "the other side's run of this seed did not finish"  # a seed left out for its pair


def _scale(*samples) -> float:
    """The largest magnitude among `samples`' values (1 where none is above 0): mean and SD
    are taken of values divided by it, so that figures near the float's limit (1e308 J)
    do not overflow the sum into inf and the saving into NaN."""
    top = max((float(np.max(np.abs(s))) for s in samples if len(s)), default=0.0)
    return top if 0 < top < math.inf else 1.0


def _mean(values, scale: float) -> float:
    return float(np.mean(np.asarray(values, dtype=float) / scale) * scale)


def _summary(values: list[float]) -> dict:
    """values, mean, sd (the seed-to-seed spread, n - 1) and the mean's t interval."""
    scale = _scale(values)
    sd = float(np.std(np.asarray(values, dtype=float) / scale, ddof=1) * scale) \
        if len(values) > 1 else None

    def interval(v):
        from scipy import stats

        return stats.ttest_1samp(v, 0.0).confidence_interval(CONFIDENCE)

    return {"values": values, "sd": sd, **_estimate(_mean(values, scale) if values else
                                                    None, len(values), interval, values)}


def _difference(rec: list[float], base: list[float]) -> dict:
    """mean(rec) - mean(base) and its paired t interval (the seeds' differences)."""
    def interval(r, b):
        from scipy import stats

        return stats.ttest_rel(r, b).confidence_interval(CONFIDENCE)

    mean = float(np.mean(rec) - np.mean(base)) if rec else None
    found = _estimate(mean, len(rec), interval, rec, base)
    if found["ci95"] is None and "reason" not in found:  # differences all equal: t is inf
        found["reason"] = (f"the two sides differ by the same amount on each of the "
                           f"{len(rec)} seeds: no spread in the difference to form an "
                           "interval from")
    return found


def _saving(rec: list[float], base: list[float]) -> dict:
    """1 - mean(rec) / mean(base) and its interval: 1 - Fieller's for the ratio."""
    def interval(r, b):
        low, high = fieller_ratio_interval(r, b, CONFIDENCE)
        return (None, None) if low is None else (1 - high, 1 - low)

    scale = _scale(rec, base)
    if rec and not _mean(base, scale) > 0:  # no ratio: "uses inf % more energy" before
        return {"mean": None, "ci95": None, "reason": f"the baseline's mean energy is "
                f"{_mean(base, scale):g} J over its {len(rec)} seed(s): no saving is a "
                "fraction of it"}
    mean = 1 - _mean(rec, scale) / _mean(base, scale) if rec else None
    return _estimate(mean, len(rec), interval, rec, base, unbounded=(
        f"the baseline's energy varies too much over its {len(rec)} seeds for a bounded "
        "interval of the saving"))


def _estimate(mean: float | None, n: int, interval, *samples,
              unbounded: str | None = None) -> dict:
    """{"mean": mean, "ci95": [low, high] from `interval(*samples)`}; ci95 None with the
    reason below MIN_SEEDS or where no sample varies, and None (with `unbounded` as its
    reason) where the interval is not finite."""
    if not n:
        return {"mean": None, "ci95": None, "reason": "no seed finished"}
    if n < MIN_SEEDS:
        # "finished" was wrong where a seed finished without an energy figure
        return {"mean": mean, "ci95": None, "reason": f"an interval needs at least "
                f"{MIN_SEEDS} seeds (settings.final_seeds), and {n} "
                f"{'is' if n == 1 else 'are'} usable (finished on both sides, with an "
                "objective value and an energy figure)"}
    arrays = [np.asarray(s, dtype=float) for s in samples]
    if all(np.ptp(a) == 0 for a in arrays):  # no spread: t is 0/0
        # A point "95 % CI 50.0 to 50.0 %" claimed a certainty that n seeds cannot give;
        # identical figures on every seed are more likely a counter that did not move.
        return {"mean": mean, "ci95": None, "reason": f"its {n} seeds gave identical "
                "figures: no seed-to-seed spread to form an interval from"}
    with np.errstate(all="ignore"), warnings.catch_warnings():  # judged by width below:
        warnings.simplefilter("ignore", RuntimeWarning)  # SciPy's "nearly identical data"
        low, high = interval(*arrays)
    if low is not None and math.isfinite(low) and math.isfinite(high):
        if high - low <= POINT * max(1.0, abs(mean or 0.0)):  # a ratio that never varies,
            # or differences equal but for rounding (1.1e-16): a point again
            return {"mean": mean, "ci95": None, "reason": f"over its {n} seeds the figure "
                    "does not vary (the sides move in step): no seed-to-seed spread to form "
                    "an interval from"}
        return {"mean": mean, "ci95": [float(low), float(high)]}
    return {"mean": mean, "ci95": None} if unbounded is None else {
        "mean": mean, "ci95": None, "reason": unbounded}


def fieller_ratio_interval(a, b, confidence: float = CONFIDENCE) -> tuple:
    """Fieller's interval for mean(a) / mean(b) of paired samples: the ratios r for which
    a - r b has a mean that a t test cannot tell from 0. Exact for normal pairs. SciPy
    and statsmodels have no paired form, hence these lines. (None, None) where it is
    unbounded: mean(b) itself is not told from 0 at this confidence.

    Example:

    >>> low, high = fieller_ratio_interval([80, 84, 90], [100, 103, 110])
    >>> bool(low < 84.67 / 104.33 < high)
    True
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    # The ratio does not change when both sides are scaled alike; its squares and
    # covariances overflowed (inf - inf: nan) for figures near 1e160 J and above.
    scale = float(np.max(np.abs(np.concatenate([a, b])), initial=0.0))
    if 0 < scale < math.inf:
        a, b = a / scale, b / scale
    n = len(a)
    q = stats.t.ppf(0.5 + confidence / 2, n - 1) ** 2 / n
    cov = np.cov(a, b, ddof=1)
    ma, mb = a.mean(), b.mean()
    # (ma - r mb)^2 <= q (s_aa - 2 r s_ab + r^2 s_bb): a quadratic A r^2 - 2 B r + C <= 0
    big_a = mb * mb - q * cov[1, 1]
    big_b = ma * mb - q * cov[0, 1]
    big_c = ma * ma - q * cov[0, 0]
    if big_a <= 0:
        return None, None
    root = math.sqrt(max(big_b * big_b - big_a * big_c, 0.0))
    return (big_b - root) / big_a, (big_b + root) / big_a


def recommendation_key(rec: dict) -> dict:
    """What comparison.json records of the recommendation `final` trained (its
    `recommendation`), so that a later analysis with another one is not reported with
    these final runs: the run, the rule and the parameters it names."""
    return {"run": rec.get("run"), "rule": rec.get("rule", "run"),
            "parameters": rec.get("parameters")}


def made_for(doc: dict, rec: dict) -> bool:
    """Whether comparison.json `doc` compares the recommendation `rec` (analysis.json's):
    not where the sweep grew, or was analysed again, since `final` ran. A document from
    before `recommendation` was recorded: the run it trained for, as far as it says."""
    if "recommendation" in doc:
        return doc["recommendation"] == recommendation_key(rec)
    trained_for = ((doc.get("passed_over") or [{}])[0].get("run")
                   or doc.get("final_run"))
    return trained_for is None or trained_for == rec.get("run")


def stand_in(doc: dict) -> str | None:
    """The run compared in the recommendation's place where `final` passed it over
    (final.py), or None: the recommendation itself is compared."""
    return doc.get("final_run") if doc.get("passed_over") else None


def method_in_short(name: str) -> str:
    """How the intervals were computed, in one sentence for page 1 (`method` in full)."""
    return (f"The intervals are {CONFIDENCE * 100:.0f} % intervals over seeds paired by "
            "seed: the saving's is 1 - Fieller's interval for the ratio of the mean "
            f"energies, the {name} change's a paired Student t interval (none below "
            f"{MIN_SEEDS} seeds; final/comparison.json has the method in full).")


def method(name: str, split_differs: str | None = None) -> dict:
    """How comparison.json's figures were computed, in words. `name`: the objective as
    the compared values are (`measured_as`); `split_differs`: how the sides' data splits
    differ, where they do (`_splits_alike`)."""
    data = ("training seed and data split" if split_differs is None else
            "training seed, but not their data split (" + split_differs + "): their "
            f"{name} values come from different test sets")
    return {
        "interval": f"{CONFIDENCE * 100:.0f} % Student t intervals over seeds: a side's "
                    "mean (scipy.stats.ttest_1samp), the objective's paired difference "
                    "(scipy.stats.ttest_rel), and the saving as 1 - Fieller's interval for "
                    "the ratio of the paired means; exact for normal seed-to-seed noise; "
                    f"none below {MIN_SEEDS} seeds, nor where the figure does not vary "
                    "from seed to seed (a point interval would claim a certainty the seeds "
                    "cannot give)",
        "pairing": f"by seed: the recommended and the baseline run of seed k share their "
                   f"{data}, and trained one after the other, so the intervals are "
                   "of paired seeds and a drift of the machine hits both alike",
        "energy_saving": "1 - mean(recommended energy_j) / mean(baseline energy_j): the "
                         "fraction of the baseline's energy saved",
        "objective_change": f"mean(recommended {name}) - mean(baseline {name}), in its "
                            "own units",
        "sd": "the sample standard deviation over seeds: the seed-to-seed spread",
        "provenance": "energy is compared only between runs measured the same way (the "
                      "same power sources), never an estimate against a measurement",
        "caveat": "with few seeds the t quantile is large (4.30 at 3 seeds), so the "
                  "intervals are wide: more seeds (settings.final_seeds) narrow them",
    }
