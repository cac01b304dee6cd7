"""SMICallback's `summary.json`: energy over every attempt, split by component, with its
provenance, what it covers, and the job it ran in."""

from __future__ import annotations

import importlib
import platform
import time

import keras

from .._version import __version__
from ..meters.base import COMPONENTS
from ..provenance import is_estimated, is_measured
from ._runlog import read_summary, totals
from ._windows import component_err_key, component_key, joined_source

NAN = float("nan")


# How a fit's attempt ended, in summary.json: "running (or killed)" is written while it
# trains, and stays where its process was killed before anything could close it.
ENDED = ("completed", "interrupted", "running (or killed)")


def attempt_record(window, measured: bool, first_epoch: int | None, epochs: int,
                   ended: str, source: str) -> dict:
    """This fit's entry in `attempts`: its window, its energy and each component's, and
    its provenance (`source`), so that a total over attempts names every one's. `ended`:
    one of `ENDED` (interrupted: an exception ended the fit, and `close()` or the
    callback's next call closed it)."""
    return {
        "source": source,
        "t_start": window.t_start if window else NAN,
        "t_end": window.t_end if measured else NAN,
        "duration_s": window.duration_s if measured else NAN,
        "energy_j": window.energy_j if measured else NAN,
        "components": {c: cw.energy_j for c, cw in window.components.items()}
        if measured else {},
        "energy_err_j": window.energy_err_j if measured else NAN,
        "components_err_j": {c: cw.energy_err_j for c, cw in window.components.items()}
        if measured else {},
        "component_sources": {c: cw.source for c, cw in window.components.items()}
        if measured else {},
        "first_epoch": first_epoch, "epochs": epochs,
        "ended": ended,
        # The GPUs this attempt measured: a resumed run may train on others (a sweep run
        # again with another --gpus), and a sweep's total must not judge every attempt by
        # the last one's devices.
        "gpus": sorted({d.uuid for d in window.devices if d.component == "gpu" and d.uuid})
        if measured else [],
    }


def stop_record(model, params: dict, first_epoch: int | None, others: list) -> dict:
    """How a fit that ended normally ended: the epochs it planned (`epochs_planned`),
    whether a callback stopped it early (`stopped_early`: Keras's `stop_training`), and
    which (`stopped_by`: a callback's own `stop_reason`, as EnergyBudget's, else the
    class of one with a `stopped_epoch`, as EarlyStopping's). "completed" alone read
    the same for a fit an EnergyBudget stopped after 1 of 30 epochs and a 1-epoch fit."""
    epochs = (params or {}).get("epochs")
    planned = epochs - (first_epoch or 0) if isinstance(epochs, int) else None
    stopped = bool(getattr(model, "stop_training", False))
    by = [str(getattr(c, "stop_reason", None) or
              f"{type(c).__name__} at epoch {c.stopped_epoch + 1}")
          for c in others if getattr(c, "stop_reason", None)
          or (isinstance(getattr(c, "stopped_epoch", None), int) and c.stopped_epoch > 0)]
    return {"epochs_planned": planned, "stopped_early": stopped,
            "stopped_by": by if stopped else []}


def components_of(window, meter, measured: bool) -> tuple[dict, dict]:
    """(component -> provenance, component -> why it could not be measured)."""
    if measured:
        return {c: cw.source for c, cw in window.components.items()}, dict(window.unmeasured)
    if meter is not None:
        return meter.components, dict(meter.unmeasured)
    return {}, {}


def coverage(earlier: list[dict], current: dict) -> tuple[list[str], dict[str, str]]:
    """What `energy_j` adds up over every attempt (`covers`: each component some attempt
    measured), and those of them an attempt did not measure (`covers_partly`: component
    -> which attempts did; their totals over attempts are unknown, NaN). `current`: this
    attempt's component -> provenance. A resumed fit on a node without RAPL, after an
    attempt with it, still says that `energy_j` holds that attempt's CPU and DRAM."""
    measured = [set(a.get("components") or {}) for a in earlier] + [set(current)]
    covers = [c for c in COMPONENTS if any(c in m for m in measured)]
    partly = {c: _partly(c, measured, earlier, current)
              for c in covers if not all(c in m for m in measured)}
    return covers, partly


