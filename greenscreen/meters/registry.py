"""Source names, construction, and what "auto" (or a list of names) measures."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..validation import did_you_mean, invalid
from .base import PowerSource, SourceHealth, SourceUnavailable

SOURCE_NAMES = ("auto", "nvidia-smi", "nvml", "rapl", "estimate")
GPU_SOURCE_NAMES = ("nvidia-smi", "nvml")
# The components each named source measures where it can (see base.COMPONENTS).
MEASURES = {"nvidia-smi": ("gpu",), "nvml": ("gpu",), "rapl": ("cpu", "dram"),
            "estimate": ("cpu",)}


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


def pick_gpu(interval: float = 0.1, gpus=None) -> tuple[PowerSource | None, dict[str, str]]:
    """Best GPU source: NVML counter, else nvidia-smi, else NVML power; None if neither runs.

    Returns the source and, for each GPU source passed over, the reason.
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
    return None, skipped


def pick_auto(interval: float = 0.1, gpus=None) -> tuple[PowerSource, dict[str, str]]:
    """The single best source: NVML counter, nvidia-smi, NVML power, RAPL, estimate.

    Returns the source and, for each source passed over, the reason. (`EnergyMeter`'s
    "auto" measures every component it can read instead: see `plan`.) Raises
    `SourceUnavailable` where none can run: no GPU or RAPL, and GREENSCREEN_CPU_TDP_W
    not valid for the estimate.
    """
    source, skipped = pick_gpu(interval, gpus)
    if source is not None:
        return source, skipped
    for name in ("rapl", "estimate"):
        source = make_source(name, interval, gpus)
        reason = source.unavailable_reason()
        if reason is None:
            return source, skipped
        skipped[name] = reason
    raise SourceUnavailable("no source can run: " + "; ".join(
        f"{n}: {r}" for n, r in skipped.items()))


@dataclass
class Plan:
    """What a meter will run: its sources, the sources passed over (source name -> why)
    and the components that cannot be measured (component -> why)."""

    sources: list[PowerSource]
    skipped: dict[str, str] = field(default_factory=dict)
    unmeasured: dict[str, str] = field(default_factory=dict)


def plan(request, interval: float = 0.1, gpus=None) -> Plan:
    """The sources to run for `EnergyMeter(source=request)`.

    - "auto": the GPUs (as `pick_gpu` chooses) and the CPU packages and DRAM (RAPL),
      each where it can be read; with none of them, the CPU-time estimate alone
      (`SourceUnavailable` where GREENSCREEN_CPU_TDP_W is not valid for it).
    - one name: that source; raises `SourceUnavailable` if it cannot run here.
    - a list of names or `PowerSource`s: those that can run; each one that cannot
      leaves its components unmeasured, with the reason. Raises only if none can run.
    - a `PowerSource`: that source, asked whether it can run as a name's source is (and
      as one in a list is); raises `SourceUnavailable` if it cannot run here.

    Example:

    >>> from greenscreen.meters.registry import plan
    >>> p = plan("auto")  # doctest: +SKIP
    >>> [s.name for s in p.sources], p.unmeasured  # doctest: +SKIP
    (['nvml', 'rapl'], {'dram': 'no dram zone under /sys/class/powercap (AMD ...)'})
    """
    if request == "auto":
        gpu, skipped = pick_gpu(interval, gpus)
        result = Plan([gpu] if gpu else [], skipped)
        if gpu is None:
            result.unmeasured["gpu"] = "; ".join(f"{n}: {r}" for n, r in skipped.items())
        _add(result, "rapl", make_source("rapl", interval, gpus))
        if not result.sources:  # the estimate, unless its wattage is not valid
            estimate = make_source("estimate", interval, gpus)
            reason = estimate.unavailable_reason()
            if reason is not None:
                skipped["estimate"] = reason
                raise SourceUnavailable("no source can run: " + "; ".join(
                    f"{n}: {r}" for n, r in result.skipped.items()))
            result.sources.append(estimate)
        return result
    single = isinstance(request, (str, PowerSource))
    result = Plan([])
    for item in [request] if single else list(request):
        # An instance, alone or in a list, is asked whether it can run as a name's source
        # is: alone, one that cannot raises; in a list, it leaves its components
        # unmeasured, with the reason.
        source = item if isinstance(item, PowerSource) else make_source(item, interval, gpus)
        if not _add(result, source.name, source) and single:
            what = repr(item) if isinstance(item, str) else f"{type(item).__name__} instance"
            raise SourceUnavailable(
                f"source={what} is unavailable: {result.skipped[source.name]}")
    if not result.sources:
        raise SourceUnavailable("no source can run: " + "; ".join(
            f"{n}: {r}" for n, r in result.skipped.items()))
    return result


