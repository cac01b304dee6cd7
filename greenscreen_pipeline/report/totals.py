"""Page 1's Totals table: runs, energy, its split by component, CO2, hardware, the training
loop and the energy figures' sources in plain words; and the sweep's dates."""

from __future__ import annotations

import math

import pandas as pd
from reportlab.lib.units import cm

from .. import collect, sweep_total
from ..provenance import field_of, parts, shares_gpu, sharing_unknown
from .inputs import ReportInputs
from .layout import WIDTH, number, table

PLAIN_SOURCES = {
    "measured:nvidia-smi": "measured: nvidia-smi power stream",
    "measured:nvml-power": "measured: NVML power samples",
    "measured:nvml-counter": "measured: the GPU's own energy counter (NVML)",
    "measured:rapl": "measured: the CPU's RAPL energy counters",
    "estimated:cpu-time": "estimated from CPU time and a nominal power: not a measurement",
    "attributed:sm-share": "attributed to each run by its share of the GPU's SM utilisation",
    "attributed:even-split": "attributed to each run as an even split of the GPU",
    "attributed:even-split-by-sweep": "attributed by the sweep: the GPU's energy, measured "
                                      "once, split evenly among the runs on it at each moment",
    "attributed:sharing-unknown": "GPU sharing unknown: the meter could not see the GPU's "
                                  "other processes, so the figure may include their energy",
    "attributed:cpu-time-share": "attributed to each run by its share of the node's busy "
                                 "CPU time",
    collect.SEED_SOURCE: "computed from one nvidia-smi sample per epoch (power × epoch time)",
}
FIELDS = {"power.draw.instant": "power.draw.instant: instantaneous",
          "power.draw": "power.draw: a one-second average on Ampere and newer GPUs "
                        "but GA100, a near-instant reading on older ones"}
STREAMS = ("measured:nvidia-smi", "measured:nvml-power")

def plain_source(source: str, rate_hz: float | None = None) -> str:
    """One run's source in words: each power source (" + "), its nvidia-smi field and its
    attribution; `rate_hz` the sampling rate of a power stream, where known."""
    words = []
    for base, extra in parts(source):
        name, field = field_of(base)
        text = PLAIN_SOURCES.get(name, name)
        if field in FIELDS:
            text += f" ({FIELDS[field]})"
        if name in STREAMS and rate_hz:
            text += f" at {number(rate_hz)} Hz"
        words.append(text + "".join(f" ({PLAIN_SOURCES.get(e, e)})" for e in extra))
    return " + ".join(words)


def provenance(inputs: ReportInputs) -> str:
    """The energy figures' sources in plain words, with the sampling rate where recorded:
    the sweep's runs', then the final runs' that the sweep's runs did not use."""
    # "none": runs that never measured, listed with the runs not finished or not ranked
    sweep = [s for s in inputs.analysis.get("sources", []) if s != "none"]
    final = sorted({s for _, s in inputs.final_figures if s and s != "none"} - set(sweep))
    words = [_with_rate(inputs, s) for s in sweep] + [
        f"the final runs: {_with_rate(inputs, s)}" for s in final]
    return "; ".join(words) or "none recorded"


def _with_rate(inputs: ReportInputs, source: str) -> str:
    """`plain_source`, with the stream's sampling rate where its runs agree on one."""
    rates = {s.sample_interval_s for s in inputs.summaries
             if s.source == source and s.sample_interval_s}
    return plain_source(source, 1 / rates.pop() if len(rates) == 1 else None)


def final_books(inputs: ReportInputs) -> tuple[float, float, float]:
    """The final runs' energy as (measured, estimated, of no recorded provenance) joules,
    each run by its source (`sweep_total.kind_of`, as analysis's energy by state): never
    one word for two."""
    kinds = [(e, sweep_total.kind_of(s)) for e, s in inputs.final_figures]
    return tuple(math.fsum(e for e, k in kinds if k == kind)
                 for kind in ("measured", "estimated", sweep_total.UNRECORDED))


def dates(inputs: ReportInputs) -> str:
    stamps = [t for s in inputs.summaries for t in (s.t_start, s.t_end) if not math.isnan(t)]
    if not stamps:
        return "dates not recorded"
    return (pd.to_datetime(min(stamps), unit="s").strftime("%Y-%m-%d %H:%M") + " to " +
            pd.to_datetime(max(stamps), unit="s").strftime("%Y-%m-%d %H:%M UTC"))


def totals(inputs: ReportInputs):
    """Page 1's Totals table (`rows`)."""
    return table(rows(inputs), [3 * cm, WIDTH - 3 * cm], header=False)


