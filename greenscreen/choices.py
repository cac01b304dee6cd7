"""The allowed values of the library's string options, in one place that imports nothing.

The classes validate against these (`RankedUpdates(freeze=...)`, `SampleGating(
selector=...)`, `SMICallback(source=...)`), and the sweep application builds its search
space from them, so a value added here is allowed everywhere at once. Importing this
module loads no Keras and no backend.
"""

from .meters.registry import SOURCE_NAMES

SALIENCY = ("gradient", "grad_x_weight")  # RankedUpdates(saliency=...)
GRANULARITY = ("weight", "layer")  # RankedUpdates(granularity=...)
FREEZE = ("ranked", "bottom_up")  # RankedUpdates(freeze=...)
PERCENT_SCHEDULES = ("linear", "exponential")  # RankedUpdates(schedule=...)
SELECTORS = ("significance", "random")  # SampleGating(selector=...)
SCORING = ("full", "stale")  # SampleGating(scoring=...)

__all__ = ["FREEZE", "GRANULARITY", "PERCENT_SCHEDULES", "SALIENCY", "SCORING",
           "SELECTORS", "SOURCE_NAMES"]
