"""SMICallback's window stand-in and the fields it logs per epoch."""

from __future__ import annotations

import math
import time

from ..meters.base import COMPONENTS, NAN
from ..provenance import is_estimated
from ..provenance import parts as provenance_parts


class BlindWindow:
    """Stands in for a window when no meter could start: every figure is NaN."""

    def __init__(self, name: str) -> None:
        self.name, self.t_start, self.t_end = name, time.time(), NAN
        self.energy_j = self.power_avg_w = self.power_peak_w = self.energy_err_j = NAN
        self.energy_err_reason = "no meter"
        self.temp_c = self.util_pct = NAN
        self.coverage, self.source, self.devices, self.reason = 0.0, "none", [], None
        self.shared_with = None
        self.components, self.unmeasured, self.covers = {}, {}, []

    @property
    def closed(self) -> bool:
        return not math.isnan(self.t_end)

    @property
    def duration_s(self) -> float:
        return self.t_end - self.t_start

    def close(self):
        if not self.closed:
            self.t_end = time.time()
        return self


def component_key(component: str) -> str:
    """The logs key of one component's energy: "energy_gpu_j", "energy_cpu_j", ..."""
    return f"energy_{component}_j"


def component_err_key(component: str) -> str:
    """The logs key of one component's interval: "energy_gpu_err_j", ..."""
    return f"energy_{component}_err_j"


COMPONENT_KEYS = tuple(component_key(c) for c in COMPONENTS)
COMPONENT_ERR_KEYS = tuple(component_err_key(c) for c in COMPONENTS)


def log_fields(window) -> dict:
    """The per-epoch figures SMICallback puts into Keras's `logs`: the total and, for
    each measured component (never an estimate), its energy; each with `_err_j`, the
    half-width of its 95 % sampling and integration interval; `energy_estimated`, 1 where
    the total is, in whole or in part, an estimate."""
    fields = {
        "energy_j": window.energy_j,
        "energy_err_j": window.energy_err_j,
        "power_w": window.power_avg_w,
        "power_peak_w": window.power_peak_w,
        "gpu_temp_c": window.temp_c,
        "gpu_util_pct": window.util_pct,
        "epoch_s": window.duration_s,
        # A number, so that CSVLogger, TensorBoard and MLflow keep it beside energy_j.
        "energy_estimated": estimated_flag(window.source),
    }
    for c, cw in window.components.items():
        if cw.measured:
            fields.update({component_key(c): cw.energy_j, component_err_key(c): cw.energy_err_j})
    return fields


def joined_source(sources) -> str:
    """One provenance for a figure that adds up figures of these provenances (attempts
    of a resumed fit): each part once, in order, joined by " + "; "none" (nothing
    measured) left out, and "none" where nothing is left."""
    parts = dict.fromkeys(p for s in sources for p in provenance_parts(s) if p != "none")
    return " + ".join(parts) or "none"


def estimated_flag(source: str) -> float:
    """`energy_estimated` in the logs: 1.0 where `energy_j` is, in whole or in part, an
    estimate (any "estimated:..." part in its provenance: it is never shown as a
    measurement), 0.0 where it is measured, NaN where nothing was (no meter)."""
    if is_estimated(source):
        return 1.0
    return 0.0 if any(p.startswith("measured:") for p in provenance_parts(source)) else NAN


def running_total(summary: dict, known: bool = True) -> dict:
    """The running total SMICallback puts into each epoch's logs after the epoch's
    `summary.json` write: `energy_total_j`, that summary's `energy_j` (every attempt of
    the fit so far, and what lies between epochs: set-up, other callbacks' work), NaN
    where earlier attempts' energy is not `known`; `energy_total_estimated`, its flag."""
    return {"energy_total_j": summary.get("energy_j", NAN) if known else NAN,
            "energy_total_estimated": estimated_flag(summary.get("source", "none"))}


def covered(logs: dict) -> list[str]:
    """The measured components an epoch's `energy_j` adds up, read from its logs."""
    return [c for c in COMPONENTS if component_key(c) in logs]


def is_estimate(logs: dict) -> bool:
    """Whether an epoch's `energy_j` is, in whole or in part, an estimate, read from its
    logs."""
    return logs.get("energy_estimated") == 1.0


def covers_text(components: list[str], estimated: bool = False) -> str:
    """"GPU + CPU + DRAM"; or that `energy_j` is an estimate ("energy_j estimated, not
    measured") or in part one ("in part estimated: GPU measured, the rest estimated"),
    never called measured; or, where no component is named (an `energy_j` not from
    SMICallback), just that."""
    named = " + ".join(c.upper() for c in components)
    if estimated:
        return f"in part estimated: {named} measured, the rest estimated" if named \
            else "energy_j estimated, not measured"
    return named or "energy_j as logged"
