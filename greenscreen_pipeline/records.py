"""The typed run record: summary.json and results.json as small dataclasses.

    summary.json  written by the run's SMICallback (greenscreen.callbacks): energy over
                  every attempt, its provenance, the devices measured, the backend
    results.json  written by the run process (training.train_run): test metrics (of the
                  validation split where your splits have no test split: evaluated_on),
                  the confusion matrix, versions, timing, the Keras history

`RunFolder.summary()` and `RunFolder.results()` return these; the executors, the ledger,
the analysis and the report read fields, not string keys. `from_json` takes every
version of the files we wrote (and leaves out nothing it does not know: `raw` keeps the
document), so old folders still load; a missing figure is NaN (energy) or None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from greenscreen.provenance import is_measured

NAN = float("nan")


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else NAN


@dataclass(frozen=True)
class Attempt:
    """One attempt's measured window (a resumed run has several)."""

    t_start: float
    t_end: float
    energy_j: float
    duration_s: float
    # The GPUs' UUIDs it measured; None in summaries written before attempts recorded them
    # (then the summary's devices stand for every attempt: `RunSummary.gpus_of`).
    gpus: frozenset | None = None

    @property
    def measured(self) -> bool:
        return not math.isnan(self.t_start + self.t_end)

    @classmethod
    def from_json(cls, data: dict) -> "Attempt":
        gpus = data.get("gpus")
        return cls(_number(data.get("t_start")), _number(data.get("t_end")),
                   _number(data.get("energy_j")), _number(data.get("duration_s")),
                   frozenset(str(g) for g in gpus) if isinstance(gpus, list) else None)


@dataclass(frozen=True)
class Device:
    """A device the run's meter measured, with its energy."""

    index: int | None
    name: str
    energy_j: float
    component: str = "gpu"  # "gpu", "cpu" or "dram"; folders written before: GPUs only
    uuid: str = ""

    @classmethod
    def from_json(cls, data: dict) -> "Device":
        return cls(data.get("index"), str(data.get("name") or ""), _number(data.get("energy_j")),
                   str(data.get("component") or "gpu"), str(data.get("uuid") or ""))


@dataclass(frozen=True)
class Component:
    """One component's energy over every attempt ("gpu", "cpu" or "dram")."""

    energy_j: float
    source: str
    energy_device_j: float = NAN  # the whole devices' energy of the last attempt

    @property
    def measured(self) -> bool:
        """Measured in every part: a CPU measured by RAPL in one attempt and estimated in
        another ("measured:rapl... + estimated:cpu-time") is not, whatever it starts with."""
        return is_measured(self.source)

    @classmethod
    def from_json(cls, data: dict) -> "Component":
        return cls(_number(data.get("energy_j")), str(data.get("source") or "none"),
                   _number(data.get("energy_device_j")))


@dataclass(frozen=True)
class RunSummary:
    """summary.json: what the run's SMICallback measured, over every attempt.

    Attributes:
        energy_j: Joules over every attempt (NaN if any attempt's energy is unknown).
        power_avg_w: Mean power over the attempts' measured time.
        duration_s: Measured seconds over every attempt.
        source: Provenance, e.g. "measured:nvml-counter" or "estimated:cpu-time".
        attempts: Each attempt's window.
        devices: The devices measured in the last attempt.
        backend: The Keras backend the run trained on, where recorded.
        sample_interval_s: The power-sampling interval, where recorded.
        components: Each component energy_j adds up ("gpu", "cpu", "dram"), with its
            provenance; empty in folders written before the split.
        covers: The components energy_j adds up (["gpu"] for older GPU folders: empty).
        unmeasured: Each component that could not be measured, with the reason.
        job: The Slurm or Ray job the run trained in, where recorded.
        test_accuracy: Folders written before results.json existed kept it here.
        raw: The document as written.
    """

    energy_j: float = NAN
    power_avg_w: float = NAN
    duration_s: float = NAN
    source: str = "none"
    attempts: tuple[Attempt, ...] = ()
    devices: tuple[Device, ...] = ()
    backend: str | None = None
    sample_interval_s: float | None = None
    test_accuracy: float | None = None
    components: dict[str, Component] = field(default_factory=dict)
    covers: tuple[str, ...] = ()
    unmeasured: dict[str, str] = field(default_factory=dict)
    job: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    def gpus_of(self, attempt: Attempt) -> frozenset:
        """The GPUs' UUIDs `attempt` measured: its own record, or, in summaries written
        before attempts recorded theirs, the summary's devices (the last attempt's)."""
        if attempt.gpus is not None:
            return attempt.gpus
        return frozenset(d.uuid for d in self.devices if d.component == "gpu" and d.uuid)

    def component_energy_j(self, component: str) -> float:
        """A component's measured joules over every attempt; NaN where it was not
        measured (never the CPU-time estimate: that is not a measurement)."""
        part = self.components.get(component)
        return part.energy_j if part is not None and part.measured else NAN

    @classmethod
    def from_json(cls, data: dict) -> "RunSummary":
        interval = data.get("sample_interval_s")
        parts = data.get("components") if isinstance(data.get("components"), dict) else {}
        return cls(
            energy_j=_number(data.get("energy_j")), power_avg_w=_number(data.get("power_avg_w")),
            duration_s=_number(data.get("duration_s")), source=str(data.get("source", "none")),
            attempts=tuple(Attempt.from_json(a) for a in data.get("attempts") or []
                           if isinstance(a, dict)),
            devices=tuple(Device.from_json(d) for d in data.get("devices") or []
                          if isinstance(d, dict)),
            backend=data.get("backend"),
            sample_interval_s=float(interval) if isinstance(interval, (int, float)) else None,
            test_accuracy=data.get("test_accuracy"),
            components={str(c): Component.from_json(v) for c, v in parts.items()
                        if isinstance(v, dict)},
            covers=tuple(str(c) for c in data.get("covers") or []),
            unmeasured={str(c): str(r) for c, r in (data.get("unmeasured") or {}).items()},
            job=dict(data.get("job") or {}), raw=data)

    @property
    def t_start(self) -> float:
        """When the first attempt started (NaN: not recorded)."""
        return _number(self.raw.get("t_start"))

    @property
    def t_end(self) -> float:
        """When the last attempt ended (NaN: not recorded, or still running)."""
        return _number(self.raw.get("t_end"))


