"""A run process does not import JAX for TFLite and Keras's Orbax callback, nor matplotlib's
pyplot for Keras's plots, and each gets what it would have had once something imports it."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("jax")
pytest.importorskip("tensorflow")
pytest.importorskip("matplotlib")

# In a fresh process, as the worker and the run process start: the refusals, then Keras.
SCRIPT = r"""
import importlib, json, sys
from greenscreen_pipeline.run import side_imports
left_out = side_imports.leave_out()
import keras
import numpy as np
seen = {"left_out": left_out, "backend": keras.backend.backend(),
        "jax_after_keras": "jax" in sys.modules,
        "matplotlib_after_keras": "matplotlib" in sys.modules}
# A run trains as before.
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
model.compile("sgd", "mse")
seen["loss"] = float(model.train_on_batch(np.ones((4, 3)), np.zeros((4, 2))))
# Then your code imports JAX: TFLite gets its jit, the Orbax callback's module its JAX.
import jax
if "tensorflow" in sys.modules:
    util = importlib.import_module("tensorflow.lite.python.util")
    lite = importlib.import_module("tensorflow.lite.python.lite")  # its own copy of _jit
    seen["tflite_jit_is_jax_jit"] = util._jit is jax.jit and lite._jit is jax.jit
seen["record_scalar"] = hasattr(jax.monitoring, "record_scalar")
seen["x2"] = float(jax.jit(lambda x: 2 * x)(1.5))
# Your code plots a gallery without importing pyplot itself: Keras's stand-in imports it.
import os, tempfile
os.environ["MPLBACKEND"] = "Agg"
path = os.path.join(tempfile.mkdtemp(), "gallery.png")
keras.visualization.plot_image_gallery(np.zeros((2, 4, 4, 3)), rows=1, cols=2, path=path)
seen["plotted"] = os.path.getsize(path) > 0
# Then pyplot is Keras's own, and the bounding-box gallery has its patches.
import matplotlib.pyplot as plt
gallery = importlib.import_module("keras.src.visualization.plot_image_gallery")
boxes = importlib.import_module("keras.src.visualization.plot_bounding_box_gallery")
seen["plt_given"] = gallery.plt is plt and boxes.patches is sys.modules["matplotlib.patches"]
print(json.dumps(seen))
"""


def run(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tensorflow_is_imported_without_jax_and_pyplot_and_both_come_back_when_imported():
    seen = run("tensorflow")
    assert seen["left_out"] == ["jax", "matplotlib"] and seen["backend"] == "tensorflow"
    assert seen["jax_after_keras"] is False  # neither TFLite nor Keras's callback imported it
    assert seen["matplotlib_after_keras"] is False  # nor Keras's plots
    assert seen["loss"] == seen["loss"]  # trained: a number
    assert seen["tflite_jit_is_jax_jit"] is True  # the JAX converter works as before
    assert seen["record_scalar"] is True and seen["x2"] == 3.0
    assert seen["plt_given"] is True and seen["plotted"] is True  # the plots work


def test_keras_on_jax_imports_jax_as_always_and_leaves_pyplot_out():
    seen = run("jax")
    assert seen["backend"] == "jax" and seen["jax_after_keras"] is True
    assert seen["matplotlib_after_keras"] is False
    assert seen["loss"] == seen["loss"] and seen["x2"] == 3.0
    assert seen["plt_given"] is True and seen["plotted"] is True
