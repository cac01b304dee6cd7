"""Cheaper training on Keras 3 (TensorFlow and JAX): wrap a built model, keep calling `fit`.

- `RankedUpdates`: update only the most salient weights (no FLOPs saved) or layers (saves
  weight-gradient work).
- `SampleGating`: train each step on the samples that matter, PI-controlled; `selector="random"`
  is the control arm.
- `MagnitudePruning` + `strip_pruning`: gradual magnitude pruning without
  tensorflow-model-optimization.

Each reports its own state (`update_fraction`, `activation_rate`, `threshold`,
`samples_trained`, `sparsity`) in the same Keras logs SMICallback writes energy into.

Whether a method can run is asked without a model: `backend_unsupported()` for the
active Keras backend, `<Method>.incompatibility(**settings)` for its settings. Each
returns a reason or None, and the constructors raise with the same message.
"""

from .base import SUPPORTED_BACKENDS, backend_unsupported
from .controllers import ASTController, PIController
from .gating import SampleGating, with_indices
from .pruning import MagnitudePruning, strip_pruning, weights_gzip_bytes
from .ranked import RankedUpdates
from .schedules import polynomial_sparsity, update_percentage

__all__ = ["SUPPORTED_BACKENDS", "ASTController", "MagnitudePruning", "PIController",
           "RankedUpdates", "SampleGating", "backend_unsupported", "polynomial_sparsity",
           "strip_pruning", "update_percentage", "weights_gzip_bytes", "with_indices"]
