"""Seeds a run as `keras.utils.set_random_seed` does, without importing TensorFlow to do it.

Keras seeds TensorFlow's global generator wherever TensorFlow is installed, for the
`tf.data` pipelines of any backend, and imports TensorFlow to find out (`lazy_tensorflow`
keeps it from that). Here TensorFlow is seeded at once where it is loaded, and
otherwise the moment it is imported (a post-import hook, `wrapt.register_post_import_hook`,
the well-kept way to run code after an import), with the seed of the run that imports it.
Either way a run that uses TensorFlow finds it seeded with its own seed before its first
TensorFlow op (none can run before the import), so what it draws does not depend on
whether an earlier run in the same worker had imported TensorFlow.

On JAX a run draws with JAX's original threefry generator (`jax_threefry_partitionable`
off, JAX's default before 0.5) unless you set `JAX_THREEFRY_PARTITIONABLE` yourself. Both
are threefry with the same distributions, and a seed draws the same numbers every time
under either; the partitionable one splits a draw across devices, which a run here never
does, and XLA compiles it far more slowly on CPU: each weight shape's initialiser took 0.3
to 1.2 s to compile, 0.2 s now (RESULTS.md, "JAX's random draws compiled slowly").
"""

from __future__ import annotations

# Imported with this module, when the worker starts (worker.py imports the run path): a
# package a run imports for the first time counts as that run's (reset.retire_reason).
import os

import wrapt

from . import lazy_tensorflow

PARTITIONABLE_VARIABLE = "JAX_THREEFRY_PARTITIONABLE"

# The seed of the run in progress, for the hook; None: TensorFlow was seeded directly.
_seed_on_import: int | None = None
_hooked = False


def seed_run(seed: int) -> None:
    """Seeds Python, NumPy, Keras's generator, TensorFlow and PyTorch (the backend) with `seed`."""
    import keras

    global _seed_on_import
    with lazy_tensorflow.left_out() as tensorflow_left_out:
        keras.utils.set_random_seed(seed)  # raises for a seed that is not an int
    _seed_on_import = seed if tensorflow_left_out else None
    if tensorflow_left_out:
        _hook_tensorflow_import()
    if keras.backend.backend() == "jax":
        _jax_threefry()


def _jax_threefry() -> None:
    """JAX's original threefry for every run, in a fresh process or a warm worker alike (the
    setting is part of JAX's compilation key: no program compiled under the other is reused)."""
    import jax

    from . import reset

    if PARTITIONABLE_VARIABLE not in os.environ:  # yours, read by JAX itself
        jax.config.update("jax_threefry_partitionable", False)
        # ours: no reason to retire a warm worker (reset.retire_reason), put back between runs
        reset.set_for_run("jax.config.jax_threefry_partitionable", False)


def _hook_tensorflow_import() -> None:
    global _hooked
    if not _hooked:
        wrapt.register_post_import_hook(_seed_tensorflow, "tensorflow")
        _hooked = True


def _seed_tensorflow(tensorflow) -> None:
    if _seed_on_import is not None:
        tensorflow.random.set_seed(_seed_on_import)
