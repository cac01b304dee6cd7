"""Source names, construction, and the "auto" choice."""

from __future__ import annotations

from ..validation import invalid
from .base import PowerSource

SOURCE_NAMES = ("auto", "nvidia-smi", "nvml", "rapl", "estimate")


def make_source(name: str, interval: float = 0.1, gpus=None) -> PowerSource:
    """Builds the named source (without starting it)."""
    if name == "nvidia-smi":
        from .nvidia_smi import NvidiaSmiSource

        return NvidiaSmiSource(interval=interval, gpus=gpus)
    if name == "nvml":
        from .nvml import NvmlSource

        return NvmlSource(interval=interval, gpus=gpus)
    if name == "rapl":
        from .rapl import RaplSource

        return RaplSource(interval=interval)
    if name == "estimate":
        from .estimate import CpuTimeEstimate

        return CpuTimeEstimate(interval=interval)
    raise invalid("source", name, ", ".join(map(repr, SOURCE_NAMES[1:])))


def pick_auto(interval: float = 0.1, gpus=None) -> tuple[PowerSource, dict[str, str]]:
    """Best available source: NVML counter, nvidia-smi, NVML power, RAPL, estimate.

    Returns the source and, for each source passed over, the reason.
    """
    skipped: dict[str, str] = {}
    nvml = make_source("nvml", interval, gpus)
    nvml_reason = nvml.unavailable_reason()
    if nvml_reason is None and nvml.has_counter:
        return nvml, skipped
    skipped["nvml"] = nvml_reason or "no total-energy counter on these GPUs (pre-Volta)"
    smi = make_source("nvidia-smi", interval, gpus)
    reason = smi.unavailable_reason()
    if reason is None:
        return smi, skipped
    skipped["nvidia-smi"] = reason
    if nvml_reason is None:
        return nvml, skipped
    for name in ("rapl", "estimate"):
        source = make_source(name, interval, gpus)
        reason = source.unavailable_reason()
        if reason is None:
            return source, skipped
        skipped[name] = reason
    raise AssertionError("the CPU-time estimate is always available")


def available(gpus=None) -> list[dict]:
    """Which power sources can run here, and why not where they cannot.

    Example:

    >>> from greenscreen.meters import available
    >>> for row in available():
    ...     print(row["source"], row["available"], row["reason"])  # doctest: +SKIP
    """
    rows = []
    for name in SOURCE_NAMES[1:]:
        source = make_source(name, gpus=gpus)
        reason = source.unavailable_reason()
        rows.append({"source": name, "available": reason is None,
                     "provenance": source.provenance, "reason": reason})
    return rows