def _partly(component: str, measured: list[set], earlier: list[dict], current: dict) -> str:
    """Which attempts recorded `component`, and how (an estimate is never called
    measured): "recorded in attempt(s) 1 of 2 (estimated:cpu-time): ..."."""
    # Each attempt's own record of this component: an older attempt's whole `source`
    # would name the GPU's "measured" beside a CPU estimate
    sources = [(a.get("component_sources") or {}).get(component) for a in earlier] + [
        current.get(component)]
    which = [i for i, m in enumerate(measured) if component in m]
    how = sorted({str(sources[i]) for i in which if sources[i]})
    return (f"recorded in attempt(s) {', '.join(str(i + 1) for i in which)} of "
            f"{len(measured)}" + (f" ({'; '.join(how)})" if how else "")
            + ": its total over the attempts is unknown")


def _sources(earlier: list[dict], current: dict, covers: list[str]) -> dict[str, str]:
    """Each covered component's provenance over every attempt whose figure its total adds
    up (their per-component record, or their whole source where older; then this
    attempt's): an earlier attempt's estimate stays named beside a resumed measurement."""
    out = dict(current)
    for c in covers:
        parts = [(a.get("component_sources") or {}).get(c, a.get("source"))
                 for a in earlier if c in (a.get("components") or {})]
        out[c] = joined_source(parts + ([current[c]] if c in current else []))
    return out


def document(*, window, meter, earlier: list[dict], attempt: dict | None, interval: float,
             intensity, epochs: int, inference: dict, reason: str | None,
             job: dict) -> dict:
    """The whole summary: `energy_j` is the sum of the components in `covers`, over
    every attempt (`covers_partly` names those an attempt did not measure);
    `energy_<component>_j` each measured component's share of it. `source` names every
    attempt's provenance (joined by " + " where they differ, e.g. "estimated:cpu-time +
    measured:nvidia-smi"), and `energy_estimated` says whether `energy_j` is, in whole
    or in part, an estimate. `attempt` None: no fit, only evaluate or predict calls
    (their figures are in `inference`): no attempt, and no training energy (NaN)."""
    measured = window is not None and window.closed
    attempts = earlier + ([attempt] if attempt is not None else [])
    source = joined_source(a.get("source") for a in attempts) if attempts else (
        meter.source if meter else "none")
    current, unmeasured = components_of(window, meter, measured)
    covers, partly = coverage(earlier, current)
    sources = _sources(earlier, current, covers)
    # No fit: no training energy or time (NaN, null in the file), not 0 J
    total = totals(attempts or [{"energy_j": NAN, "duration_s": NAN}], covers)
    per_component = total.pop("components")
    per_component_err = total.pop("components_err_j")
    return {
        "greenscreen_version": __version__,
        "keras_version": keras.__version__,
        **_backend(),
        "host": platform.node(),
        "source": source,
        "energy_estimated": is_estimated(source),
        "skipped_sources": meter.skipped if meter else {},
        "sample_interval_s": interval,  # the report says "a stream at 10 Hz"
        "t_start": attempts[0]["t_start"] if attempts else NAN,
        "t_end": attempt["t_end"] if attempt is not None else NAN,
        **total,  # duration_s, energy_j, energy_kwh, power_avg_w: every attempt
        **{component_key(c): per_component.get(c, NAN) for c in covers
           if is_measured(sources[c])},
        # energy_err_j (in **total) and these: 95 % sampling and integration intervals
        **{component_err_key(c): per_component_err.get(c, NAN) for c in covers
           if is_measured(sources[c])},
        "energy_err_reason": _err_reason(window, measured),
        "covers": covers,  # what energy_j, co2_g (and a budget or forecast) add up
        "covers_partly": partly,
        "components": {c: {"energy_j": per_component.get(c, NAN), "source": sources[c],
                           "energy_device_j": _device_energy(window, c, measured),
                           "energy_err_j": per_component_err.get(c, NAN),
                           **_accuracy(window, c, measured)}
                       for c in covers},
        "unmeasured": unmeasured,
        "epochs": epochs,
        "power_peak_w": window.power_peak_w if measured else NAN,
        "coverage": window.coverage if measured else 0.0,
        "devices": [{"index": d.index, "uuid": d.uuid, "name": d.name,
                     "component": d.component, "energy_j": d.energy_j}
                    for d in (window.devices if measured else [])],
        "co2_g": intensity.grams(total["energy_j"]),
        "carbon": {**intensity.as_dict(), "covers": covers},
        "sampler": meter.health if meter else {"faults": 0, "reason": reason},
        "faults": (meter.health["faults"] if meter else 0),
        "reason": (window.reason if measured else None) or reason,
        "inference": inference,
        "attempts": attempts,
        "job": job,
        "written_at": time.time(),
    }


