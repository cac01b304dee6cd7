"""Reading a run's energy provenance: the `source` string its SMICallback wrote.

A source is one provenance per power source joined by " + " (the GPUs, then RAPL), each
a base ("measured:nvml-counter", "measured:nvidia-smi(power.draw.instant)") with its
attribution after ";" ("measured:rapl;attributed:cpu-time-share"). Analysis and report
ask these questions here, in one place.
"""

from __future__ import annotations

import math

from greenscreen.provenance import is_estimated

# How a GPU's energy was shared out among the runs on it (the CPU's cpu-time-share is not
# sharing a GPU: every RAPL run under the default attribution carries it).
GPU_ATTRIBUTIONS = ("attributed:sm-share", "attributed:even-split",
                    "attributed:even-split-by-sweep")
SHARING_UNKNOWN = "attributed:sharing-unknown"
BY_SWEEP = "attributed:even-split-by-sweep"


def parts(source: str) -> list[tuple[str, list[str]]]:
    """Each power source's (base, [its attributions]), in the order written."""
    out = []
    for piece in str(source).split(" + "):
        base, *extra = [p.strip() for p in piece.split(";")]
        out.append((base, [e for e in extra if e]))
    return out


def estimated(sources) -> bool:
    """Whether an energy figure is, in part, an estimate (an "estimated:..." provenance,
    e.g. from CPU time) rather than a measurement: then no sentence calls it measured.
    `sources`: one provenance, or several."""
    sources = list(sources) if isinstance(sources, (list, tuple, set)) else [str(sources)]
    return any(is_estimated(s) for s in sources)


def field_of(base: str) -> tuple[str, str | None]:
    """("measured:nvidia-smi", "power.draw.instant") from its bracketed form; bare
    "measured:nvidia-smi" read power.draw."""
    if base.startswith("measured:") and base.endswith(")") and "(" in base:
        name, _, field = base[:-1].partition("(")
        return name, field
    return base, ("power.draw" if base == "measured:nvidia-smi" else None)


def attributions(source: str) -> set[str]:
    return {a for _, extra in parts(source) for a in extra}


def shares_gpu(source: str) -> bool:
    """Whether this run's GPU figure is its attributed share of a GPU others used too."""
    return bool(attributions(source) & set(GPU_ATTRIBUTIONS))


def sharing_unknown(source: str) -> bool:
    """Whether the meter could not see who else computed on the GPU (a container)."""
    return SHARING_UNKNOWN in attributions(source)


def by_sweep(source: str, attributed: str = BY_SWEEP) -> str:
    """The GPU part of `source` re-attributed by the sweep: "sharing-unknown" replaced
    (or the attribution added) on the GPU source; the others kept as written."""
    out = []
    for base, extra in parts(source):
        name, _ = field_of(base)
        if name in ("measured:nvidia-smi", "measured:nvml-counter", "measured:nvml-power"):
            extra = [e for e in extra if e != SHARING_UNKNOWN and e not in GPU_ATTRIBUTIONS]
            extra.append(attributed)
        out.append(";".join([base, *extra]))
    return " + ".join(out)


def energy_kind(source) -> str:
    """How a run's energy was obtained, without attributions: each power source's base
    ("measured:nvidia-smi + measured:rapl", "estimated:cpu-time"); "none" if not at all."""
    if not isinstance(source, str) or source in ("", "none"):
        return "none"
    return " + ".join(field_of(base)[0] for base, _ in parts(source))


def kinds_in_words(sources) -> str | None:
    """Where runs' energy (their `source`s) was obtained in more than one way, how:
    "2 ways (estimated:cpu-time: 3 runs; measured:nvidia-smi: 3 runs)"; None where in one."""
    counts: dict[str, int] = {}
    for source in sources:
        kind = energy_kind(source)
        counts[kind] = counts.get(kind, 0) + 1
    if len(counts) < 2:
        return None
    return f"{len(counts)} ways (" + "; ".join(
        f"{kind}: {n} run{'s' if n > 1 else ''}" for kind, n in sorted(counts.items())) + ")"


def why_not_compared(kinds) -> str:
    """Why figures of these energy kinds (`energy_kind`, more than one) are not compared."""
    if any(estimated(k) for k in kinds):
        return "an estimate is never compared with a measurement"
    if "none" in kinds:
        return "a figure whose provenance was not recorded is never compared with another"
    return "one meter's figure is never compared with another's"


def kind_rank(kind: str) -> int:
    """Where an energy kind (`energy_kind`) stands in `chosen_kind`'s rule: 0 measured in
    every part; 1 obtained without an estimate but not by a meter of its own (the seed
    format's "computed:" figure from power samples, or a provenance not recorded:
    "none"); 2 an estimate, in part or in whole ("estimated:")."""
    if estimated(kind):
        return 2
    return 0 if all(base.startswith("measured:") for base, _ in parts(kind)) else 1


def chosen_kind(kinds) -> str:
    """The one energy kind whose runs a figure or decision over several runs reads, from
    each run's kind (`energy_kind`) in run order. One rule for every such reader (a
    configuration's repeats, what the sampler is told of them, the "what drives energy"
    tests, Optuna's importance; halving's rungs keep a rule of their own,
    `search.halving.comparable`): measured before anything else
    (`kind_rank`: an estimate last), then the kind most runs share, then the first
    run's. Measured first, not most runs first: an estimate is never what stands for a
    measurement the sweep has, and a test of estimated energy (CPU time times a nominal
    power) says what drives CPU time, not energy, however many runs it holds."""
    counts: dict[str, int] = {}
    for kind in kinds:  # in the runs' order: ties go to the first
        counts[kind] = counts.get(kind, 0) + 1
    return min(counts, key=lambda k: (kind_rank(k), -counts[k]))


NOTHING_SEEN = "the meter saw nothing"


def usable_energy(energy_j) -> bool:
    """Whether a run's energy figure can rank or be compared: a finite number above 0 J.
    No training takes 0 J: 0 J is a meter that saw nothing (a source that never moved),
    and ranked as a figure it would be the cheapest run and "save 100 %"."""
    try:
        return math.isfinite(energy_j) and energy_j > 0
    except TypeError:
        return False
