"""The backend's import, without the packages that TensorFlow's and Keras's modules import on
the side.

Some modules import a package wherever it is installed, whatever the backend, for a feature
a run never uses:

- JAX, by TensorFlow's `tensorflow.lite.python.util` (`from jax import jit`, for one
  converter, `TFLiteConverter.experimental_from_jax`; `None` where JAX is missing) and by
  Keras's `keras.src.callbacks.orbax_checkpoint` (to give an old JAX's `jax.monitoring` a
  `record_scalar`): 0.76 CPU s of each TensorFlow start where both backends are installed
  (RESULTS.md, "A TensorFlow worker imported JAX").
- matplotlib's `pyplot`, by Keras's `keras.src.visualization.plot_image_gallery` and
  `plot_bounding_box_gallery` (for `keras.visualization.plot_*`; `None` where matplotlib is
  missing): the pipeline installs matplotlib for the report, so every worker and run
  process paid for pyplot and its backend set-up (RESULTS.md, "What a worker imports on the
  side").

`leave_out()`, called where a run process starts (before Keras is imported), refuses each
package to those modules alone: they import it inside `try: ... except ImportError`, as on
a machine without it. Every other module imports it as before (Keras on JAX imports JAX
itself, through its backend, before either of the two). Once anyone imports the package, a
post-import hook does what the refused module would have done with it, so the converter,
the callback and the plots work as they would have; and the plots' `plt` and `patches`,
left None by the refusal, are stand-ins that import matplotlib at their first use, so a
plot of yours works in a run that never imported pyplot itself. Where a package is not
installed, or already imported, nothing is done for it.

What is not left out, and why: pandas (scikit-learn's `utils.fixes` imports it too, and the
built-in datasets need scikit-learn) and scikit-learn itself (Keras's `SKLearnClassifier`
and the others subclass its estimators when its module loads; no hook can give them that
later).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType


def _give_tflite_jit(jax: ModuleType, importer: ModuleType) -> None:
    # `tensorflow.lite.python.lite` took its own copy (`from ...util import _jit`).
    for module in (importer, sys.modules.get("tensorflow.lite.python.lite")):
        if module is not None and getattr(module, "_jit", "absent") is None:
            module._jit = jax.jit


def _give_old_jax_record_scalar(jax: ModuleType, importer: ModuleType) -> None:
    if not hasattr(jax.monitoring, "record_scalar"):  # as the module does, for old JAX
        jax.monitoring.record_scalar = lambda *args, **kwargs: None


class OnFirstUse(ModuleType):
    """Stands in for a module that a refused import left None in its importer: imports it
    at its first use, so that a run of yours that plots imports pyplot then."""

    def __getattr__(self, attribute: str):
        return getattr(importlib.import_module(self.__name__), attribute)


def _give_module(attribute: str) -> Callable[[ModuleType, ModuleType], None]:
    """Gives the importer the real module where its `attribute` is None or the stand-in."""
    def give(module: ModuleType, importer: ModuleType) -> None:
        if isinstance(getattr(importer, attribute, "absent"), OnFirstUse | None):
            setattr(importer, attribute, module)
    return give


@dataclass(frozen=True)
class SideImport:
    """`package` refused to `importer` while it loads; once `gives_back` is imported by
    anyone, `give(that module, the importer)` does what the importer would have done.
    `stand_in`: the importer's global the refusal leaves None, given an `OnFirstUse` of
    `gives_back` as soon as the importer has loaded (Keras checks it for None)."""

    package: str
    importer: str
    gives_back: str
    give: Callable[[ModuleType, ModuleType], None]
    stand_in: str | None = None


REFUSED = (
    SideImport("jax", "tensorflow.lite.python.util", "jax", _give_tflite_jit),
    SideImport("jax", "keras.src.callbacks.orbax_checkpoint", "jax",
               _give_old_jax_record_scalar),
    SideImport("matplotlib", "keras.src.visualization.plot_image_gallery", "matplotlib.pyplot",
               _give_module("plt"), stand_in="plt"),
    SideImport("matplotlib", "keras.src.visualization.plot_bounding_box_gallery",
               "matplotlib.patches", _give_module("patches"), stand_in="patches"),
)

IMPORTING = ("importlib", "wrapt")


class _Refuse(importlib.abc.MetaPathFinder):
    """Refuses each package of `refused` to its importers, while they import it themselves."""

    def __init__(self, refused: tuple[SideImport, ...]) -> None:
        self.refused = refused
        self.packages = {side.package for side in refused}

    def find_spec(self, name, path=None, target=None):
        if name not in self.packages:  # a submodule's parent was imported elsewhere
            return None
        importer = _importer(sys._getframe(1))
        side = next((s for s in self.refused if s.package == name and s.importer == importer),
                    None)
        if side is None:
            return None
        _when_it_loads(side)
        raise ImportError(f"{name} is left out of {importer}'s import "
                          "(greenscreen_pipeline/run/side_imports.py)")


def leave_out() -> list[str]:
    """Install the refusals for this process; the packages left out (none: nothing to do)."""
    refused = tuple(side for side in REFUSED if _can_leave_out(side))
    if refused:
        sys.meta_path.insert(0, _Refuse(refused))
    for side in refused:
        if side.stand_in:
            _stand_in_once_loaded(side)
    return sorted({side.package for side in refused})


def _can_leave_out(side: SideImport) -> bool:
    if side.package in sys.modules or side.importer in sys.modules:
        return False  # too late: it is imported, or its importer already asked
    return importlib.util.find_spec(side.package) is not None  # else it finds none anyway


def _importer(frame) -> str | None:
    """The module whose code runs the import: the first frame outside the import system
    (importlib's, and wrapt's finder, which asks the others again for a module it hooks)."""
    while frame is not None and frame.f_globals.get("__name__", "").startswith(IMPORTING):
        frame = frame.f_back
    return None if frame is None else frame.f_globals.get("__name__")


def _stand_in_once_loaded(side: SideImport) -> None:
    import wrapt

    def hook(importer: ModuleType) -> None:
        if getattr(importer, side.stand_in, "absent") is None:
            setattr(importer, side.stand_in, OnFirstUse(side.gives_back))

    wrapt.register_post_import_hook(hook, side.importer)


def _when_it_loads(side: SideImport) -> None:
    import wrapt

    def hook(module: ModuleType) -> None:
        importer = sys.modules.get(side.importer)
        if importer is not None:
            side.give(module, importer)

    wrapt.register_post_import_hook(hook, side.gives_back)