def check_source(source) -> None:
    """Checks `EnergyMeter(source=...)`: "auto", one name, a `PowerSource`, or a list of
    names and `PowerSource`s (each source once, one source per component: one GPU source
    at most; "estimate" or an estimating `PowerSource` such as `CpuTimeEstimate()`
    alone). An instance counts as
    its built-in source's name (`RaplSource()` as "rapl"), as a GPU source where it
    measures "gpu", and the same object twice is refused.

    Raises:
        ValueError: "source=... is not valid; allowed: ..." (`validation.invalid`).

    Example:

    >>> check_source(["nvml", "rapl"])
    """
    allowed = (", ".join(repr(s) for s in SOURCE_NAMES) + ", a PowerSource instance, or a "
               "list of source names (e.g. ['nvml', 'rapl'])")
    if isinstance(source, str) and source in SOURCE_NAMES:
        return
    # A lone instance is checked as a list of one is: each rule below holds for it.
    items = [source] if isinstance(source, PowerSource) else source
    if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)) or not items:
        raise invalid("source", source, allowed + did_you_mean(source, SOURCE_NAMES))
    unknown = [s for s in items if not isinstance(s, PowerSource)
               and (not isinstance(s, str) or s not in SOURCE_NAMES[1:])]
    if unknown:
        raise invalid("source", source, allowed + " without 'auto'"
                      + did_you_mean(unknown[0], SOURCE_NAMES[1:]))
    kinds = [_kind(s) for s in items]  # the same object twice has the same kind too
    if len(set(kinds)) != len(kinds) or sum(_measures_gpu(s) for s in items) > 1:
        raise invalid("source", source, "a list naming each source once and at most one GPU "
                      "source ('nvidia-smi' or 'nvml'): both would count the GPUs twice")
    # Asked of a list only: a provenance may ask the source (nvidia-smi's names its field).
    estimates = [s for s in items if _estimates(s)] if len(items) > 1 else []
    shared = _measured_twice(items) if not estimates else None
    if shared:  # both would feed one series, labelled with the first one's provenance
        raise invalid("source", source, f"a list in which each component is measured by one "
                      f"source: {shared} would be counted twice")
    if estimates:
        what = ("'estimate'" if isinstance(estimates[0], str) else
                "an estimating PowerSource (provenance 'estimated:...')")
        raise invalid("source", source, f"{what} alone: an estimate is never added to a "
                      "measurement")


def _kind(item) -> "str | int":
    """What a list item measures by: its name, or a built-in source's name for an
    instance (two RaplSources read the same zones); another PowerSource is its own (its
    id: the same object twice is one kind twice)."""
    if not isinstance(item, PowerSource):
        return item
    return item.name if item.name in SOURCE_NAMES[1:] else id(item)


def _estimates(item) -> bool:
    """Whether a list item estimates: the name "estimate", or an instance whose provenance
    is "estimated:..." (`CpuTimeEstimate()`, or a user's estimating source)."""
    if not isinstance(item, PowerSource):
        return item == "estimate"
    return str(item.provenance).startswith("estimated:")


def _measured_twice(items) -> str | None:
    """The first component (cpu, dram, ...) two list items measure, in words, or None."""
    seen: dict[str, object] = {}
    for item in items:
        name = item if not isinstance(item, PowerSource) else item.name
        measures = MEASURES.get(name) if isinstance(name, str) and name in MEASURES else None
        for component in measures or getattr(item, "components", ()):
            if component in seen:
                return f"{component} (by {_said(seen[component])} and {_said(item)})"
            seen[component] = item
    return None


def _said(item) -> str:
    return repr(item) if isinstance(item, str) else f"{type(item).__name__}()"


def _measures_gpu(item) -> bool:
    """Whether a list item measures the GPUs: a GPU source's name, or an instance whose
    components (or whose class's, before it is probed) include "gpu"."""
    if not isinstance(item, PowerSource):
        return item in GPU_SOURCE_NAMES
    return item.name in GPU_SOURCE_NAMES or "gpu" in item.components


def _add(result: Plan, name: str, source: PowerSource) -> bool:
    """Adds `source` to the plan if it can run; else records why. Returns whether added."""
    reason = source.unavailable_reason()
    if reason is not None:
        result.skipped[name] = reason
        for component in MEASURES.get(name, source.components):
            result.unmeasured.setdefault(component, reason)
        return False
    result.sources.append(source)
    for component, why in getattr(source, "unreadable", {}).items():
        result.unmeasured.setdefault(component, why)
    return True


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
                     "provenance": source.provenance, "reason": reason,
                     "components": list(source.components) if reason is None else [],
                     "unmeasured": dict(getattr(source, "unreadable", {}))})
    return rows


def kept_plan(kept: "Plan | None", request, interval: float = 0.1, gpus=None) -> Plan:
    """The plan a meter's start runs: `kept`, its last successful start's, else `plan`'s.
    Planned once because each plan probes every source (an nvidia-smi run or two each, 2 s
    for a hung one) and a callback restarts its meter for every evaluate or predict. The
    sources the plan made begin each start with a new health; yours (instances given as
    `request`) keep theirs, as before: you may share them."""
    if kept is None:
        return plan(request, interval, gpus)
    given = request if isinstance(request, list) else [request]
    yours = {id(s) for s in given if isinstance(s, PowerSource)}
    for source in kept.sources:
        if id(source) not in yours:
            source.health = SourceHealth()
    return kept
