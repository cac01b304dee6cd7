"""Your task's loss and objective: what a run trains on and what the analysis ranks by.

`settings.loss` is a Keras loss name (default "categorical_crossentropy");
`settings.objective` names the validation metric the analysis, the Pareto front and
the recommendation use ("val_accuracy", maximised, for classification; "val_loss",
minimised, otherwise); `settings.objective_mode` is "auto", "min" or "max", as in
`keras.callbacks.EarlyStopping(mode=...)`. A run's objective value is the test split's
value of that metric where the run evaluated it (`test_accuracy` for `val_accuracy`),
else the last epoch's validation value. Imports nothing heavy: `space.py` checks the
settings with it before any Keras is loaded.

Example:

>>> from greenscreen_pipeline.objective import Objective
>>> Objective.from_settings({"loss": "mse", "objective": "", "objective_mode": "auto"})
Objective(loss='mse', name='val_loss', maximise=False)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from .yamlload import hint

# Classification losses: labels are class indices the pipeline one-hot encodes, except for
# the sparse loss, which takes them as they are. Any other loss is a regression or other
# task: labels are used as they are, splits are not stratified, no confusion matrix.
ONE_HOT_LOSSES = ("categorical_crossentropy", "categorical_focal_crossentropy",
                  "categorical_hinge")
CLASSIFICATION_LOSSES = ONE_HOT_LOSSES + ("sparse_categorical_crossentropy",)
OTHER_LOSSES = ("mean_squared_error", "mse", "mean_absolute_error", "mae",
                "mean_absolute_percentage_error", "mape", "mean_squared_logarithmic_error",
                "msle", "huber", "log_cosh", "logcosh", "binary_crossentropy",
                "binary_focal_crossentropy", "kl_divergence", "poisson", "hinge",
                "squared_hinge", "cosine_similarity", "ctc", "dice", "tversky")
LOSSES = CLASSIFICATION_LOSSES + OTHER_LOSSES
# keras.callbacks.EarlyStopping's mode="auto" asks the metric for its direction; before
# any model exists this table says it for the metrics Keras knows by name.
MINIMISED = re.compile(r"(loss|error|mse|mae|mape|msle|crossentropy|hinge|divergence|"
                       r"poisson|log_?cosh|huber)$")
MAXIMISED = re.compile(r"(accuracy|acc|auc|precision|recall|f1_score|fbeta_score|r2_score|"
                       r"iou|cosine_similarity)$")
METRIC = re.compile(r"[A-Za-z_]\w*")
# The metric names Keras 3's compile takes as text (keras.metrics.get; "accuracy" and "acc"
# in any case, by compile itself), so that checking an objective imports no Keras: the
# registry (keras.src.metrics.ALL_OBJECTS_DICT) less the classes that need arguments (IoU,
# PrecisionAtRecall, ...) and the bases (Metric, Mean, Sum, MeanMetricWrapper).
# tests/test_config_hunt_faults.py checks it against the installed Keras. A name not in it
# is asked of Keras itself only where the installed Keras is newer than KERAS_LISTED, so a
# newer Keras's metric still passes and a typo costs no Keras import (seconds) otherwise.
KERAS_LISTED = (3, 15)
KERAS_METRICS = (
    "accuracy", "acc", "auc", "bce", "binary_accuracy", "binary_crossentropy", "binary_io_u",
    "categorical_accuracy", "categorical_crossentropy", "categorical_hinge",
    "concordance_correlation", "cosine_similarity", "f1_score", "f_beta_score",
    "false_negatives", "false_positives", "hinge", "kl_divergence", "log_cosh_error", "mae",
    "mape", "mean_absolute_error", "mean_absolute_percentage_error", "mean_squared_error",
    "mean_squared_logarithmic_error", "mse", "msle", "pearson_correlation", "poisson",
    "precision", "r2_score", "recall", "root_mean_squared_error",
    "sparse_categorical_accuracy", "sparse_categorical_crossentropy",
    "sparse_top_k_categorical_accuracy", "squared_hinge", "top_k_categorical_accuracy",
    "true_negatives", "true_positives", "BCE", "MAE", "MAPE", "MSE", "MSLE", "AUC",
    "Accuracy", "BinaryAccuracy", "BinaryCrossentropy", "BinaryIoU", "CategoricalAccuracy",
    "CategoricalCrossentropy", "CategoricalHinge", "ConcordanceCorrelation",
    "CosineSimilarity", "F1Score", "FBetaScore", "FalseNegatives", "FalsePositives", "Hinge",
    "KLDivergence", "LogCoshError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredError", "MeanSquaredLogarithmicError", "PearsonCorrelation", "Poisson",
    "Precision", "R2Score", "Recall", "RootMeanSquaredError", "SparseCategoricalAccuracy",
    "SparseCategoricalCrossentropy", "SparseTopKCategoricalAccuracy", "SquaredHinge",
    "TopKCategoricalAccuracy", "TrueNegatives", "TruePositives")
# Compiled by name, these log one value per class (F1Score and FBetaScore's average is None
# then): no one number to rank runs by.
PER_CLASS = ("f1_score", "f_beta_score", "F1Score", "FBetaScore")
# What a misspelt objective is likely meant as: the snake_case names, as Keras logs them.
OBJECTIVES = ("val_loss",) + tuple(f"val_{m}" for m in KERAS_METRICS
                                   if m.islower() and m not in PER_CLASS)
NOT_METRICS = ("Metric", "metric", "Mean", "mean", "Sum", "sum")  # bases Keras's get takes


class ObjectiveError(ValueError):
    """A loss or objective that cannot work: (setting, value, what is allowed)."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(key, value, allowed)
        self.key, self.value, self.allowed = key, value, allowed


