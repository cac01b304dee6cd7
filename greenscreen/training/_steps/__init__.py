"""The gradient step, one module per Keras backend (as Keras splits its own trainers).

Everything else a method does (masks, schedules, the controller, scoring) is
written once in `keras.ops` and runs inside the step of whichever backend is
active. Each backend module offers:

- `train_step(model, *args)`: Keras's `train_step` signature for that backend,
  running the stateful, backend-agnostic `model.method_step(data)`;
- `gradients(model, x, y, sample_weight, variables)`: forward and backward pass,
  returning `(gradients, y_pred, unscaled loss)`.
"""

from __future__ import annotations

import importlib

import keras


def for_backend():
    """The step module of the active backend (`backend_unsupported` has vetted it)."""
    return importlib.import_module(f".{keras.backend.backend()}", __name__)
