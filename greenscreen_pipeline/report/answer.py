"""Page 1 (the answer: headline, drivers, Pareto front, totals) and the recommendation
(its runs next to the baseline are in details.py)."""

from __future__ import annotations

import pandas as pd
from reportlab.lib.units import cm
from reportlab.platypus import Spacer

from .. import budget, collect, relevance, search_cost
from ..analysis import component_of
from ..comparison import SIDES, method_in_short
from ..comparison_words import outcome_words, signed
from ..objective import Objective
from ..provenance import (
    energy_kind,
    estimated,
    kinds_in_words,
    usable_energy,
    why_not_compared,
)
from ..space import METHOD_DIMENSIONS
from . import details, plots
from .inputs import BASELINE, ReportInputs
from .layout import WIDTH, figure, number, para, section, setting, table
from .totals import dates, totals

# Other finished runs before their median says something: with fewer, it is one run's.
MEDIAN_FROM = 2
RELEVANCE_FROM = 3  # runs the relevance tests need (relevance.relevance: fewer, no table)


def _change(new: float, old: float) -> str:
    """"-31 %": new against old; under 0.5 % with one significant digit ("-0.3 %"), not
    a signed zero ("-0 %")."""
    if not old:
        return "n/a"
    pct = (new / old - 1) * 100
    if abs(pct) >= 0.5:
        return f"{pct:+.0f} %"
    return f"{pct:+.1g} %" if abs(pct) >= 0.05 else "0 %"


def headline(inputs: ReportInputs) -> str:
    """One sentence with figures: what to run and what it saves against the baseline (or
    the median run, where that means something: `_median_left_out`)."""
    rec, unit, metric = inputs.recommendation, inputs.unit, inputs.objective.metric
    if rec.get("rule") == "values" and rec.get("run") is None:
        final = inputs.final
        verb = "estimated" if estimated(final.summary.source if final else
                                        inputs.analysis.get("sources", [])) else "measured"
        if final is None:
            done = f"no final run has {verb} it yet (./greenscreen.sh final)"
        elif not usable_energy(final.energy_j):  # "measured it: n/a J" claimed a figure
            done = (f"the final run trained it for {final.epochs_trained} epochs, to "
                    f"{metric} {number(final.objective)}, but recorded no energy figure")
        else:
            done = (f"the final run {verb} it: {unit.text(final.energy_j)} over "
                    f"{final.epochs_trained} epochs at {metric} {number(final.objective)}")
        return ("The recommended configuration (each parameter's best value) is not among the "
                f"sweep's runs; {done}.")
    pick = inputs.run(rec["run"])
    what = (f"run {rec['run']}" if rec.get("rule") != "values" else
            f"each parameter's best value, which is run {rec['run']}")
    used = f"used {unit.text(pick['energy_j'])}{inputs.spread(pick)}" + (
        " (an estimate, not a measurement)" if estimated(pick.get("source")) else "")
    ref, against = _reference(inputs, rec["run"])
    if ref is None:
        return (f"The recommended configuration ({what}) {used} at {metric} "
                f"{number(pick['objective'])}; it is compared with no other run: {against}.")
    unlike = _obtained_unlike(inputs, rec["run"], against)
    if unlike:
        return (f"The recommended configuration ({what}) {used} at {metric} "
                f"{number(pick['objective'])}; its energy is not compared with the "
                f"{unlike}.")
    return (f"The recommended configuration ({what}) {used}, "
            f"{_change(pick['energy_j'], ref['energy_j'])} {against}, at "
            f"{_difference(inputs.objective, pick['objective'], ref['objective'])}.")


def _same_configuration(inputs: ReportInputs, run: str, other: str) -> bool:
    """Whether two runs trained the same configuration (every dimension of the sweep, as
    their parameters.yaml record it): then their difference is the seed's, not a saving."""
    mine, theirs = inputs.parameters(run), inputs.parameters(other)
    dims = [d for d in collect.dimensions(inputs.path) if d in mine or d in theirs]
    return bool(dims) and all(str(mine.get(d)) == str(theirs.get(d)) for d in dims)