@dataclass(frozen=True)
class Objective:
    """The run's loss and the metric a sweep ranks runs by.

    Attributes:
        loss: The Keras loss name the pipeline compiles with.
        name: The validation metric, e.g. "val_accuracy" or "val_loss".
        maximise: Whether a higher value is better.
    """

    loss: str = "categorical_crossentropy"
    name: str = "val_accuracy"
    maximise: bool = True

    @classmethod
    def from_settings(cls, settings: dict, compiled: bool = False) -> "Objective":
        """The objective of a sweep's settings; raises ObjectiveError naming the setting.
        `compiled` (config.yaml's check): without settings.train the objective must be a
        metric the pipeline's compile can log (`compiles`), or every run would fail."""
        loss = settings.get("loss") or "categorical_crossentropy"
        if loss not in LOSSES:
            raise ObjectiveError("loss", loss, "a Keras loss name: " + ", ".join(LOSSES)
                                 + hint(loss, LOSSES))
        name = settings.get("objective") or (
            "val_accuracy" if loss in CLASSIFICATION_LOSSES else "val_loss")
        if not (name.startswith("val_") and METRIC.fullmatch(name)):
            raise ObjectiveError("objective", name, "a validation metric's name as Keras logs "
                                 "it: 'val_' + the metric, e.g. val_accuracy, val_loss, val_mae"
                                 + hint(name, OBJECTIVES))
        metric = name.removeprefix("val_")
        if compiled and not settings.get("train") and metric in PER_CLASS:
            raise ObjectiveError("objective", name, "a metric that logs one number: compiled "
                                 f"by name, {metric} logs one value per class (its average is "
                                 "None); or set settings.train to log one of your own")
        if compiled and not settings.get("train") and not compiles(metric):
            raise ObjectiveError("objective", name, "'val_' + a metric Keras compiles by name "
                                 "(keras.metrics.get), e.g. val_accuracy, val_loss, val_mae, "
                                 "val_auc; or set settings.train to log one of your own"
                                 + hint(name, OBJECTIVES))
        mode = settings.get("objective_mode") or "auto"
        if mode not in ("auto", "min", "max"):
            raise ObjectiveError("objective_mode", mode, "auto, min or max"
                                 + hint(mode, ("auto", "min", "max")))
        if mode == "auto":
            return cls(loss, name, _direction(name))
        return cls(loss, name, mode == "max")

    @classmethod
    def of_sweep(cls, sweep_dir: "str | Path") -> "Objective":
        """The objective sweep.json recorded (the default for folders without one)."""
        from .runfolder import Unreadable, read_json

        try:
            settings = (read_json(Path(sweep_dir) / "sweep.json") or {}).get("settings") or {}
        except Unreadable:
            settings = {}
        return cls.from_settings(settings)

    @property
    def metric(self) -> str:
        """The metric's own name: "accuracy" for val_accuracy."""
        return self.name.removeprefix("val_")

    @property
    def test_name(self) -> str:
        """The metric on the test split, as results.json records it."""
        return "test_" + self.metric

    @property
    def classification(self) -> bool:
        """Class labels: one-hot or sparse targets, stratified splits, a confusion matrix."""
        return self.loss in CLASSIFICATION_LOSSES

    @property
    def one_hot(self) -> bool:
        return self.loss in ONE_HOT_LOSSES

    @property
    def compile_metrics(self) -> list[str]:
        """The metrics `compile` needs so that the objective (and accuracy) is logged."""
        wanted = (["accuracy"] if self.classification else []) + [self.metric]
        return [m for i, m in enumerate(wanted) if m != "loss" and m not in wanted[:i]]

    @property
    def mode(self) -> str:
        return "max" if self.maximise else "min"

    @property
    def label(self) -> str:
        """How the report names it: "accuracy", "loss (lower is better)", ..."""
        return self.metric if self.maximise else f"{self.metric} (lower is better)"

    def better(self, a: float, b: float) -> bool:
        """Whether value `a` is better than `b`."""
        return a > b if self.maximise else a < b

    def to_json(self) -> dict:
        return {"loss": self.loss, "name": self.name, "mode": self.mode}

    def _given(self, tested: dict, last: dict) -> list[tuple[str, float, str]]:
        """(name, value, split) of the figures a run is ranked by that it gave, in the
        order they are taken: its test split's (`tested`), then its last validation
        value (`last`)."""
        return [(key, figures[key], split) for figures, key, split in (
            (tested, self.test_name, "test"), (last, self.name, "validation"))
            if figures.get(key) is not None]

    def not_finite(self, tested: dict, last: dict) -> str | None:
        """"val_loss = nan" where the figures a run is ranked by were given but none is
        finite (the run diverged), else None: then no figure is no objective at all."""
        given = self._given(tested, last)
        if given and not any(math.isfinite(value) for _, value, _ in given):
            return ", ".join(f"{key} = {value}" for key, value, _ in given)
        return None

    def run_value(self, tested: dict, last: dict, what: str) -> dict:
        """The value a run is ranked by: its test split's (`tested`, "test_" names), else
        its last validation value (`last`); raises ValueError naming `what` it had."""
        for _, value, split in self._given(tested, last):
            if math.isfinite(value):
                return {**self.to_json(), "value": float(value), "split": split}
        had = sorted({*tested, *last})
        raise ValueError(f"{what} {had or 'nothing'}; allowed: {self.name} "
                         f"(settings.objective) or {self.test_name}")


