"""Seeds a run as `keras.utils.set_random_seed` does, without importing TensorFlow to do it.

Keras seeds TensorFlow's global generator wherever TensorFlow is installed, for the
`tf.data` pipelines of any backend, and imports TensorFlow to find out: on JAX or PyTorch
that import is 2.5 s of each process (measured on the 2-core VM, RESULTS.md), for runs
that never use TensorFlow. Here TensorFlow is seeded at once where it is loaded, and
otherwise the moment it is imported (a post-import hook, `wrapt.when_imported`, the
well-kept way to run code after an import), with the seed of the run that imports it.
Either way a run that uses TensorFlow finds it seeded with its own seed before its first
TensorFlow op (none can run before the import), so what it draws does not depend on
whether an earlier run in the same worker had imported TensorFlow.
"""

from __future__ import annotations

import sys

# Imported with this module, when the worker starts: a package a run imports for the first
# time counts as that run's (reset.retire_reason), and this one is ours.
import wrapt

# The seed of the run in progress, for the hook; None: TensorFlow was seeded directly.
_seed_on_import: int | None = None
_hooked = False


def seed_run(seed: int) -> None:
    """Seeds Python, NumPy, Keras's generator, TensorFlow and PyTorch (the backend) with `seed`."""
    import keras

    global _seed_on_import
    lazy_tensorflow = _keras_lazy_tensorflow()
    if "tensorflow" in sys.modules or lazy_tensorflow is None:
        _seed_on_import = None
        keras.utils.set_random_seed(seed)
        return
    _seed_on_import = seed
    _hook_tensorflow_import()
    was = lazy_tensorflow._available
    lazy_tensorflow._available = False  # Keras skips TensorFlow: the hook seeds it when loaded
    try:
        keras.utils.set_random_seed(seed)
    finally:
        lazy_tensorflow._available = was


def _keras_lazy_tensorflow():
    """Keras's lazy TensorFlow handle, where this Keras has the one `seed_run` expects.

    None for a Keras that keeps it otherwise: then `seed_run` calls Keras as it is, and
    TensorFlow is imported as Keras always did.
    """
    try:
        from keras.src.utils import rng_utils
    except ImportError:
        return None
    lazy = getattr(rng_utils, "tf", None)
    state = vars(lazy) if lazy is not None else {}
    if "_available" not in state or state.get("module", "absent") is not None:
        return None  # not a LazyModule, or one that imported TensorFlow already
    return lazy


def _hook_tensorflow_import() -> None:
    global _hooked
    if not _hooked:
        wrapt.register_post_import_hook(_seed_tensorflow, "tensorflow")
        _hooked = True


def _seed_tensorflow(tensorflow) -> None:
    if _seed_on_import is not None:
        tensorflow.random.set_seed(_seed_on_import)
