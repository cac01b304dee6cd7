"""Small helpers of `EnergyMeter`: ordering, de-duplication, argument shapes, NaN-aware sums."""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..validation import invalid
from .base import COMPONENTS, NAN


def component_rank(component: str) -> int:
    """A component's place in COMPONENTS' order (gpu, cpu, dram; others after)."""
    return COMPONENTS.index(component) if component in COMPONENTS else len(COMPONENTS)


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def is_gpu_list(gpus) -> bool:
    """Whether `gpus` lists GPU indices or UUIDs (a string such as "0,1" does not, nor an
    empty name, nor a generator or other one-pass iterator: checking it would use it up,
    and the source would then query no GPU)."""
    if isinstance(gpus, (str, bytes)) or not isinstance(gpus, Iterable) or iter(gpus) is gpus:
        return False
    return all(isinstance(g, (int, str)) and not isinstance(g, bool)
               and not (isinstance(g, int) and g < 0)
               and not (isinstance(g, str) and not g.strip()) for g in gpus)


def check_gpus(gpus) -> None:
    """The `gpus` argument of a meter or a GPU source, checked at construction: iterated,
    a string such as "10" would name GPUs 1 and 0."""
    if gpus is not None and not is_gpu_list(gpus):
        raise invalid("gpus", gpus, "None or a list of GPU indices (integers >= 0) or UUIDs")


def sum_or_nan(values: list[float]) -> float:
    """The sum; NaN where any value is (an unknown part makes the whole unknown)."""
    return NAN if any(math.isnan(v) for v in values) else float(sum(values))


def mean_of_finite(values: list[float]) -> float:
    """The mean of the values that are not NaN; NaN where none is."""
    finite = [v for v in values if not math.isnan(v)]
    return float(sum(finite) / len(finite)) if finite else NAN