def compiles(metric: str) -> bool:
    """Whether Keras's compile takes `metric` by name: "loss" (always logged), a name in
    KERAS_METRICS; else, where the installed Keras is newer than the list, whatever its
    registry resolves (Keras imported only then)."""
    if metric == "loss" or metric.lower() in ("accuracy", "acc") or metric in KERAS_METRICS:
        return True
    if metric in NOT_METRICS or not _keras_newer():
        return False
    try:
        import keras
    except ImportError:  # no backend here to ask: the probe, or the run, will tell
        return True
    try:
        keras.metrics.get(metric)
    except (ValueError, TypeError):  # unknown; or a class needing arguments (IoU)
        return False
    return True


def _keras_newer() -> bool:
    """Whether the installed Keras is newer than KERAS_LISTED (its metadata: no import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = tuple(int(n) for n in re.findall(r"\d+", version("keras"))[:2])
    except PackageNotFoundError:
        return False
    return release > KERAS_LISTED


def _direction(name: str) -> bool:
    metric = name.removeprefix("val_")
    if MINIMISED.search(metric) and metric != "cosine_similarity":
        return False
    if MAXIMISED.search(metric):
        return True
    near = hint(name, OBJECTIVES, cutoff=0.8) if metric not in KERAS_METRICS else ""
    if near:  # val_acuracy: a typo, not a metric of your own wanting a mode
        raise ObjectiveError("objective", name, "a validation metric's name as Keras logs "
                             "it, e.g. val_accuracy, val_loss, val_mae; or objective_mode min "
                             "or max for a metric of your own" + near)
    raise ObjectiveError("objective_mode", "auto", f"min or max: greenscreen cannot tell whether "
                         f"{name} should be minimised or maximised (as Keras's EarlyStopping "
                         "cannot in mode='auto')")


CLASSIFICATION = Objective()  # the default: categorical cross-entropy, val_accuracy maximised