def rows(inputs: ReportInputs) -> list[list[str]]:
    """The Totals table's rows: runs, energy (its parts and provenance), by component,
    CO2, hardware, the training loop where one is yours, and how the figures were got."""
    a, runs = inputs.analysis, inputs.runs
    intensity, chosen_by = inputs.carbon()
    devices = sorted({d.name for s in inputs.summaries for d in s.devices
                      if d.component == "gpu"} - {""})
    others = sorted({d.name for s in inputs.summaries for d in s.devices
                     if d.component != "gpu"} - {""})
    sources = a.get("sources", []) + [s for _, s in inputs.final_figures]
    shared = a.get("shared_devices") or any(shares_gpu(s) for s in sources)
    unknown = a.get("sharing_unknown") or any(sharing_unknown(s) for s in sources)
    energy, joules, lead = energy_row(inputs)
    return [["runs", runs_text(a, len(inputs.unranked()))],
            ["energy", energy],
            ["by component", by_component(inputs)],
            ["CO2", f"{number(intensity.grams(joules))} g at "
                    f"{number(intensity.g_per_kwh)} g/kWh"
                    + (f", of energy {lead}" if "estimated" in lead else "")
                    + f" ({chosen_by}; {intensity.source})"],
            ["hardware", ", ".join(devices + others) or "not recorded"],
            *loop_row(runs),
            ["energy figures", provenance(inputs) + (
                "; runs shared GPUs, so each run's figure is its attributed share of the GPU"
                if shared else "") + (
                "; GPU sharing unknown for some runs: their GPU figure may include other "
                "processes' energy" if unknown else "")]]


def energy_row(inputs: ReportInputs) -> tuple[str, float, str]:
    """The energy row's words, the joules in all (the sweep's and every final run's) and
    their provenance in the total's words: "measured + estimated" where an estimate is
    in either part, so a final run's estimate is never added into a measurement unsaid."""
    unit, final = inputs.unit, inputs.final_energy_j  # every seed of both sides
    books = sweep_energy(inputs)
    sweep = books["energy_j"]
    # each part measured or estimated in a word: the sources are the last row's
    how = sweep_total.words(books, unit.text, sweep_total.kind_of) + (
        f"; the runs' own figures add up to {unit.text(books['runs_own_j'])}"
        if books.get("sessions") else "")
    measured, estimated, unrecorded = final_books(inputs)
    lead = sweep_total.words_of(books.get("measured_j", 0.0) + measured,
                                books.get("estimated_j", 0.0) + estimated,
                                books.get("computed_j", 0.0),
                                books.get("unrecorded_j", 0.0) + unrecorded)
    said = sweep_total.words_of(measured, estimated, unrecorded_j=unrecorded)
    spent = f"final runs {unit.text(final)} ({said})" if final else "final runs not run yet"
    return (f"{unit.text(sweep + final)} in all" + (f" ({lead})" if final else "")
            + f": sweep {unit.text(sweep)} ({how}), {spent}", sweep + final, lead)


def runs_text(a: dict, unranked: int) -> str:
    """The runs row: finished is by status, ranked or not (`unranked`: done, but with no
    figure to rank, listed with their reasons after the recommendation)."""
    finished = a["done"] + unranked
    unfinished = a["runs"] - finished
    unstarted = (a.get("planned") or 0) - a["runs"]  # a stopped sweep, or one still going
    return (f"{finished} finished of {a['runs']}"
            + (f"; {unranked} of them not ranked (listed, with why, further on)"
               if unranked else "")
            + (f"; {unfinished} did not finish" if unfinished else "")
            + (f"; {unstarted} of the {a['planned']} planned not started"
               if unstarted > 0 else ""))


def sweep_energy(inputs: ReportInputs) -> dict:
    """The sweep's total as analysis.json records it (`sweep_total`); worked out from the
    sweep folder where the analysis was written before it recorded the total's parts."""
    books = inputs.analysis.get("sweep_energy") or {}
    return (books if books.get("parts") is not None else
            sweep_total.of(inputs.path).to_json())


def loop_row(runs: pd.DataFrame) -> list[list[str]]:
    """The training loop that ran, where it was your own (settings.train); else none."""
    loops = sorted({str(v) for v in runs.get("train", pd.Series(dtype=object)).dropna() if v})
    return [["training loop", f"your own, {', '.join(loops)} (settings.train): the pipeline's "
             "built-in data, model and fit did not run; a built-in parameter your loop did "
             "not read is n/a"]] if loops else []


def by_component(inputs: ReportInputs) -> str:
    """The runs' energy split into GPU / CPU / DRAM, each with whether it was measured
    (its provenance), or why not; folders written before the split say so."""
    runs, unit, words = inputs.runs, inputs.unit, []
    for c in collect.COMPONENTS:
        column = f"energy_{c}_j"
        values = pd.to_numeric(runs[column], errors="coerce") if column in runs else None
        sources = sorted({s.components[c].source for s in inputs.summaries
                          if c in s.components})
        reasons = sorted({s.unmeasured[c] for s in inputs.summaries if c in s.unmeasured})
        if values is not None and values.notna().any():
            measured = int(values.notna().sum())
            words.append(f"{c.upper()} {unit.text(float(values.sum()))} (measured in "
                         f"{measured} of {len(runs)} runs: "
                         f"{'; '.join(plain_source(x) for x in sources) or 'measured'})")
        elif sources:
            words.append(f"{c.upper()} not measured ({'; '.join(map(plain_source, sources))})")
        else:
            words.append(f"{c.upper()} not measured" + (f": {reasons[0]}" if reasons else ""))
    if not any(s.components for s in inputs.summaries):
        return "not recorded (run folders written before the per-component split)"
    return "; ".join(words)