@dataclass(frozen=True)
class RunResults:
    """results.json: what the run process recorded once training ended.

    Attributes:
        test_accuracy: Accuracy on the test split.
        test_loss: Loss on the test split.
        confusion_matrix: counts[true class][predicted class] on the test split.
        versions: Python, Keras, backend, numpy and greenscreen versions.
        timing: Wall-clock marks of the run process (process_start, fit_start, ...).
        history: The Keras History, one list per metric.
        quantized: The int8 model's figures, for post_quantization runs.
        unread_dimensions: Dimensions of your own that none of your functions (model,
            dataset, training loop) read in this run.
        test_metrics: Every metric on the evaluated split, "test_" + its name (the loss
            and accuracy among them; a regression's test_mae, ...).
        objective: The value the sweep ranks this run by: {"name": "val_accuracy",
            "mode": "max", "value": ..., "split": "test" or "validation"}; empty in
            folders written before settings.objective existed.
        evaluated_on: The split the test_ figures and the confusion matrix come from:
            "test", or "validation" where your dataset function gave no test split; for
            your own training loop "test" where it returned test_ figures, else "none"
            (the pipeline evaluated nothing; its objective's `loss` is then None too).
        train: The training loop that ran: your `settings.train` ("module:function"), or
            "" for the pipeline's own compile and fit.
    """

    test_accuracy: float | None = None
    test_loss: float | None = None
    confusion_matrix: list | None = None
    versions: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    quantized: dict = field(default_factory=dict)
    unread_dimensions: list = field(default_factory=list)
    test_metrics: dict = field(default_factory=dict)
    objective: dict = field(default_factory=dict)
    evaluated_on: str = "test"
    train: str = ""

    QUANTIZED = ("quantized_test_accuracy", "quantized_test_loss", "weights_bytes_float",
                 "weights_bytes_int8")

    @classmethod
    def from_json(cls, data: dict) -> "RunResults":
        return cls(data.get("test_accuracy"), data.get("test_loss"),
                   data.get("confusion_matrix"), data.get("versions") or {},
                   data.get("timing") or {}, data.get("history") or {},
                   {k: data[k] for k in cls.QUANTIZED if k in data},
                   list(data.get("unread_dimensions") or []),
                   dict(data.get("test_metrics") or {}), dict(data.get("objective") or {}),
                   str(data.get("evaluated_on") or "test"), str(data.get("train") or ""))

    def to_json(self) -> dict:
        return {"test_accuracy": self.test_accuracy, "test_loss": self.test_loss,
                **self.quantized, "confusion_matrix": self.confusion_matrix,
                "versions": self.versions, "timing": self.timing, "history": self.history,
                "unread_dimensions": self.unread_dimensions,
                "test_metrics": self.test_metrics, "objective": self.objective,
                "evaluated_on": self.evaluated_on,
                **({"train": self.train} if self.train else {})}  # only your own loop's

    @property
    def metrics(self) -> dict:
        """The test metrics (and the int8 model's), as parameters.yaml and status.json hold;
        a metric the task does not have (a regression's accuracy) is left out."""
        everything = {"test_accuracy": self.test_accuracy, "test_loss": self.test_loss,
                      **self.test_metrics, **self.quantized}
        return {name: value for name, value in everything.items() if value is not None}