def _reference(inputs: ReportInputs, run: str) -> tuple[pd.Series | None, str]:
    """What the recommended run is compared with, and the words: the baseline (with
    settings.repeats, its configuration's mean, whichever repeats finished); else the
    median of the other ranked rows, unless that means nothing (then None and why not)."""
    base = inputs.baseline
    if base is not None and run != base["run"]:
        if _same_configuration(inputs, run, base["run"]):  # a repeat: seed noise, no saving
            return None, (f"it is the baseline's configuration (run {BASELINE}'s), so the "
                          "two differ by their training seed alone")
        return base, f"against the baseline ({_baseline_name(base)})"
    why = ("the baseline itself is recommended" if base is not None else
           _baseline_status(inputs))
    others = inputs.others(run)  # with repeats, the other configurations' means
    left_out = _median_left_out(inputs, len(others))
    if left_out:
        return None, f"{why}, and {left_out}"
    # Each figure's median over the other runs: the recommended run is never its own
    # reference (with 3 runs, the median of all was often the pick itself: "+0 %").
    # "finished" where every finished run was ranked; else the median is the ranked ones'
    rows = ("configurations' means" if "repeat_runs" in others else
            "ranked runs" if inputs.unranked() else "finished runs")
    return others.median(numeric_only=True), (
        f"against the median of the other {len(others)} {rows} ({why})")


def _baseline_name(base: pd.Series) -> str:
    """"run 000"; with settings.repeats where 000 was not ranked (it failed), the runs of
    its configuration the baseline's mean is over."""
    if base["run"] == BASELINE:
        return f"run {BASELINE}"
    runs = str(base.get("repeat_runs", "") or base["run"]).split()
    return f"run {BASELINE}'s configuration: " + (
        f"the mean of runs {', '.join(runs)}" if len(runs) > 1 else f"run {runs[0]}")


def _obtained_unlike(inputs: ReportInputs, run: str, against: str) -> str | None:
    """Where the recommended run's energy and its reference's were not obtained the same
    way (one measured, one estimated, or by other sources), the words that say so: a
    percentage between them would compare an estimate with a measurement."""
    pick = energy_kind(inputs.run(run).get("source"))
    if against.startswith("against the baseline"):
        others, name = [inputs.baseline], f"baseline's ({inputs.baseline['run']})"
    else:
        others, name = [row for _, row in inputs.others(run).iterrows()], "other runs'"
    kinds = sorted({energy_kind(row.get("source")) for row in others} - {pick})
    if not kinds:
        return None
    return (f"{name}, which was obtained otherwise ({pick} here, {', '.join(kinds)} there): "
            f"{why_not_compared([pick, *kinds])}")


def _median_left_out(inputs: ReportInputs, others: int) -> str | None:
    """Why the median of the `others` finished runs is no reference, or None when it is
    one. It stands for a typical configuration only where the runs are a random sample of
    the space, and more than one of them."""
    if search_cost.searched_by(inputs.path) == "pareto":
        return (f"the median of its {len(inputs.ok)} finished run(s) means nothing here: a "
                "pareto search's sampler chose most of them, so they are no random sample "
                "of the space")
    if others < MEDIAN_FROM:
        return (f"{others} other finished run{' is' if others == 1 else 's are'} too few "
                "for a median to compare it with")
    return None


def _difference(objective: Objective, value: float, ref: float) -> str:
    """The recommended run's objective against the reference's, in words."""
    digits = 3 if number(value) != number(ref) else 5  # "0.800 against 0.800" said nothing
    both = f"{number(value, digits)} against {number(ref, digits)}"
    if objective.metric == "accuracy":  # "-0.04 pt", not "-0.0 pt"
        return f"{signed(value - ref, True)} accuracy ({both})"
    return f"{objective.label} {both}"


def _baseline_status(inputs: ReportInputs) -> str:
    """How the baseline's runs ended where none was ranked: "the baseline failed: <reason>",
    "the baseline run 000 is missing"; with settings.repeats, each repeat's."""
    runs = inputs.baseline_runs
    said = [_run_status(inputs, name, named=len(runs) > 1) for name in runs]
    return ("the baseline's repeats: " if len(runs) > 1 else "the baseline ") + "; ".join(said)


