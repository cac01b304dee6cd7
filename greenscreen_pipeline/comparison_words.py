"""The final comparison in words, as the console and page 1 say it (`outcome_words`):
the saving with its interval (`saving_words`), the objective's change, whether the energy
was estimated, and the seeds left out and why. The figures are comparison.py's."""

from __future__ import annotations

import math

from .comparison import PEER, SIDES, stand_in
from .objective import Objective
from .provenance import estimated
from .wording import number


def saving_words(doc: dict) -> str:
    """The saving in words: "the recommendation saves 12.3 % of the baseline's energy
    (95 % CI 5.1 to 19.0 %, 3 seeds)", or that no saving could be shown, and why."""
    n = len(doc.get("seeds") or [])
    seeds = f"{n} seed{'' if n == 1 else 's'}"
    who = _compared(doc)
    saving = doc.get("energy_saving") or {}
    mean, ci = saving.get("mean"), saving.get("ci95")
    if mean is None:
        return f"no saving could be shown: {saving.get('reason') or 'not compared'}"
    if ci is None:
        why = saving.get("reason") or "there is no interval"
        how = (f"saves {_pct(mean)} % of the baseline's energy" if mean >= 0 else
               f"uses {_pct(-mean)} % more energy than the baseline")
        return f"no saving could be shown: {who} {how} over {seeds}, but {why}"
    low, high = ci
    if low <= 0 <= high:
        return (f"no saving could be shown: the 95 % CI of the saving, {_pct(low)} to "
                f"{_pct(high)} % over {seeds}, holds 0 (mean {_pct(mean)} %)")
    if mean > 0:
        return (f"{who} saves {_pct(mean)} % of the baseline's energy (95 % CI "
                f"{_pct(low)} to {_pct(high)} %, {seeds})")
    return (f"no saving: {who} uses {_pct(-mean)} % more energy than the baseline "
            f"(95 % CI {_pct(-high)} to {_pct(-low)} % more, {seeds})")


def outcome_words(doc: dict, objective: Objective) -> str:
    """The final comparison in one sentence, as the console and page 1 both say it: the
    saving (`saving_words`), the objective's change, and that the energy was estimated
    where it was (an estimate is never called measured)."""
    return (saving_words(doc) + change_words(doc.get("objective_change") or {}, objective)
            + estimated_words(doc) + left_out_words(doc))


def estimated_words(doc: dict) -> str:
    """" (energy estimated, not measured)" where both sides' energy is, in part, an
    estimate; where one side's is, that side named (the other's was measured)."""
    guessed = [side for side in SIDES if estimated((doc.get(side) or {}).get("source", []))]
    if not guessed:
        return ""
    if len(guessed) == len(SIDES):
        return " (energy estimated, not measured)"
    return f" (the {guessed[0]} side's energy estimated, not measured)"


def left_out_words(doc: dict) -> str:
    """"; 1 of 4 seeds left out: recommended final/recommended-s3 failed (Diverged: loss
    became nan in epoch 2)", or "" where every seed was compared: the figures above are of
    the seeds both sides finished, and a seed that diverged on one side said nothing
    (comparison.json's `left_out` alone had it). Each side's own failures, up to three."""
    entries = {side: (doc.get(side) or {}).get("left_out") or [] for side in SIDES}
    dropped = max((len(e) for e in entries.values()), default=0)
    if not dropped:
        return ""
    own = [(side, e) for side in SIDES for e in entries[side] if e.get("reason") != PEER]
    said = "; ".join(f"{side} {e['folder']} {e['status']}"
                     + (f" ({e['reason']})" if e.get("reason") else "") for side, e in own[:3])
    more = f"; and {len(own) - 3} more" if len(own) > 3 else ""
    total = len(doc.get("seeds") or []) + dropped
    return f"; {dropped} of {total} seeds left out: {said}{more}"


def change_words(change: dict, objective: Objective) -> str:
    """"; accuracy -0.4 pt (95 % CI -1.2 to 0.3 pt)": the objective's change, or ""."""
    if change.get("mean") is None:
        return ""
    points = objective.metric == "accuracy"
    ci = change.get("ci95")
    interval = (f"95 % CI {signed(ci[0], points)} to {signed(ci[1], points)}" if ci else
                f"no interval: {change.get('reason') or 'too few seeds'}")
    return f"; {objective.metric} {signed(change['mean'], points)} ({interval})"


def signed(value: float, points: bool) -> str:
    """A change with its sign: "+0.4 pt" of accuracy, "-0.012" of another metric; "0 pt"
    where it rounds to nothing (not "-0.0 pt")."""
    if points:
        small = _pct(value)
        return ("0" if small == "0" else ("+" if value > 0 else "") + small) + " pt"
    return ("+" if value >= 0 else "") + number(value)


def _compared(doc: dict) -> str:
    """Who the saving belongs to: the recommendation, or the run that stands in for it."""
    run = stand_in(doc)
    return f"run {run}'s configuration (standing in for the recommendation)" if run \
        else "the recommendation"


def _pct(fraction: float) -> str:
    """A fraction in percent, one decimal; under 0.1 % with one significant digit, so that
    no figure reads "0.0 % more" or "-0.0"."""
    pct = fraction * 100
    if not math.isfinite(pct):  # "0" of a NaN claimed a figure
        return "n/a"
    if abs(pct) >= 0.05:
        return f"{pct:.1f}"
    return number(pct, 1) if abs(pct) >= 0.001 else "0"  # not "-1e-5" of rounding noise
