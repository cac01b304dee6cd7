"""Reading an energy figure's provenance: the one rule for "estimated" and "measured".

A provenance is one part per power source joined by " + " (the GPUs, then RAPL), each a
base with its attribution after ";": "measured:nvml-counter + measured:rapl;attributed:
cpu-time-share". A figure is an estimate, in whole or in part, when any part's base is
"estimated:..."; it is a measurement only when it is one in every part. The callbacks
label their figures with these rules and the pipeline reads run folders with them, so an
estimate is never called, or counted as, a measurement in one place and not another.

Example:

>>> from greenscreen.provenance import is_estimated, is_measured
>>> is_measured("measured:nvidia-smi + measured:rapl;attributed:cpu-time-share")
True
>>> is_estimated("measured:nvidia-smi + estimated:cpu-time")
True
>>> is_measured("measured:nvidia-smi + estimated:cpu-time")
False
"""

from __future__ import annotations


def parts(source) -> list[str]:
    """Each power source's provenance in `source`, as written: one per source, joined by
    " + " ("measured:nvml-counter + measured:rapl;attributed:cpu-time-share")."""
    return [p.strip() for p in str(source or "").split(" + ") if p.strip()]


def base_of(part: str) -> str:
    """A part's base, without its attribution ("measured:rapl" of
    "measured:rapl;attributed:cpu-time-share")."""
    return part.split(";")[0].strip()


def bases(source) -> tuple[str, ...]:
    """Who measured or estimated a figure, without the attribution tags, in one order:
    "measured:nvml-counter;attributed:sm-share + measured:rapl" -> ("measured:nvml-counter",
    "measured:rapl"); () for no provenance. Two figures of equal bases are of one kind."""
    return tuple(sorted(base_of(p) for p in parts(source)))


def is_estimated(source) -> bool:
    """Whether a figure of this provenance is, in whole or in part, an estimate: any of
    its parts "estimated:..." (e.g. "measured:nvidia-smi + estimated:cpu-time")."""
    return any(base_of(p).startswith("estimated:") for p in parts(source))


def is_measured(source) -> bool:
    """Whether a figure of this provenance is a measurement in every part: each part's
    base "measured:..." ("measured:rapl + estimated:cpu-time", a CPU measured in one
    attempt and estimated in another, is not; nor is a part of unknown provenance)."""
    pieces = parts(source)  # every part measured: "measured:rapl + unknown" is not
    return bool(pieces) and all(base_of(p).startswith("measured") for p in pieces)