def _run_status(inputs: ReportInputs, name: str, named: bool) -> str:
    """One run's state in words; a finished run that was not ranked says why not."""
    rows = inputs.runs[inputs.runs["run"] == name]
    if rows.empty:
        return f"run {name} is missing"
    row, prefix = rows.iloc[0], f"run {name} " if named else ""
    unranked = {e.get("run"): e.get("reason") for e in inputs.unranked()}
    if name in unranked:  # analysis.json's words: "done, but no energy figure (...)"
        why = str(unranked[name] or "").removeprefix("done, but ")
        return f"{prefix}finished but is not ranked" + (f": {why}" if why else "")
    reason = row.get("reason")
    return f"{prefix}{row['status']}" + (
        f": {reason}" if isinstance(reason, str) and reason else "")


def page_one(inputs: ReportInputs) -> list:
    a, unit = inputs.analysis, inputs.unit
    story = [para("greenscreen sweep report", "Title"),
             para(f"Sweep folder: {inputs.path} · {dates(inputs)}", "Italic"),
             Spacer(1, 0.2 * cm), para(headline(inputs) + _diverged_later(inputs), "Heading3"),
             *final_comparison(inputs)]
    spent = budget.report_sentence(inputs.path)
    if spent:
        story.append(para(spent))
    part = a.get("energy") or {}
    if part.get("component"):
        story.append(para(f"Every energy figure ranked here is the {part['component'].upper()}"
                          f"'s measured energy only ({part['column']}; greenscreen analyze "
                          "--component), not the total.", "Italic"))
    tables = [t for t in ("energy_j", "power_w") if a["relevance"].get(t, {}).get("table")]
    read_from = [_sentence(a["relevance_note"])] if a.get("relevance_note") else []
    if tables:
        story += section("What drives energy and power", figure(plots.importance_bars(
            a["relevance"]), WIDTH), para(" ".join(read_from + a["relevance_summary"][:2]),
                                                 "Italic"), level="Heading4")
    else:
        story.append(para(" ".join(read_from + [no_driver(inputs)])))
    note = [para(f"Grey: the {len(inputs.ok)} finished runs, translucent where they overlap; "
                 "front runs named where there is room (every one in pareto.csv).", "Italic")
            ] if len(inputs.ok) > plots.DOTS_OPAQUE else []  # the plot's dots fade: say so
    note += [para(_mixed_front(inputs), "Italic")] if _mixed_front(inputs) else []
    story += section(f"Energy against {inputs.objective.label}: the Pareto front", figure(
        plots.pareto_plot(inputs.ok, a["pareto"], inputs.recommendation.get("run"), unit,
                          inputs.objective, inputs.stopped, inputs.ranked), WIDTH * 0.92),
        *note,
        level="Heading4")
    story += section("Totals", totals(inputs), level="Heading4")
    return story


def _mixed_front(inputs: ReportInputs) -> str | None:
    """Where the finished runs' energy was obtained in more than one way, a warning that
    the front places estimates beside measurements; None where it was obtained one way."""
    ways = kinds_in_words(inputs.ok["source"]) if "source" in inputs.ok else None
    if ways is None:
        return None
    kinds = sorted(set(inputs.ok["source"].map(energy_kind)))
    return (f"The runs' energy was obtained in {ways}: this front places them side by side, "
            f"but {why_not_compared(kinds)}; compare runs of one kind only.")


def no_driver(inputs: ReportInputs) -> str:
    """Why page 1 names no driver of energy or power: too few runs for the tests (a pareto
    search's random start, which is all they read, or the sweep's), or none varied."""
    a = inputs.analysis
    factors = [f for f in collect.dimensions(inputs.path) if f in inputs.ok]
    varied = relevance.varying_factors(inputs.ok, factors)
    read = int((a["relevance"].get("energy_j") or {}).get("runs", len(inputs.ok)))
    runs = f"{read} run{'s' if read != 1 else ''}"
    which = f"its random start's {runs}" if a.get("relevance_note") else f"the {runs}"
    if varied and read < RELEVANCE_FROM:
        return (f"{which.capitalize()} {'is' if read == 1 else 'are'} too few to name a driver "
                f"of energy or power (the tests need at least {RELEVANCE_FROM}), although "
                f"{len(varied)} parameter(s) varied across the {len(inputs.ok)} finished "
                f"runs: {', '.join(varied)}.")
    across = f"across {which}" if varied else "across the finished runs"
    return (f"No parameter varied {across}, so none can be named as a driver of energy or "
            "power.")


