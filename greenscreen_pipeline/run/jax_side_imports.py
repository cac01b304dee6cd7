"""The backend's import, without the JAX import that TensorFlow's and Keras's make on the side.

Two modules import JAX wherever it is installed, whatever the backend: TensorFlow's
`tensorflow.lite.python.util` (`from jax import jit`, for one converter,
`TFLiteConverter.experimental_from_jax`, and `None` where JAX is missing) and Keras's
`keras.src.callbacks.orbax_checkpoint` (to give an old JAX's `jax.monitoring` a
`record_scalar`). Neither matters to a run that does not use JAX, yet a TensorFlow worker or
run process where both backends are installed (the test environment; anyone who installs
both) spent 0.76 CPU s of each start importing JAX for them on the 2-core VM (median of 7)
(RESULTS.md, "A TensorFlow worker imported JAX").

`leave_out()`, called where a run process starts (before Keras is imported), refuses JAX to
those two modules alone: they import it inside `try: ... except ImportError`, as for a
machine without JAX. Keras on JAX imports JAX itself before either (its backend loads
first), and your code and every other module import it as before. Once anyone imports JAX,
a post-import hook does what the two modules would have done with it, so the converter and
the callback work as they would have. Where JAX is not installed, or already imported,
nothing is done.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys


def _give_tflite_jit(jax, importer) -> None:
    # `tensorflow.lite.python.lite` took its own copy (`from ...util import _jit`).
    for module in (importer, sys.modules.get("tensorflow.lite.python.lite")):
        if module is not None and getattr(module, "_jit", "absent") is None:
            module._jit = jax.jit


def _give_old_jax_record_scalar(jax, importer) -> None:
    if not hasattr(jax.monitoring, "record_scalar"):  # as the module does, for old JAX
        jax.monitoring.record_scalar = lambda *args, **kwargs: None


# The modules refused JAX, and what each would have done with it.
REFUSED = {
    "tensorflow.lite.python.util": _give_tflite_jit,
    "keras.src.callbacks.orbax_checkpoint": _give_old_jax_record_scalar,
}


IMPORTING = ("importlib", "wrapt")


class _RefuseJax(importlib.abc.MetaPathFinder):
    """Refuses `import jax` to the modules in REFUSED, while they import it themselves."""

    def find_spec(self, name, path=None, target=None):
        if name != "jax":
            return None
        importer = _importer(sys._getframe(1))
        if importer not in REFUSED:
            return None
        _when_jax_loads(importer)
        raise ImportError(f"JAX is left out of {importer}'s import "
                          "(greenscreen_pipeline/run/jax_side_imports.py)")


def leave_out() -> bool:
    """Install the refusal for this process; True where it was installed."""
    if "jax" in sys.modules or any(name in sys.modules for name in REFUSED):
        return False
    if importlib.util.find_spec("jax") is None:
        return False  # they find no JAX anyway
    sys.meta_path.insert(0, _RefuseJax())
    return True


def _importer(frame) -> str | None:
    """The module whose code runs the import: the first frame outside the import system
    (importlib's, and wrapt's finder, which asks the others again for a module it hooks)."""
    while frame is not None and frame.f_globals.get("__name__", "").startswith(IMPORTING):
        frame = frame.f_back
    return None if frame is None else frame.f_globals.get("__name__")


def _when_jax_loads(importer: str) -> None:
    import wrapt

    def hook(jax) -> None:
        module = sys.modules.get(importer)
        if module is not None:
            REFUSED[importer](jax, module)

    wrapt.register_post_import_hook(hook, "jax")