def _device_energy(window, component: str, measured: bool) -> float:
    """The whole devices' joules of this attempt, before attribution."""
    cw = window.components.get(component) if measured else None
    return cw.device_energy_j if cw is not None else NAN


def _err_reason(window, measured: bool) -> str | None:
    """Why this attempt's `energy_err_j` is NaN (an estimate, nothing measured), or None."""
    return getattr(window, "energy_err_reason", None) if measured else "not measured yet"


def _accuracy(window, component: str, measured: bool) -> dict:
    """The sensor's own accuracy (stated apart from the interval) and why no interval."""
    cw = window.components.get(component) if measured else None
    if cw is None:
        return {"sensor_accuracy": "unknown", "err_reason": None}
    return {"sensor_accuracy": cw.sensor_accuracy, "err_reason": cw.err_reason}


def _backend() -> dict:
    """The Keras backend this fit ran on, and its version."""
    name = keras.backend.backend()
    return {"keras_backend": name,
            "backend_version": str(getattr(importlib.import_module(name), "__version__",
                                           "unknown"))}


def fits_summary(log_dir) -> dict | None:
    """`log_dir`'s summary.json where a callback wrote it (it lists attempts: a fit's,
    or none where only evaluate or predict ran), else None: an `evaluate` or `predict`
    with a callback of its own adds its energy to that file's `inference` instead of
    replacing the fit's figures (`with_inference`)."""
    try:
        summary = read_summary(log_dir)
    except RuntimeError:
        return None
    return summary if summary and isinstance(summary.get("attempts"), list) else None


def with_inference(summary: dict, phase: str, call: dict) -> dict:
    """`summary` (a fit's) with one evaluate or predict call's figures (`call`: calls,
    energy_j, duration_s, batches, source) added to its `inference[phase]`
    (`add_inference`)."""
    before = summary.get("inference") or {}
    merged = add_inference(before.get(phase) or {}, call)
    return {**summary, "inference": {**before, phase: merged}, "written_at": time.time()}


MIXED = "measured and estimated calls: an estimate is never added to a measurement"


def add_inference(stored: dict, call: dict) -> dict:
    """One phase's figures (calls, energy_j, duration_s, batches, source) with another
    call's or attempt's added: the numbers summed (a figure stored as null, NaN: nothing
    measured, stays unknown); the sources joined; where one side's energy is an estimate
    and the other's a measurement, `energy_j` unknown, with `energy_reason` saying why
    (an evaluate of another callback's source was summed into the fit's unsaid)."""
    def number(value) -> float:
        return value if isinstance(value, (int, float)) else NAN

    out = {key: number(stored.get(key, 0)) + number(call.get(key, 0))
           for key in {**stored, **call} if key not in ("source", "energy_reason")}
    sources = [s for s in (stored.get("source"), call.get("source")) if s not in (None, "none")]
    if len(sources) == 2 and is_estimated(sources[0]) != is_estimated(sources[1]):
        out["energy_j"], out["energy_reason"] = NAN, MIXED
    reason = stored.get("energy_reason") or call.get("energy_reason") or out.get(
        "energy_reason")
    out["source"] = joined_source(sources) if sources else stored.get("source")
    return {**out, "energy_reason": reason} if reason else out