def _sentence(text: str) -> str:
    """`text` as a sentence: capitalised, with its full stop."""
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:] + "."


def _diverged_later(inputs: ReportInputs) -> str:
    """" It diverged in its final run ...": where `final` passed the recommendation over,
    so the headline never stands alone recommending a run that did not survive."""
    rec = inputs.recommendation.get("run")
    gone = [g for g in (inputs.comparison or {}).get("passed_over") or [] if g.get("run") == rec]
    return (f" It diverged when trained for final_epochs ({gone[0]['reason']}) and was passed "
            "over: see the final runs below.") if rec and gone else ""


def final_comparison(inputs: ReportInputs) -> list:
    """The answer over seeds (final/comparison.json): the saving with its interval and the
    number of seeds, or that no saving could be shown; the objective's change; the noise
    floor, with a warning where the recommendation's tolerance is below it."""
    doc = inputs.comparison
    stale = inputs.stale_comparison
    if stale:
        run = stale.get("final_run")
        trained = f"run {run}'s configuration" if run else "each parameter's best value then"
        return [para(f"The final runs in final/ were trained for an earlier recommendation "
                     f"({trained}), not this one: the sweep grew or was "
                     "analysed again since. Move final/ aside and run ./greenscreen.sh final "
                     "to compare this recommendation with the baseline."),
                *noise_floor(inputs)]
    if not doc:
        return [para("No final comparison yet: ./greenscreen.sh final trains the "
                     "recommendation and the baseline over settings.final_seeds seeds each."),
                *noise_floor(inputs)]
    part = component_of(inputs.analysis)
    whole = f" (their total energy, not the {part.upper()}'s alone)" if part else ""
    text = f"Final runs against the baseline{whole}: {outcome_words(doc, inputs.objective)}."
    how = [para(method_in_short(inputs.objective.metric))] if any(  # where one is stated
        (doc.get(k) or {}).get("ci95") for k in ("energy_saving", "objective_change")) else []
    return [para(text, markup="b"), *passed_over(doc), *how, *noise_floor(inputs)]


def passed_over(doc: dict) -> list:
    """Where the recommendation diverged in its first final run and the rule's next pick
    stands in for it (final.py): what was passed over, why, and what is compared."""
    gone = doc.get("passed_over") or []
    if not gone:
        return []
    said = "; ".join(f"{g['configuration']} diverged in its first final run ({g['reason']}, "
                     f"{g['folder']}/)" for g in gone)
    run = doc.get("final_run")
    then = ("the same rule then picks the baseline's configuration itself: keep the baseline"
            if doc.get("final_is_baseline", run == BASELINE) else
            f"the final runs compare run {run}'s configuration, the one the same rule picks "
            "without it, with the baseline")
    if doc.get("final_diverged"):
        then += f" (it diverged too: {doc['final_diverged']}; no candidate is left to try)"
    return [para(f"Passed over: {said}. In its place {then}; the passed-over runs' energy is "
                 "counted in the totals.")]


