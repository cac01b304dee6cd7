"""Your dataset for a greenscreen sweep: called as blobs(params) in every run.

Three classes of 16 features around fixed centres, with the run's `noise`, made here
(nothing is downloaded). Return (x, y) and the pipeline splits it by `partitioning`;
return {"train": (x, y), "validation": (x, y), "test": (x, y)} to split it yourself.
"""

import numpy as np


def blobs(params):
    centres = np.random.default_rng(0).normal(0.0, 1.0, (3, 16))  # the same task every run
    rng = np.random.default_rng(params["seed"])
    y = rng.integers(0, 3, 900)
    x = centres[y] + rng.normal(0.0, params["noise"], (900, 16))
    return x.astype("float32"), y
