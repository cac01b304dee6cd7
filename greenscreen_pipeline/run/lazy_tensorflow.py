"""Keras calls that import TensorFlow only to ask about it, kept from doing so where no
TensorFlow is loaded.

On any backend, `keras.utils.set_random_seed` seeds TensorFlow wherever it is installed (for
`tf.data`), and `Model.save` asks whether each object is a TensorFlow shape, dtype or type
spec; both import TensorFlow to find out: 1.4 to 1.5 s of each JAX process here (RESULTS.md:
the drop in a run's set-up once it was left out; not timed on PyTorch). While TensorFlow is
not loaded, no object can be of its types and none of its generators can have drawn, so
answering "not available" for the length of such a call changes nothing that it does. Keras
keeps the answer in one lazy handle, `keras.src.utils.module_utils.tensorflow`; a Keras
without it imports TensorFlow as before.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def left_out() -> Iterator[bool]:
    """For the `with` block, Keras finds TensorFlow unavailable unless it is loaded.
    Yields whether it was left out (False: TensorFlow is loaded, or this Keras asks
    otherwise)."""
    handle = _keras_handle()
    if "tensorflow" in sys.modules or handle is None:
        yield False
        return
    was = handle._available
    handle._available = False  # only while the block runs, in the thread that trains
    try:
        yield True
    finally:
        handle._available = was


def _keras_handle():
    """Keras's lazy TensorFlow handle, where it is the one this module expects."""
    try:
        from keras.src.utils import module_utils
    except ImportError:
        return None
    handle = getattr(module_utils, "tensorflow", None)
    if handle is None or "_available" not in vars(handle):
        return None  # not a lazy module that keeps its answer (left_out sees it is unloaded)
    return handle