def noise_floor(inputs: ReportInputs) -> list:
    """The seed-to-seed spread of the objective and the energy (the final seeds, the
    sweep's repeated configurations), and a warning where the recommendation's tolerance
    (settings.accuracy_floor) is below the objective's spread."""
    metric, unit, spreads, words = inputs.objective.metric, inputs.unit, [], []
    for side in SIDES:
        part = (inputs.comparison or {}).get(side) or {}
        value, energy = part.get("objective") or {}, part.get("energy_j") or {}
        if value.get("sd") is None:
            continue
        spreads.append(value["sd"])
        cv = (f" ({energy['sd'] / energy['mean'] * 100:.1f} % of its mean)"
              if energy.get("sd") is not None and energy.get("mean") else "")
        words.append(f"final {side} runs ({len(value['values'])} seeds): {metric} "
                     f"{number(value['sd'])}, energy "
                     + (unit.text(energy["sd"]) + cv if energy.get("sd") is not None
                        else "n/a"))
    repeated = inputs.repeat_spread()
    if repeated:
        spreads.append(repeated["objective_sd"])
        words.append(f"the sweep's {repeated['configurations']} repeated configuration(s) "
                     f"({repeated['runs']} runs): {metric} {number(repeated['objective_sd'])}, "
                     + energy_spread_words(repeated))
    if not words:
        return []
    story = [para("Seed-to-seed spread, the noise floor (sample SD): " + "; ".join(words)
                  + ".", "Italic")]
    rec = inputs.recommendation
    floor = rec.get("objective_floor", rec.get("accuracy_floor"))  # older analyses: the latter
    if floor is not None and floor < max(spreads):
        story.append(para(
            f"Warning: the recommendation's tolerance (settings.accuracy_floor {floor}) is "
            f"below the seed-to-seed spread of {metric} ({number(max(spreads))}): runs "
            "within the tolerance of the best cannot be told apart from noise, and which of "
            "them is recommended is partly chance. More seeds or repeats, or a wider "
            "tolerance, make it firmer.", markup="b"))
    return story


def energy_spread_words(repeated: dict) -> str:
    """The repeats' energy spread, over the runs whose energy was obtained alike (an
    estimated repeat is not compared with a measured one), saying so where that is fewer."""
    if repeated["energy_cv"] is None:
        return "energy n/a (no configuration has two repeats whose energy was obtained alike)"
    words = f"energy {repeated['energy_cv'] * 100:.1f} % of the mean"
    if repeated["energy_runs"] < repeated["runs"]:
        words += (f" (over {repeated['energy_configurations']} configuration(s), "
                  f"{repeated['energy_runs']} runs, whose repeats' energy was obtained alike)")
    return words


def rule_text(rec: dict, objective: Objective) -> str:
    """The recommendation's rule in words, with the floor's side for a minimised objective."""
    metric, floor = objective.metric, rec["objective_floor"]
    within = f"within {floor} of" if objective.maximise else f"at most {floor} above"
    direction = "maximised" if objective.maximise else "minimised"
    named = ("" if objective.name == "val_accuracy" else f" (settings.objective: "
             f"{objective.name}, {direction}; the floor is settings.accuracy_floor)")
    if rec.get("rule") == "values":
        return ("Rule (settings.recommend: values, the original pipeline's): each parameter "
                "takes, on its own, the value with the lowest mean energy among the values "
                f"whose mean {metric} is {within} the best value's{named}. "
                "The combination is judged only by the final run.")
    return ("Rule (settings.recommend: run): the finished run with the lowest energy "
            f"among those {within} the best {metric} ({number(rec['best_objective'])})"
            f"{named}.")


def baseline_parameters(inputs: ReportInputs) -> tuple[str, dict]:
    """The baseline's run and its parameters.yaml: the run the baseline shown is named
    after (with settings.repeats, its configuration's first finished repeat, another run
    where 000 failed), else the first of its repeats that recorded parameters; run 000's
    where none did (its parameters then n/a)."""
    base = inputs.baseline
    names = ([str(base["run"])] if base is not None else []) + inputs.baseline_runs
    for name in dict.fromkeys(names):
        found = inputs.parameters(name)
        if found:
            return name, found
    return names[0], {}


def recommendation(inputs: ReportInputs) -> list:
    rec, unit = inputs.recommendation, inputs.unit
    rule = rule_text(rec, inputs.objective)
    name, base = baseline_parameters(inputs)
    rows = [["parameter", "recommended", f"baseline ({name})"]]
    base = {k: "n/a" if METHOD_DIMENSIONS.get(k, base.get("method")) != base.get("method")
            else v for k, v in base.items()}  # another method's setting, as in the analysis
    rows += [[k, setting(v), setting(base.get(k))] for k, v in rec.get("parameters", {}).items()]
    story = section("Recommendation", para(rule))
    story.append(table(rows, [5 * cm, 5 * cm, 5 * cm]) if len(rows) > 1 else
                 para("No parameter varied across the finished runs."))
    if rec.get("rule") == "values":
        story += section("Per-parameter evidence", details.evidence(rec, unit, inputs.objective),
                         level="Heading4")
    return story + details.final_section(inputs)
